package config

import (
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Defaulter is implemented by config structs that fill in defaults. SetDefaults is
// called once, after the file and environment are decoded, and sets every field
// still at its zero value.
type Defaulter interface {
	SetDefaults()
}

// Validator is implemented by config structs that check themselves. Validate is
// called after SetDefaults and reports every problem, with paths relative to the
// struct, usually through a Problems; it returns nil when the struct is valid.
type Validator interface {
	Validate() error
}

// Default returns the configuration used when there is no file and no environment
// override: an embedded NATS server and JetStream KV store in ./data, HTTP on :8080.
func Default() *Config {
	c := &Config{}
	c.SetDefaults()
	return c
}

// Load reads the YAML file at path, applies OMNIGATE_* environment overrides and
// defaults, and validates the result. With path "" it uses defaults and the
// environment only. A configuration problem is returned as Errors, listing every
// problem found; a file that cannot be read is returned as that error, wrapped.
func Load(path string) (*Config, error) {
	var data []byte
	if path != "" {
		var err error
		data, err = os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	return Parse(path, data)
}

// Parse is Load for YAML already in memory; name is the file name used in errors.
// Environment overrides apply. On error the returned Config is nil and the error is
// Errors.
func Parse(name string, data []byte) (*Config, error) {
	c, _, err := Check(name, data)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Check is Parse for omnigate check-config and for serve, which go on to check
// the sections this package leaves to their components (channels, routing,
// tickets) and what spans sections: it returns the configuration even when it
// has problems, decoded as far as it goes with defaults in what failed, and the
// File to locate further problems in. Only a YAML syntax error, which leaves
// nothing to decode, returns a nil Config; the error is then Errors with that
// one problem, at the line and column where the YAML goes wrong.
func Check(name string, data []byte) (*Config, *File, error) {
	c := &Config{}
	f := &File{Name: name}
	if len(data) > 0 {
		var doc yaml.Node
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return nil, f, Errors{syntaxError(name, data, err)}
		}
		f.root = &doc
	}
	return c, f, load(name, f.root, "", envRoot, reflect.ValueOf(c).Elem())
}

// DecodeSection decodes one section of the configuration file, usually a
// channels.<name> node of Config.Channels, into dst, a pointer to the section's config
// struct. It decodes strictly (unknown keys and type errors are problems), applies
// the environment overrides named envPrefix + "_" + KEY (envPrefix is the section's
// EnvName, e.g. "OMNIGATE_CHANNELS_SMS"; "" disables overrides), then calls
// dst.SetDefaults and dst.Validate when dst implements Defaulter and Validator.
//
// Problems are returned as Errors located in file; their paths start with the
// section's path, derived from envPrefix: the part after OMNIGATE_, lower-cased, with
// the underscore after a top-level section name read as a dot
// ("OMNIGATE_CHANNELS_MY_BOT" -> "channels.my_bot"). node may be nil or null when the
// section is absent from the file; environment overrides and defaults still apply.
func DecodeSection(file string, node *yaml.Node, envPrefix string, dst any) error {
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.IsNil() || !isSection(v.Elem().Type()) {
		return fmt.Errorf("config: DecodeSection needs a pointer to a struct, got %T", dst)
	}
	return load(file, node, sectionPath(envPrefix), envPrefix, v.Elem())
}

// sectionPath derives a section's key path from its environment prefix.
func sectionPath(envPrefix string) string {
	rest, ok := strings.CutPrefix(envPrefix, envRoot+"_")
	if !ok {
		return ""
	}
	rest = strings.ToLower(rest)
	for _, f := range fieldsOf(reflect.TypeFor[Config]()) {
		if sub, ok := strings.CutPrefix(rest, f.name+"_"); ok && (isSection(f.typ) || f.typ.Kind() == reflect.Map) {
			return f.name + "." + sub
		}
	}
	return rest
}

// load is the pipeline shared by Parse and DecodeSection: decode node (may be nil)
// into v at key path, apply environment overrides, set defaults, validate, and
// locate every problem.
func load(file string, node *yaml.Node, path, env string, v reflect.Value) error {
	d := newDecoder(file)
	if node != nil && node.Kind == yaml.DocumentNode && len(node.Content) > 0 {
		node = node.Content[0]
	}
	if node != nil && node.Kind != 0 && node.Kind != yaml.DocumentNode {
		if path != "" {
			// A section's own position locates defaults inside it; the whole file's
			// position (1:1) would only mislead, so top-level defaults get line 0.
			d.pos[path] = position{node.Line, node.Column}
		}
		d.decode(node, v, path)
	}
	if env != "" {
		d.applyEnv(v, path, env)
	}
	if s, ok := v.Addr().Interface().(Defaulter); ok {
		s.SetDefaults()
	}
	if s, ok := v.Addr().Interface().(Validator); ok {
		var p Problems
		p.Merge(path, s.Validate())
		d.addProblems(p.errs)
	}
	return d.result()
}

// addProblems locates validation problems, skipping keys that already failed to
// decode: their value is a default now, and the decoding problem says what is wrong.
func (d *decoder) addProblems(list Errors) {
	failed := map[string]bool{}
	for _, e := range d.errs {
		failed[e.Path] = true
	}
	for _, e := range list {
		if failed[e.Path] {
			continue
		}
		d.locate(e)
		d.errs = append(d.errs, e)
	}
}

// locate fills in where the value at e.Path came from: the environment variable
// that set it or one of its parents, its key in the file, or, for a default, the
// nearest parent key written in the file.
func (d *decoder) locate(e *Error) {
	for p := e.Path; ; p = parentPath(p) {
		if name, ok := d.env[p]; ok {
			e.File, e.Line, e.Column, e.Source = "", 0, 0, "env "+name
			return
		}
		if p == "" {
			break
		}
	}
	e.File = d.file
	for p := e.Path; ; p = parentPath(p) {
		if pos, ok := d.pos[p]; ok {
			e.Line, e.Column = pos.line, pos.col
			if p != e.Path {
				e.Source = "default"
			}
			return
		}
		if p == "" {
			break
		}
	}
	e.Source = "default"
}

// parentPath drops the last segment of a key path: "a.b[2]" -> "a.b" -> "a" -> "".
func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

// result returns the problems ordered by position, environment problems last, or nil.
func (d *decoder) result() error {
	if len(d.errs) == 0 {
		return nil
	}
	sort.SliceStable(d.errs, func(i, j int) bool {
		a, b := d.errs[i], d.errs[j]
		if (a.Line == 0) != (b.Line == 0) {
			return b.Line == 0
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	return d.errs
}
