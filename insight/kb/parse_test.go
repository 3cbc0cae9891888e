package kb_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/insight/kb"
)

func TestParseMarkdown(t *testing.T) {
	a, err := kb.ParseMarkdown("cards/arrival.md", []byte("---\r\ntitle: My card has not arrived\r\nname: card-arrival\r\nlang: en\r\nquestions:\r\n  - Where is my card?\r\n  - \" \"\r\n  - 我的卡还没到\r\n---\r\nHi {{contact.name}},\r\n\r\ncards arrive within **5** days.\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := kb.Article{ID: "cards/arrival.md", Title: "My card has not arrived", Name: "card-arrival", Lang: "en",
		Questions: []string{"Where is my card?", "我的卡还没到"}, Answer: "Hi {{contact.name}},\n\ncards arrive within **5** days."}
	if a.ID != want.ID || a.Title != want.Title || a.Name != want.Name || a.Lang != want.Lang || !slices.Equal(a.Questions, want.Questions) || a.Answer != want.Answer {
		t.Errorf("got %+v\nwant %+v", a, want)
	}

	a, err = kb.ParseMarkdown("pin.md", []byte("# Reset your PIN\n\nOpen the app, then Card > PIN.\n"))
	if err != nil || a.Title != "Reset your PIN" || a.Answer != "Open the app, then Card > PIN." || a.Name != "" {
		t.Errorf("heading title: %+v, %v", a, err)
	}

	for _, tc := range []struct{ name, in, want string }{
		{"unknown key", "---\ntitle: x\nnmae: y\n---\nanswer", `x.md:3: front matter: field nmae not found (keys: title`},
		{"unclosed", "---\ntitle: x\nanswer", "x.md:1: front matter opened with --- is not closed"},
		{"no answer", "---\ntitle: x\n---\n\n", "x.md:4: no answer"},
		{"bad name", "---\nname: Card Arrival\n---\nhi", `x.md:4: name "Card Arrival": want lower-case letters`},
		{"unknown variable", "Hi {{customer.name}}", "x.md:1: canned: unknown variable {{customer.name}}"},
		{"bad lang", "---\nlang: english!\n---\nhi", `lang "english!"`},
		{"binary", "\xff\xfe", "not UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := kb.ParseMarkdown("x.md", []byte(tc.in))
			var pe *kb.ParseError
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestParseCSV(t *testing.T) {
	in := "Question,Answer,Name\n" +
		"Where is my card?,Cards arrive in 5 days.,card-arrival\n" +
		"My card has not come,,card-arrival\n" +
		"How do I reset my PIN?,\"In the app: Card, then PIN.\",\n" +
		"Reset PIN,\"In the app: Card, then PIN.\",\n" +
		",An answer without question,\n" +
		"A question without answer,,\n" +
		"Hi,Hello {{order.id}},\n"
	arts, skipped, err := kb.ParseCSV("faq.csv", strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(arts) != 2 {
		t.Fatalf("articles %+v", arts)
	}
	if a := arts[0]; a.ID != "faq.csv:2" || a.Name != "card-arrival" || !slices.Equal(a.Questions, []string{"Where is my card?", "My card has not come"}) {
		t.Errorf("named article %+v", a)
	}
	if a := arts[1]; a.Name != "" || len(a.Questions) != 2 || a.Answer != "In the app: Card, then PIN." {
		t.Errorf("grouped by answer %+v", a)
	}
	var msgs []string
	for _, e := range skipped {
		msgs = append(msgs, e.Error())
	}
	want := []string{"kb: faq.csv:6: no question", "kb: faq.csv:7: no answer", "kb: faq.csv:8: canned: unknown variable {{order.id}}"}
	if len(msgs) != len(want) {
		t.Fatalf("skipped %q", msgs)
	}
	for i := range want {
		if !strings.HasPrefix(msgs[i], want[i]) {
			t.Errorf("skipped[%d] = %q, want %q...", i, msgs[i], want[i])
		}
	}
	if _, _, err := kb.ParseCSV("x.csv", strings.NewReader("text,intent\na,b\n")); err == nil || !strings.Contains(err.Error(), "want question,answer") {
		t.Errorf("wrong header: %v", err)
	}
}

// TestKB_Reload reads a folder, sees a changed and a new file, keeps the
// first of two articles of one name, and keeps learned answers across
// reloads.
func TestKB_Reload(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		// A later write must look changed even on a coarse clock.
		later := time.Now().Add(time.Duration(len(text)) * time.Second)
		if err := os.Chtimes(p, later, later); err != nil {
			t.Fatal(err)
		}
	}
	write("a.md", "---\nname: hello\n---\nHello {{contact.name}}")
	write("sub/b.md", "---\nname: hello\nquestions: [opening hours]\n---\nWe open at 9.")
	write("faq.csv", "question,answer\nHow much is a transfer?,Transfers are free.\n")
	write("notes.txt", "not an article")
	write(".hidden/c.md", "# Hidden\nnot read")
	k, problems, err := kb.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) != 1 || !strings.Contains(problems[0].Error(), `name "hello" is a.md's already`) {
		t.Errorf("problems %v", problems)
	}
	if n := k.Index().Len(); n != 3 {
		t.Errorf("%d articles, want 3", n)
	}
	if a, ok := k.Index().Answer("hello"); !ok || a.ID != "a.md" {
		t.Errorf("hello is %+v %v", a, ok)
	}
	if changed, _, err := k.Reload(); changed || err != nil {
		t.Errorf("Reload without a change: %v %v", changed, err)
	}
	k.SetLearned([]kb.Article{{ID: "learned:c1:0", Name: "sneaky", Questions: []string{"can I pay by cheque"}, Answer: "No, sorry."}})
	write("a.md", "---\nname: hi\n---\nHi there {{contact.name}}!")
	changed, _, err := k.Reload()
	if !changed || err != nil {
		t.Fatalf("Reload after a change: %v %v", changed, err)
	}
	ix := k.Index()
	if _, ok := ix.Answer("hi"); !ok {
		t.Error("renamed answer hi not found")
	}
	if _, ok := ix.Answer("sneaky"); ok {
		t.Error("a learned answer became a canned answer")
	}
	hits := ix.Search("pay by cheque", 1)
	if len(hits) != 1 || !hits[0].Article.Learned || hits[0].Article.Answer != "No, sorry." {
		t.Errorf("learned answer not found: %v", hits)
	}
	if _, _, err := kb.Open(filepath.Join(dir, "missing")); err == nil {
		t.Error("Open of a missing path succeeded")
	}
}
