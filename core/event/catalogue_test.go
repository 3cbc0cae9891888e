package event_test

import (
	"bytes"
	"flag"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/omnigate/omnigate/core/event"
)

var update = flag.Bool("update", false, "rewrite docs/events.md from the catalogue")

// repoRoot is the module root, two levels up from core/event.
const repoRoot = "../.."

// TestEventsDoc fails when docs/events.md is not what the catalogue renders.
func TestEventsDoc(t *testing.T) {
	path := filepath.Join(repoRoot, "docs", "events.md")
	want := event.Markdown()
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (generate it: go test ./core/event -run TestEventsDoc -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("docs/events.md is stale: go test ./core/event -run TestEventsDoc -update")
	}
}

// constants returns the string constants declared in event.go, by name.
func constants(t *testing.T) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "event.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, sp := range gd.Specs {
			vs := sp.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					v, _ := strconv.Unquote(lit.Value)
					out[n.Name] = v
				}
			}
		}
	}
	return out
}

// Every constant is catalogued: types in Catalogue, meta keys in MetaKeys, and
// nothing twice.
func TestCatalogue_Complete(t *testing.T) {
	var types []string
	for _, s := range event.Catalogue() {
		if slices.Contains(types, s.Type) {
			t.Errorf("%s catalogued twice", s.Type)
		}
		types = append(types, s.Type)
		if s.Doc == "" || len(s.Subjects) == 0 || len(s.Producers) == 0 || len(s.Consumers) == 0 {
			t.Errorf("%s: doc, subjects, producers and consumers are required", s.Type)
		}
		if s.Kind == event.KindCommand && s.Answer != "" {
			if a, ok := event.Lookup(s.Answer); !ok || a.Kind != event.KindEvent {
				t.Errorf("%s is answered by %q, which is no catalogued event", s.Type, s.Answer)
			}
		}
		for _, k := range s.Meta {
			if !slices.Contains(event.MetaKeys(), k) {
				t.Errorf("%s carries meta %q, which is not catalogued", s.Type, k)
			}
		}
	}
	meta := event.MetaKeys()
	for name, v := range constants(t) {
		switch {
		case strings.HasPrefix(name, "Meta"):
			if !slices.Contains(meta, v) {
				t.Errorf("meta key %s = %q has no entry in metaDocs", name, v)
			}
		case name == "FormatMarkdown" || strings.HasPrefix(name, "By") || strings.HasPrefix(name, "Reason"):
		default:
			if !slices.Contains(types, v) {
				t.Errorf("%s = %q is not in the catalogue", name, v)
			}
		}
	}
	seen := map[string]bool{}
	for _, k := range meta {
		if seen[k] {
			t.Errorf("meta key %q listed twice", k)
		}
		seen[k] = true
	}
}

// No package but this one spells a catalogued type as a string, defines a
// Meta* or Event* constant of a catalogued value, or indexes Meta with a
// literal: they use the constants.
func TestCatalogue_NobodyElseSpellsThem(t *testing.T) {
	types := map[string]bool{}
	for _, s := range event.Catalogue() {
		types[s.Type] = true
	}
	meta := map[string]bool{}
	for _, k := range event.MetaKeys() {
		meta[k] = true
	}
	fset := token.NewFileSet()
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == "testdata" || n == "node_modules" || strings.HasPrefix(n, ".") && n != "." && n != ".." {
				return filepath.SkipDir
			}
			if filepath.Clean(path) == filepath.Join(repoRoot, "core", "event") {
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
		checkMetaLit := func(e ast.Expr) {
			cl, ok := e.(*ast.CompositeLit)
			if !ok {
				return
			}
			for _, e := range cl.Elts {
				if kv, ok := e.(*ast.KeyValueExpr); ok {
					if v, ok := stringLit(kv.Key); ok && meta[v] {
						t.Errorf("%s: meta key %q: use core/event's constant", fset.Position(kv.Pos()), v)
					}
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BasicLit:
				// One-word types (typing, read) are also words of providers'
				// protocols; dotted ones are ours alone.
				if v, ok := stringLit(n); ok && types[v] && strings.Contains(v, ".") {
					t.Errorf("%s: %q is a catalogued type: use core/event's constant", fset.Position(n.Pos()), v)
				}
			case *ast.IndexExpr:
				if sel, ok := n.X.(*ast.SelectorExpr); ok && sel.Sel.Name == "Meta" {
					if v, ok := stringLit(n.Index); ok && meta[v] {
						t.Errorf("%s: Meta[%q]: use core/event's constant", fset.Position(n.Pos()), v)
					}
				}
			case *ast.KeyValueExpr:
				if k, ok := n.Key.(*ast.Ident); ok && k.Name == "Meta" {
					checkMetaLit(n.Value)
				}
			case *ast.AssignStmt:
				for i, l := range n.Lhs {
					if i < len(n.Rhs) && isMetaName(l) {
						checkMetaLit(n.Rhs[i])
					}
				}
			case *ast.CallExpr:
				// setMeta(m, "key", v) and the like.
				if id, ok := n.Fun.(*ast.Ident); ok && strings.HasSuffix(strings.ToLower(id.Name), "meta") && len(n.Args) > 1 {
					if v, ok := stringLit(n.Args[1]); ok && meta[v] {
						t.Errorf("%s: meta key %q: use core/event's constant", fset.Position(n.Args[1].Pos()), v)
					}
				}
			case *ast.ValueSpec:
				for i, id := range n.Names {
					if i >= len(n.Values) {
						break
					}
					if v, ok := stringLit(n.Values[i]); ok && strings.HasPrefix(id.Name, "Meta") && meta[v] {
						t.Errorf("%s: %s redefines meta key %q: use core/event's constant", fset.Position(id.Pos()), id.Name, v)
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// isMetaName reports whether e names a meta map: x.Meta, meta or md.
func isMetaName(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.SelectorExpr:
		return e.Sel.Name == "Meta"
	case *ast.Ident:
		return e.Name == "meta" || e.Name == "md"
	}
	return false
}

func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	v, err := strconv.Unquote(lit.Value)
	return v, err == nil
}
