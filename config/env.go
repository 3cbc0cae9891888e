package config

import (
	"fmt"
	"os"
	"reflect"
	"strings"
)

// envRoot is the prefix of every environment override.
const envRoot = "OMNIGATE"

// EnvName returns the environment variable that overrides the key at path: OMNIGATE_
// followed by the path's segments upper-cased and joined with "_", e.g.
// "store.redis.url" -> OMNIGATE_STORE_REDIS_URL and "channels.sms.auth_token" ->
// OMNIGATE_CHANNELS_SMS_AUTH_TOKEN. EnvName("") is "OMNIGATE".
func EnvName(path string) string {
	if path == "" {
		return envRoot
	}
	return envRoot + "_" + envSegment(path)
}

func envSegment(path string) string {
	return strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(path))
}

// envSettable reports whether a field of type t can be set from one environment
// variable: scalars, Secrets, durations, and lists of those (comma-separated).
func envSettable(t reflect.Type) bool {
	if t.Kind() == reflect.Slice && !textual(t) {
		t = t.Elem()
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if textual(t) {
		return true
	}
	switch t.Kind() {
	case reflect.String, reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// applyEnv sets every field of struct v (at key path, with variable prefix env) whose
// environment variable is set. A variable set to "" counts as set.
func (d *decoder) applyEnv(v reflect.Value, path, env string) {
	for _, f := range fieldsOf(v.Type()) {
		p := joinPath(path, f.name)
		name := env + "_" + envSegment(f.name)
		fv := v.FieldByIndex(f.index)
		if isSection(f.typ) {
			d.applyEnv(fv, p, name)
			continue
		}
		if !envSettable(f.typ) {
			continue
		}
		s, ok := os.LookupEnv(name)
		if !ok {
			continue
		}
		d.env[p] = name
		if err := setEnv(fv, s); err != nil {
			d.errs = append(d.errs, &Error{Path: p, Source: "env " + name, Msg: err.Error()})
		}
	}
}

// setEnv parses an environment value into v; lists are comma-separated.
func setEnv(v reflect.Value, s string) error {
	if v.Kind() != reflect.Slice || textual(v.Type()) {
		return setScalar(v, s)
	}
	var items []string
	if strings.TrimSpace(s) != "" {
		items = strings.Split(s, ",")
	}
	list := reflect.MakeSlice(v.Type(), len(items), len(items))
	for i, item := range items {
		if err := setScalar(list.Index(i), strings.TrimSpace(item)); err != nil {
			return fmt.Errorf("item %d: %w", i+1, err)
		}
	}
	v.Set(list)
	return nil
}
