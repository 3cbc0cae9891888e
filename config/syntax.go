package config

import (
	"errors"
	"regexp"
	"strconv"
	"strings"

	goccy "github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/parser"
)

var syntaxLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError turns a YAML parse error of data into a located Error. The
// parser that decodes the file (yaml.v3) reports the line where the enclosing
// block or flow began, often lines before the mistake, and no column; a second
// parser that keeps the position of the offending token says where it is.
// When that one sees no mistake, yaml.v3's line is kept.
func syntaxError(file string, data []byte, err error) *Error {
	e := &Error{File: file, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	if m := syntaxLine.FindStringSubmatch(err.Error()); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Msg = m[2]
	}
	// yaml.v3's line is where the construct around the mistake began, so the
	// mistake is not above it; a position above it is a different complaint.
	if line, col, msg, ok := tokenPosition(data); ok && line >= e.Line {
		e.Line, e.Column, e.Msg = line, col, msg
	}
	return e
}

// tokenPosition parses data with goccy/go-yaml and returns where its first
// syntax error is.
func tokenPosition(data []byte) (line, col int, msg string, ok bool) {
	defer func() {
		if recover() != nil { // a second opinion only: never worth a crash
			ok = false
		}
	}()
	_, err := parser.ParseBytes(data, 0)
	var se *goccy.SyntaxError
	if !errors.As(err, &se) || se.Token == nil || se.Token.Position == nil || se.Token.Position.Line <= 0 {
		return 0, 0, "", false
	}
	tok := se.Token
	// A flow collection left open is noticed at the next line's token; the
	// mistake is after the last value before it.
	if strings.HasSuffix(se.Message, "must be specified") && tok.Prev != nil && tok.Prev.Position != nil &&
		tok.Prev.Position.Line > 0 && tok.Prev.Position.Line < tok.Position.Line {
		return tok.Prev.Position.Line, tok.Prev.Position.Column, se.Message + " after this value", true
	}
	return tok.Position.Line, tok.Position.Column, se.Message, true
}
