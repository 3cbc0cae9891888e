package store_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writers maps each Store method that writes contacts or conversations to the
// packages that own what it writes (store.Conversation's doc comment). bench/
// seeds state for measurements; it is a tool, not a component.
var writers = map[string][]string{
	"CreateContact":          {"core/pipeline"},
	"UpdateContact":          {"core/pipeline"},
	"LinkIdentity":           {"core/pipeline"},
	"ResolveContact":         {"core/pipeline", "bench/pipeline"},
	"MergeContacts":          {"core/pipeline"},
	"CreateConversation":     {"core/pipeline"},
	"UpdateConversation":     {"core/pipeline"},
	"CloseConversation":      {"core/pipeline"},
	"FindOrOpenConversation": {"core/pipeline", "bench/pipeline"},
	"SetRouting":             {"routing"},
}

// TestOwnership fails when a package calls a writer of state it does not own.
// It reads every non-test Go file of the module: a call x.Method(...) with one
// of these names outside its owners is reported with its position.
func TestOwnership(t *testing.T) {
	const root = "../.."
	fset := token.NewFileSet()
	calls := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if n := d.Name(); rel != "." && (strings.HasPrefix(n, ".") || n == "testdata" || n == "node_modules") || rel == "core/store" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		pkg := filepath.ToSlash(filepath.Dir(rel))
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			owners, ok := writers[sel.Sel.Name]
			if !ok {
				return true
			}
			calls++
			if !slices.Contains(owners, pkg) {
				t.Errorf("%s: %s writes state owned by %s; publish a command to the owner instead (core/event)",
					fset.Position(call.Pos()), sel.Sel.Name, strings.Join(owners, ", "))
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls == 0 {
		t.Fatal("no writer calls found at all: the walk read nothing")
	}
}
