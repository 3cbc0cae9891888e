package event_test

import (
	"bytes"
	"flag"
	"fmt"
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
	want := markdown(t)
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

// constant is one string constant of event.go, with its doc comment.
type constant struct {
	name, value, doc string
}

// constants reads the string constants of event.go in declaration order.
func constants(t *testing.T) []constant {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "event.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	var out []constant
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, sp := range gd.Specs {
			vs := sp.(*ast.ValueSpec)
			cg := vs.Doc
			if cg == nil && len(gd.Specs) == 1 {
				cg = gd.Doc // a lone const's comment is the declaration's
			}
			d := strings.Join(strings.Fields(cg.Text()), " ")
			for i, n := range vs.Names {
				if v, ok := stringLit(vs.Values[i]); ok {
					out = append(out, constant{name: n.Name, value: v, doc: d})
				}
			}
		}
	}
	return out
}

// metaKeys are the catalogued meta keys, in declaration order.
func metaKeys(t *testing.T) []constant {
	var out []constant
	for _, c := range constants(t) {
		if strings.HasPrefix(c.name, "Meta") {
			out = append(out, c)
		}
	}
	return out
}

// meaning is a constant's doc comment as a table cell: without the leading
// name (and "is", "says"), capitalized.
func meaning(c constant) string {
	d := strings.TrimPrefix(c.doc, c.name)
	for _, p := range []string{" is ", " says ", ", "} {
		if strings.HasPrefix(d, p) {
			d = d[len(p):]
			break
		}
	}
	d = strings.TrimSpace(d)
	if d == "" {
		return ""
	}
	return strings.ToUpper(d[:1]) + d[1:]
}

// markdown renders the catalogue and the constants' doc comments as
// docs/events.md.
func markdown(t *testing.T) []byte {
	byValue := map[string]constant{}
	for _, c := range constants(t) {
		if !strings.HasPrefix(c.name, "Meta") {
			byValue[c.value] = c
		}
	}
	var b bytes.Buffer
	b.WriteString("<!-- Generated from core/event by `go test ./core/event -run TestEventsDoc -update`; do not edit. -->\n\n")
	b.WriteString("# Events and commands\n\n")
	b.WriteString("Every event and command that crosses a package boundary, with where it travels, who\n" +
		"publishes it and who acts on it. An **event** says what happened and is published by the\n" +
		"owner of the state that changed; a **command** asks that owner to change it, and is answered\n" +
		"with the event in its *answer* column or with `command.rejected`. Envelopes are\n" +
		"`core.Message` (kind `event`, `Type` as below); `ConversationID` names the conversation.\n" +
		"Constants live in `core/event`; no other package spells these names. Who owns what:\n" +
		"[architecture.md](architecture.md).\n\n")
	for _, k := range []event.Kind{event.KindCommand, event.KindEvent} {
		if k == event.KindCommand {
			b.WriteString("## Commands\n\n| command | subject | sent by | executed by | answer | meta | meaning |\n|---|---|---|---|---|---|---|\n")
		} else {
			b.WriteString("## Events\n\n| event | subjects | published by | consumed by | meta | meaning |\n|---|---|---|---|---|---|\n")
		}
		for _, s := range event.Catalogue() {
			if s.Kind != k {
				continue
			}
			cells := []string{"`" + s.Type + "`", code(s.Subjects), strings.Join(s.Producers, ", "), strings.Join(s.Consumers, ", ")}
			if k == event.KindCommand {
				cells = append(cells, code([]string{s.Answer}))
			}
			cells = append(cells, code(s.Meta), meaning(byValue[s.Type]))
			fmt.Fprintf(&b, "| %s |\n", strings.Join(cells, " | "))
		}
		b.WriteString("\n")
	}
	b.WriteString("## Replies\n\n" +
		"Every message to a customer takes one path. Its author publishes an outbound message\n" +
		"(kind `message`, direction `outbound`, `ConversationID` set) on\n" +
		"`omni.in.<source>.<partition of the conversation>`: a desk (`slack`) for an agent's reply,\n" +
		"`routing` for acknowledgements and automatic replies, `tickets` for ticket notices. The\n" +
		"pipeline picks the channel (meta `reply_via`, else the channel the customer used last)\n" +
		"and the recipient (from the contact's identities only), appends it to the transcript\n" +
		"`omni.conv.<conversation>`, publishes it on `omni.out.<channel>` for the channel's adapter\n" +
		"and echoes it to the desks it did not come from. Deduplication ids derive from the\n" +
		"envelope id (`conv:`, `out:`, `desk:<desk>:`), so a redelivery sends nothing twice.\n\n")
	b.WriteString("## Meta keys\n\n| key | meaning |\n|---|---|\n")
	for _, m := range metaKeys(t) {
		fmt.Fprintf(&b, "| `%s` | %s |\n", m.value, meaning(m))
	}
	return b.Bytes()
}

func code(xs []string) string {
	if len(xs) == 0 || len(xs) == 1 && xs[0] == "" {
		return ""
	}
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = "`" + x + "`"
	}
	return strings.Join(out, ", ")
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
		if len(s.Subjects) == 0 || len(s.Producers) == 0 || len(s.Consumers) == 0 {
			t.Errorf("%s: subjects, producers and consumers are required", s.Type)
		}
		if s.Kind == event.KindCommand && s.Answer != "" {
			if a, ok := event.Lookup(s.Answer); !ok || a.Kind != event.KindEvent {
				t.Errorf("%s is answered by %q, which is no catalogued event", s.Type, s.Answer)
			}
		}
		for _, k := range s.Meta {
			if !slices.ContainsFunc(metaKeys(t), func(c constant) bool { return c.value == k }) {
				t.Errorf("%s carries meta %q, which is not catalogued", s.Type, k)
			}
		}
	}
	seen := map[string]bool{}
	for _, c := range constants(t) {
		if c.doc == "" {
			t.Errorf("%s has no doc comment: it is its entry in docs/events.md", c.name)
		}
		switch {
		case strings.HasPrefix(c.name, "Meta"):
			if seen[c.value] {
				t.Errorf("meta key %q defined twice", c.value)
			}
			seen[c.value] = true
		case c.name == "FormatMarkdown" || strings.HasPrefix(c.name, "By") || strings.HasPrefix(c.name, "Reason"):
		default:
			if !slices.Contains(types, c.value) {
				t.Errorf("%s = %q is not in the catalogue", c.name, c.value)
			}
		}
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
	for _, c := range metaKeys(t) {
		meta[c.value] = true
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
