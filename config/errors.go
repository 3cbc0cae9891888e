package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Error is one problem in the configuration, located as precisely as the loader can:
// the file, line and column of the offending key (or of its nearest parent present in
// the file when the value is a default), the dotted key path, and a message.
type Error struct {
	File   string // file name as given to Load or Parse; empty for environment values
	Line   int    // 1-based; 0 when the value is not in the file
	Column int    // 1-based; 0 when unknown
	Path   string // dotted key path, e.g. "store.redis.url"; list items as "backoff[2]"
	Msg    string
	// Source says where a value not written in the file came from: "default" or
	// "env OMNIGATE_X". Empty when the value is in the file.
	Source string
	// Err is the error this problem reports when it came from one (a
	// component's factory refused the section), for errors.Is; nil otherwise.
	Err error
}

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }

// Error formats e as "file:line:col: path (source): msg", leaving out what is unknown,
// e.g. "omnigate.yaml:12:5: store.redis.url: required when store.backend is redis".
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":" + strconv.Itoa(e.Line))
			if e.Column > 0 {
				b.WriteString(":" + strconv.Itoa(e.Column))
			}
		}
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		if e.Source != "" {
			b.WriteString(" (" + e.Source + ")")
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one configuration. Load, Parse and DecodeSection
// return it, never empty, as their error; it prints one problem per line.
type Errors []*Error

// Error joins the problems, one per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems so that errors.As finds a *Error.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Problems collects validation problems with paths relative to the struct being
// validated. Validate methods use it so that every problem is reported, not only the
// first; the loader later prefixes the paths and adds file positions. The zero value
// is ready to use.
type Problems struct {
	errs Errors
}

// Add records a problem with the key at path (relative, e.g. "redis.url"; "" for the
// struct itself) and a message formatted like fmt.Sprintf. Messages must not contain
// secret values.
func (p *Problems) Add(path, format string, args ...any) {
	p.errs = append(p.errs, &Error{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// Merge records the problems of err, typically a nested section's Validate result,
// with their paths prefixed by prefix. A nil err adds nothing; an error that is not
// an Errors or *Error becomes one problem at prefix.
func (p *Problems) Merge(prefix string, err error) {
	if err == nil {
		return
	}
	var list Errors
	var one *Error
	switch {
	case errors.As(err, &list):
	case errors.As(err, &one):
		list = Errors{one}
	default:
		p.errs = append(p.errs, &Error{Path: prefix, Msg: err.Error()})
		return
	}
	for _, e := range list {
		c := *e
		c.Path = joinPath(prefix, e.Path)
		p.errs = append(p.errs, &c)
	}
}

// Err returns the collected problems as Errors, or nil when there are none.
func (p *Problems) Err() error {
	if len(p.errs) == 0 {
		return nil
	}
	return p.errs
}

// joinPath joins a parent path and a child key; list indexes attach without a dot.
func joinPath(parent, child string) string {
	switch {
	case parent == "":
		return child
	case child == "":
		return parent
	case strings.HasPrefix(child, "["):
		return parent + child
	}
	return parent + "." + child
}
