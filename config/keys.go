package config

import (
	"encoding"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Key describes one configuration key, for listings, docs and checks.
type Key struct {
	Path    string // dotted key path, e.g. "nats.streams.replicas"
	Type    string // string, secret, duration, int, uint, float, bool, []T, map[string]T, object
	Default string // the default as written in YAML, or a description of a derived default; "" when none
	Doc     string // the field's doc tag
	Env     string // the overriding environment variable; "" for keys that cannot be set from one
	Secret  bool   // the value is a Secret
}

// Keys lists the keys of config struct v (a value or pointer; its contents are not
// read) in declaration order, with paths under prefix. Nested sections are walked, so
// only leaves are listed; a map or a list of structs is one key. Defaults come from a
// `default` tag when present, otherwise from a fresh value after SetDefaults.
func Keys(v any, prefix string) []Key {
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || !isSection(t) {
		return nil
	}
	var keys []Key
	walkKeys(defaults(t), prefix, &keys)
	return keys
}

// defaults returns a new value of struct type t after its SetDefaults, if any.
func defaults(t reflect.Type) reflect.Value {
	p := reflect.New(t)
	if d, ok := p.Interface().(Defaulter); ok {
		d.SetDefaults()
	}
	return p.Elem()
}

func walkKeys(v reflect.Value, prefix string, keys *[]Key) {
	for _, f := range fieldsOf(v.Type()) {
		path := joinPath(prefix, f.name)
		fv := v.FieldByIndex(f.index)
		if isSection(f.typ) {
			walkKeys(fv, path, keys)
			continue
		}
		k := Key{Path: path, Type: typeName(f.typ), Default: f.def, Doc: f.doc, Secret: f.typ == secretType}
		if k.Default == "" && !fv.IsZero() {
			k.Default = yamlValue(fv)
		}
		if envSettable(f.typ) {
			k.Env = EnvName(path)
		}
		*keys = append(*keys, k)
	}
}

// typeName is the short type name used in Key.Type.
func typeName(t reflect.Type) string {
	switch t {
	case secretType:
		return "secret"
	case durationType:
		return "duration"
	case nodeType:
		return "object"
	}
	if textual(t) {
		return "string"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return typeName(t.Elem())
	case reflect.Slice:
		return "[]" + typeName(t.Elem())
	case reflect.Map:
		return "map[string]" + typeName(t.Elem())
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "bool"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "int"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "uint"
	case reflect.Float32, reflect.Float64:
		return "float"
	case reflect.Struct, reflect.Interface:
		return "object"
	}
	return t.String()
}

// Example renders config struct v (a value or pointer; its contents are not read) as
// annotated YAML: each key preceded by its doc as a comment and set to its default.
// Keys whose default is derived from other keys (a `default` tag) are left at their
// zero value, which selects the derived default, and the comment says what it is.
func Example(v any) string {
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || !isSection(t) {
		return ""
	}
	var b strings.Builder
	writeExample(&b, defaults(t), 0)
	return b.String()
}

func writeExample(b *strings.Builder, v reflect.Value, depth int) {
	indent := strings.Repeat("  ", depth)
	afterSection := false
	for i, f := range fieldsOf(v.Type()) {
		// A blank line around each section, so sections stand apart.
		if i > 0 && (afterSection || isSection(f.typ)) {
			b.WriteString("\n")
		}
		afterSection = isSection(f.typ)
		doc := f.doc
		if f.def != "" {
			doc = strings.TrimSpace(doc + " Default: " + f.def + ".")
		}
		for _, line := range wrap(doc, 80-len(indent)-2) {
			b.WriteString(indent + "# " + line + "\n")
		}
		fv := v.FieldByIndex(f.index)
		if isSection(f.typ) {
			b.WriteString(indent + f.name + ":\n")
			writeExample(b, fv, depth+1)
			continue
		}
		val := yamlValue(fv)
		if f.def != "" {
			val = yamlValue(reflect.Zero(f.typ))
		}
		b.WriteString(indent + f.name + ": " + val + "\n")
	}
}

// wrap splits text into lines of at most width characters, at spaces.
func wrap(text string, width int) []string {
	var lines []string
	var line string
	for _, w := range strings.Fields(text) {
		if line != "" && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}

// yamlValue renders v as a YAML flow value: durations as "30s", lists as "[a, b]",
// empty maps as "{}", strings quoted when plain YAML would read them otherwise.
// Secrets render masked.
func yamlValue(v reflect.Value) string {
	switch v.Type() {
	case secretType:
		return quote(v.Interface().(Secret).String())
	case durationType:
		return fmtDuration(time.Duration(v.Int()))
	case nodeType:
		return "{}"
	}
	if v.Kind() == reflect.Pointer && v.IsNil() {
		return "null"
	}
	if m, ok := v.Interface().(encoding.TextMarshaler); ok {
		if text, err := m.MarshalText(); err == nil {
			return quote(string(text))
		}
	}
	switch v.Kind() {
	case reflect.Pointer:
		return yamlValue(v.Elem())
	case reflect.String:
		return quote(v.String())
	case reflect.Slice:
		items := make([]string, v.Len())
		for i := range items {
			items[i] = yamlValue(v.Index(i))
		}
		return "[" + strings.Join(items, ", ") + "]"
	case reflect.Map:
		var items []string
		iter := v.MapRange()
		for iter.Next() {
			items = append(items, quote(fmt.Sprint(iter.Key().Interface()))+": "+yamlValue(iter.Value()))
		}
		slices.Sort(items)
		return "{" + strings.Join(items, ", ") + "}"
	}
	return fmt.Sprint(v.Interface())
}

// quote returns s as a plain YAML scalar when that reads back as the same string,
// and double-quoted otherwise.
func quote(s string) string {
	plain := s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_./-+@", r))
	}) < 0 && s[0] != '@'
	switch strings.ToLower(s) {
	case "true", "false", "yes", "no", "on", "off", "null", "y", "n", ".inf", "-.inf", "+.inf", ".nan":
		plain = false
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		plain = false
	}
	if _, err := strconv.ParseInt(s, 0, 64); err == nil {
		plain = false
	}
	if plain {
		return s
	}
	return strconv.Quote(s)
}

// fmtDuration prints d without zero trailing units: 2m, 72h, 1h30m, 30s.
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
