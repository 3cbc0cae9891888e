package main

import (
	"encoding/csv"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/omnigate/omnigate/insight/kb"
)

// suggestUsage is the usage of omnigate suggest.
const suggestUsage = `usage:
  omnigate suggest eval --kb PATH FILE       top-1/top-3 of the knowledge base on a labelled CSV (text,intent)
  omnigate suggest search --kb PATH TEXT     the three articles suggested for TEXT
  omnigate suggest split [--hold-out N] -o DIR [--held-out FILE] FILE
                                             one canned answer per intent of a labelled CSV, indexed by its
                                             questions but every N-th, which go to the held-out CSV
`

// cmdSuggest runs omnigate suggest: the tools of the knowledge base behind
// suggested replies (insight/kb).
func cmdSuggest(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, suggestUsage)
		return exitError{2}
	}
	switch args[0] {
	case "eval", "search":
		return suggestEval(args[0], args[1:], stdout, stderr)
	case "split":
		return suggestSplit(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "omnigate suggest: unknown command %q\n%s", args[0], suggestUsage)
	return exitError{2}
}

// openKB opens the knowledge base at path and prints what it skipped.
func openKB(path string, stderr io.Writer) (*kb.KB, error) {
	k, problems, err := kb.Open(path)
	for _, p := range problems {
		fmt.Fprintln(stderr, "skipped:", p)
	}
	if err != nil {
		return nil, err
	}
	return k, nil
}

// suggestEval runs eval (FILE) and search (TEXT).
func suggestEval(sub string, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("suggest "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("kb", "", "the knowledge base: a folder of Markdown articles or a CSV `PATH`")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	if *path == "" || fs.NArg() == 0 || (sub == "eval" && fs.NArg() != 1) {
		fmt.Fprint(stderr, suggestUsage)
		return exitError{2}
	}
	k, err := openKB(*path, stderr)
	if err != nil {
		return err
	}
	if sub == "search" {
		for i, h := range k.Index().Search(strings.Join(fs.Args(), " "), 3) {
			a := h.Article
			fmt.Fprintf(stdout, "%d. %s (%.3f) %s\n   %s\n", i+1, a.ID, h.Score, a.Title, strings.ReplaceAll(a.Answer, "\n", "\n   "))
		}
		return nil
	}
	rows, err := readLabelled(fs.Arg(0), stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d articles\n%s\n", k.Index().Len(), kb.Eval(k.Index(), rows))
	return nil
}

// readLabelled reads a labelled CSV and says how many rows it skipped.
func readLabelled(file string, stderr io.Writer) ([]kb.Labelled, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rows, skipped, err := kb.ReadLabelled(f)
	if skipped > 0 {
		fmt.Fprintf(stderr, "%s: skipped %d rows without text or label\n", file, skipped)
	}
	return rows, err
}

// suggestSplit writes a knowledge base of one article per intent of a
// labelled CSV, and the questions held out of it.
func suggestSplit(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("suggest split", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "write the articles into `DIR`")
	heldFile := fs.String("held-out", "", "write the held-out questions to `FILE` (text,intent)")
	holdOut := fs.Int("hold-out", 5, "hold out every `N`-th question of each intent (0: none)")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	if *out == "" || fs.NArg() != 1 || *holdOut < 0 || *holdOut == 1 {
		fmt.Fprint(stderr, suggestUsage)
		return exitError{2}
	}
	rows, err := readLabelled(fs.Arg(0), stderr)
	if err != nil {
		return err
	}
	arts, held := kb.Split(rows, *holdOut, func(label string) string {
		return "Hi {{contact.name}}, this is our answer about " + strings.ReplaceAll(label, "_", " ") + ". (Write the answer your team gives here.)"
	})
	if err := kb.WriteMarkdown(*out, arts); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d articles in %s\n", len(arts), *out)
	if *heldFile == "" {
		return nil
	}
	f, err := os.Create(*heldFile)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	_ = w.Write([]string{"text", "intent"})
	for _, r := range held {
		_ = w.Write([]string{r.Text, r.Label})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d held-out questions in %s\n", len(held), *heldFile)
	return nil
}
