package config

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// File is a configuration file as written: its name and YAML tree. Checks
// that look at several sections at once (a channel that needs
// http.public_url, a queue whose desk is not configured) use it to put their
// problems on the right line.
type File struct {
	// Name is the file name as given to Check, used in errors.
	Name string
	root *yaml.Node
}

// Problem returns a problem with the key at path (dotted, from the top of the
// file, e.g. "routing.queues.billing.desk"), located like the loader's: at the
// key when the file has it, at the environment variable that set it, or at its
// nearest parent in the file with Source "default".
func (f *File) Problem(path, format string, args ...any) *Error {
	e := &Error{Path: path, Msg: fmt.Sprintf(format, args...)}
	var root *yaml.Node
	name := ""
	if f != nil {
		root, name = f.root, f.Name
	}
	locateIn(name, root, "", e)
	return e
}

// Locate fills in the file positions of the problems in err whose paths are
// relative to the section written at node (nil when absent) and whose paths
// start with prefix once located, e.g. "channels.sms". It is for problems a
// component finds after decoding, such as a factory's, so that they read
// like the decoder's: "omnigate.yaml:4:3: channels.sms.public_url (default):
// required ...". An err that is not Errors or *Error is returned as it is.
func Locate(file string, node *yaml.Node, prefix string, err error) error {
	var list Errors
	var one *Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &list):
	case errors.As(err, &one):
		list = Errors{one}
	default:
		return err
	}
	out := make(Errors, 0, len(list))
	for _, e := range list {
		c := *e
		if c.File == "" && c.Line == 0 && c.Source == "" {
			c.Path = joinPath(prefix, e.Path)
			locateIn(file, node, prefix, &c)
		}
		out = append(out, &c)
	}
	return out
}

// locateIn sets e's position from the tree root, whose top is the key path
// prefix, or its Source from the environment.
func locateIn(file string, root *yaml.Node, prefix string, e *Error) {
	for p := e.Path; p != ""; p = parentPath(p) {
		if name := EnvName(p); hasEnv(name) {
			e.File, e.Line, e.Column, e.Source = "", 0, 0, "env "+name
			return
		}
	}
	e.File = file
	rel, ok := strings.CutPrefix(e.Path, prefix)
	if prefix != "" && ok {
		rel = strings.TrimPrefix(rel, ".")
	} else if prefix != "" {
		e.Source = "default"
		return
	}
	line, col, exact := findKey(root, splitPath(rel))
	if line == 0 && root != nil && prefix != "" {
		n := root
		if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
			n = n.Content[0]
		}
		line, col = n.Line, n.Column
	}
	e.Line, e.Column = line, col
	if !exact {
		e.Source = "default"
	}
}

func hasEnv(name string) bool {
	_, ok := os.LookupEnv(name)
	return ok
}

// splitPath splits a key path into keys and list indexes:
// "a.b[2].c" -> ["a", "b", "[2]", "c"].
func splitPath(p string) []string {
	var out []string
	for seg := range strings.SplitSeq(p, ".") {
		for {
			i := strings.IndexByte(seg, '[')
			if i < 0 {
				break
			}
			if i > 0 {
				out = append(out, seg[:i])
			}
			j := strings.IndexByte(seg[i:], ']')
			if j < 0 {
				break
			}
			out = append(out, seg[i:i+j+1])
			seg = seg[i+j+1:]
		}
		if seg != "" {
			out = append(out, seg)
		}
	}
	return out
}

// findKey walks root along segs and returns the position of the deepest key or
// list item found, and whether that was the last of segs. 0, 0 when not even
// the first is there.
func findKey(root *yaml.Node, segs []string) (line, col int, exact bool) {
	n := root
	for depth, seg := range segs {
		n = deref(n)
		if n == nil {
			return line, col, false
		}
		var next *yaml.Node
		switch {
		case strings.HasPrefix(seg, "[") && n.Kind == yaml.SequenceNode:
			i, err := strconv.Atoi(strings.Trim(seg, "[]"))
			if err != nil || i < 0 || i >= len(n.Content) {
				return line, col, false
			}
			next = n.Content[i]
			line, col = next.Line, next.Column
		case n.Kind == yaml.MappingNode:
			for k := 0; k+1 < len(n.Content); k += 2 {
				if key := n.Content[k]; key.Kind == yaml.ScalarNode && key.Value == seg {
					next = n.Content[k+1]
					line, col = key.Line, key.Column
					break
				}
			}
		}
		if next == nil {
			return line, col, false
		}
		if depth == len(segs)-1 {
			return line, col, true
		}
		n = next
	}
	return line, col, len(segs) == 0
}

// deref skips document nodes and follows aliases, a bounded number of times.
func deref(n *yaml.Node) *yaml.Node {
	for range maxDepth {
		switch {
		case n == nil:
			return nil
		case n.Kind == yaml.DocumentNode:
			if len(n.Content) == 0 {
				return nil
			}
			n = n.Content[0]
		case n.Kind == yaml.AliasNode:
			n = n.Alias
		default:
			return n
		}
	}
	return nil
}
