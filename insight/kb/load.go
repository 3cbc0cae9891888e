package kb

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// maxFiles bounds the files of one knowledge base folder.
const maxFiles = 10000

// Load reads the knowledge base at path: a folder (its *.md, *.markdown and
// *.csv files, in subfolders too) or one CSV or Markdown file. Articles that
// cannot be read are skipped and told in problems, so that one bad file
// does not take the others away; err is only for a path that cannot be read.
// Of two articles with the same name the first (by path) keeps it.
func Load(path string) (arts []Article, problems []error, err error) {
	files, err := kbFiles(path)
	if err != nil {
		return nil, nil, err
	}
	base := path
	if fi, err := os.Stat(path); err == nil && !fi.IsDir() {
		base = filepath.Dir(path)
	}
	names := map[string]string{}
	for _, f := range files {
		rel, err := filepath.Rel(base, f)
		if err != nil {
			rel = f
		}
		rel = filepath.ToSlash(rel)
		data, err := os.ReadFile(f)
		if err != nil {
			problems = append(problems, fmt.Errorf("kb: %w", err))
			continue
		}
		var got []Article
		if strings.EqualFold(filepath.Ext(f), ".csv") {
			var skipped []error
			got, skipped, err = ParseCSV(rel, strings.NewReader(string(data)))
			problems = append(problems, skipped...)
		} else {
			var a Article
			if a, err = ParseMarkdown(rel, data); err == nil {
				got = []Article{a}
			}
		}
		if err != nil {
			problems = append(problems, err)
		}
		for _, a := range got {
			if other, dup := names[a.Name]; a.Name != "" && dup {
				problems = append(problems, &ParseError{File: a.ID, Msg: fmt.Sprintf("name %q is %s's already: this one is not a canned answer", a.Name, other)})
				a.Name = ""
			} else if a.Name != "" {
				names[a.Name] = a.ID
			}
			arts = append(arts, a)
		}
	}
	return arts, problems, nil
}

// kbFiles lists the knowledge base files at path, sorted.
func kbFiles(path string) ([]string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("kb: %w", err)
	}
	if !fi.IsDir() {
		return []string{path}, nil
	}
	var files []string
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if p != path && strings.HasPrefix(name, ".") {
				return filepath.SkipDir
			}
			return nil
		}
		switch strings.ToLower(filepath.Ext(name)) {
		case ".md", ".markdown", ".csv":
			if !strings.HasPrefix(name, ".") && len(files) < maxFiles {
				files = append(files, p)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("kb: %w", err)
	}
	slices.Sort(files)
	return files, nil
}

// signature names the state of the files at path (names, sizes, times): it
// changes when one is added, removed or written.
func signature(path string) (string, error) {
	files, err := kbFiles(path)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			continue // removed meanwhile: the next look sees it gone
		}
		fmt.Fprintf(h, "%s\x00%d\x00%d\n", f, fi.Size(), fi.ModTime().UnixNano())
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// KB is a live knowledge base: the articles of a path, read again when its
// files change (Reload), and the answers learned from resolved
// conversations (SetLearned), in one Index. Its methods are safe for
// concurrent use; Index is a lock-free read.
type KB struct {
	path string

	mu      sync.Mutex // held by Reload and SetLearned
	sig     string
	base    []Article
	learned []Article

	ix atomic.Pointer[Index]
}

// Open reads the knowledge base at path. Problems are the articles it
// skipped; err is for a path that cannot be read.
func Open(path string) (k *KB, problems []error, err error) {
	k = &KB{path: path}
	k.ix.Store(NewIndex(nil))
	_, problems, err = k.Reload()
	if err != nil {
		return nil, problems, err
	}
	return k, problems, nil
}

// Path is the knowledge base's path.
func (k *KB) Path() string { return k.path }

// Index is the current index.
func (k *KB) Index() *Index { return k.ix.Load() }

// Reload reads the knowledge base again if its files changed since the last
// read, and reports whether they had. On an error the articles read before
// stay in use.
func (k *KB) Reload() (changed bool, problems []error, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	sig, err := signature(k.path)
	if err != nil {
		return false, nil, err
	}
	if sig == k.sig {
		return false, nil, nil
	}
	arts, problems, err := Load(k.path)
	if err != nil {
		return false, problems, err
	}
	k.sig, k.base = sig, arts
	k.build()
	return true, problems, nil
}

// SetLearned replaces the learned answers (Article.Learned) with arts.
func (k *KB) SetLearned(arts []Article) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.learned = slices.Clone(arts)
	for i := range k.learned {
		k.learned[i].Learned, k.learned[i].Name = true, ""
	}
	k.build()
}

// build indexes base and learned; k.mu is held.
func (k *KB) build() {
	k.ix.Store(NewIndex(slices.Concat(k.base, k.learned)))
}
