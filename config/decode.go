package config

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

var (
	nodeType            = reflect.TypeFor[yaml.Node]()
	secretType          = reflect.TypeFor[Secret]()
	durationType        = reflect.TypeFor[time.Duration]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	yamlUnmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
)

// maxDepth bounds nesting while decoding, against alias cycles in hostile input.
const maxDepth = 64

// field is one YAML key of a struct; fields of ",inline" structs are flattened in.
type field struct {
	name  string
	index []int
	doc   string
	def   string // the `default` tag: a description of a derived default
	typ   reflect.Type
}

// fieldsOf lists the YAML keys of struct type t in declaration order. The key is the
// yaml tag's name, or the lower-cased field name like yaml.v3 does.
func fieldsOf(t reflect.Type) []field {
	var out []field
	for i := range t.NumField() {
		sf := t.Field(i)
		name, opts, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if name == "-" || sf.Tag.Get("moved") != "" {
			continue
		}
		if sf.Type.Kind() == reflect.Struct && hasOpt(opts, "inline") {
			for _, f := range fieldsOf(sf.Type) {
				f.index = append([]int{i}, f.index...)
				out = append(out, f)
			}
			continue
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name)
		}
		out = append(out, field{name: name, index: []int{i}, doc: sf.Tag.Get("doc"), def: sf.Tag.Get("default"), typ: sf.Type})
	}
	return out
}

// movedOf maps the keys of struct type t that moved elsewhere to where they
// went: a field tagged `moved:"<where>"` is no key any more, and a config that
// still has it is told where it went. Such a field carries nothing.
func movedOf(t reflect.Type) map[string]string {
	var out map[string]string
	for i := range t.NumField() {
		sf := t.Field(i)
		if where := sf.Tag.Get("moved"); where != "" {
			name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
			if out == nil {
				out = map[string]string{}
			}
			out[name] = where
		}
	}
	return out
}

func hasOpt(opts, opt string) bool {
	for o := range strings.SplitSeq(opts, ",") {
		if o == opt {
			return true
		}
	}
	return false
}

// isSection reports whether t is a nested struct of keys rather than one value.
func isSection(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && t != nodeType && !textual(t) &&
		!reflect.PointerTo(t).Implements(yamlUnmarshalerType)
}

// textual reports whether t decodes itself from text (encoding.TextUnmarshaler), like
// slog.Level or net.IP: one scalar, whatever its kind.
func textual(t reflect.Type) bool {
	return reflect.PointerTo(t).Implements(textUnmarshalerType)
}

// position is where a key was written.
type position struct{ line, col int }

// decoder decodes yaml.Nodes into config structs strictly, collecting every problem
// and remembering where each key path was written and which came from the
// environment, so that validation problems can be located afterwards.
type decoder struct {
	file  string
	pos   map[string]position // key path -> position of the key in the file
	env   map[string]string   // key path -> environment variable that set it
	errs  Errors              // decoding problems, already located
	depth int
}

func newDecoder(file string) *decoder {
	return &decoder{file: file, pos: map[string]position{}, env: map[string]string{}}
}

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: n.Line, Column: n.Column, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// decode stores n into v, which must be settable. Null leaves v as it is.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	d.depth++
	defer func() { d.depth-- }()
	if d.depth > maxDepth {
		d.errorf(n, path, "nested too deeply")
		return
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			d.errorf(n, path, "unknown alias")
			return
		}
		d.decode(n.Alias, v, path)
		return
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) > 0 {
			d.decode(n.Content[0], v, path)
		}
		return
	}
	if v.Type() == nodeType {
		v.Set(reflect.ValueOf(*n))
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return
	}
	switch {
	case v.Type() == secretType || v.Type() == durationType || textual(v.Type()):
		d.scalar(n, v, path)
	case v.Kind() == reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
	case reflect.PointerTo(v.Type()).Implements(yamlUnmarshalerType), v.Kind() == reflect.Interface:
		if err := n.Decode(v.Addr().Interface()); err != nil {
			d.errorf(n, path, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
	case isSection(v.Type()):
		d.mapping(n, v, path)
	case v.Kind() == reflect.Map:
		d.dict(n, v, path)
	case v.Kind() == reflect.Slice:
		d.list(n, v, path)
	default:
		d.scalar(n, v, path)
	}
}

// mapping decodes a YAML mapping into a struct, rejecting unknown and repeated keys.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "want a mapping of keys, got %s", describe(n))
		return
	}
	fields := fieldsOf(v.Type())
	byName := make(map[string]field, len(fields))
	names := make([]string, len(fields))
	for i, f := range fields {
		byName[f.name] = f
		names[i] = f.name
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, path, "keys must be strings, got %s", describe(k))
			continue
		}
		p := joinPath(path, k.Value)
		if line, dup := seen[k.Value]; dup {
			d.errorf(k, p, "duplicate key (first at line %d)", line)
			continue
		}
		seen[k.Value] = k.Line
		f, ok := byName[k.Value]
		if !ok {
			if where, moved := movedOf(v.Type())[k.Value]; moved {
				d.errorf(k, p, "this key moved: %s", where)
			} else if k.Value == "<<" {
				d.errorf(k, p, "merge keys are not supported")
			} else {
				d.errorf(k, p, "unknown key (known keys: %s)", strings.Join(names, ", "))
			}
			continue
		}
		d.pos[p] = position{k.Line, k.Column}
		d.decode(val, v.FieldByIndex(f.index), p)
	}
}

// dict decodes a YAML mapping into a map with string keys.
func (d *decoder) dict(n *yaml.Node, v reflect.Value, path string) {
	if v.Type().Key().Kind() != reflect.String {
		d.errorf(n, path, "unsupported map key type %s", v.Type().Key())
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "want a mapping, got %s", describe(n))
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, path, "keys must be strings, got %s", describe(k))
			continue
		}
		p := joinPath(path, k.Value)
		if line, dup := seen[k.Value]; dup {
			d.errorf(k, p, "duplicate key (first at line %d)", line)
			continue
		}
		seen[k.Value] = k.Line
		d.pos[p] = position{k.Line, k.Column}
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(val, elem, p)
		m.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), elem)
	}
	v.Set(m)
}

// list decodes a YAML sequence into a slice, replacing any default.
func (d *decoder) list(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, path, "want a list, got %s", describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		d.pos[p] = position{item.Line, item.Column}
		d.decode(item, s.Index(i), p)
	}
	v.Set(s)
}

// scalar decodes a YAML scalar into a string, number, bool, duration or Secret.
func (d *decoder) scalar(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, "want %s, got %s", want(v.Type()), describe(n))
		return
	}
	if err := setScalar(v, n.Value); err != nil {
		d.errorf(n, path, "%v", err)
	}
}

// setScalar parses s into v; YAML scalars and environment values share it. Errors
// quote s except for Secrets, which are never echoed.
func setScalar(v reflect.Value, s string) error {
	switch v.Type() {
	case secretType:
		sec, err := resolveSecret(s)
		if err != nil {
			return err
		}
		v.SetString(string(sec))
		return nil
	case durationType:
		dur, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("want a duration like 30s, 5m or 72h, got %q", s)
		}
		v.SetInt(int64(dur))
		return nil
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		return setScalar(v.Elem(), s)
	}
	if textual(v.Type()) {
		u := v.Addr().Interface().(encoding.TextUnmarshaler)
		if err := u.UnmarshalText([]byte(s)); err != nil {
			return fmt.Errorf("invalid value %q: %v", s, err)
		}
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("want true or false, got %q", s)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, err := strconv.ParseInt(s, 0, v.Type().Bits())
		if err != nil {
			return numError("an integer", s, err)
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		u, err := strconv.ParseUint(s, 0, v.Type().Bits())
		if err != nil {
			return numError("a non-negative integer", s, err)
		}
		v.SetUint(u)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(s, v.Type().Bits())
		if err != nil {
			return numError("a number", s, err)
		}
		v.SetFloat(f)
	default:
		return fmt.Errorf("unsupported type %s", v.Type())
	}
	return nil
}

func numError(what, s string, err error) error {
	if errors.Is(err, strconv.ErrRange) {
		return fmt.Errorf("%q is out of range", s)
	}
	return fmt.Errorf("want %s, got %q", what, s)
}

// want names what a value of type t looks like, for type errors.
func want(t reflect.Type) string {
	switch typeName(t) {
	case "string", "secret":
		return "a string"
	case "duration":
		return "a duration"
	case "bool":
		return "true or false"
	case "int", "uint":
		return "an integer"
	case "float":
		return "a number"
	}
	return "a single value"
}

// describe names the kind of a node for type errors. It never quotes the value, which
// could be a secret written in the wrong place.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!int", "!!float":
			return "a number"
		case "!!bool":
			return "true/false"
		}
		return "a string"
	}
	return "an alias"
}
