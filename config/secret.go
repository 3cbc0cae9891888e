package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// masked is what a non-empty Secret prints as.
const masked = "****"

// Secret is a configuration value that must not be printed: a password, token or a
// URL with credentials. In YAML or in an environment override it is written as a
// literal, as ${env:NAME} (the value of environment variable NAME) or as
// ${file:/path} (the file's contents without the trailing newline; a relative path
// is relative to the working directory). References are resolved when the
// configuration is loaded; an unset variable or unreadable file is a configuration
// error.
//
// Every way of printing a Secret (fmt verbs, encoding/json, encoding.TextMarshaler,
// log/slog) gives "****", or "" for an empty Secret. Use Value to read it.
type Secret string

// Value returns the secret itself.
func (s Secret) Value() string { return string(s) }

// String returns "****", or "" when s is empty.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return masked
}

// GoString returns the quoted String, so %#v never shows the secret.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// Format implements fmt.Formatter so that every verb, %x and %q included, formats
// the masked String and never the secret.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = io.WriteString(f, s.GoString())
		return
	}
	_, _ = fmt.Fprintf(f, fmt.FormatString(f, verb), s.String())
}

// MarshalText returns the masked String; YAML encoding uses it too.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// MarshalJSON returns the masked String as a JSON string.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(s.String())), nil }

// LogValue returns the masked String for log/slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// UnmarshalYAML resolves a literal, ${env:NAME} or ${file:/path} scalar, so a Secret
// also works with plain yaml.Unmarshal.
func (s *Secret) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return errors.New("want a string")
	}
	v, err := resolveSecret(n.Value)
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// maxSecretFile bounds a ${file:} secret, so a mistaken path like /dev/zero fails
// instead of eating memory.
const maxSecretFile = 1 << 20

// checkRegular reports a path that is not a regular file of at most maxSize bytes
// (0: any size). Devices and FIFOs are refused: reading them could block forever.
func checkRegular(path string, maxSize int64) error {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s does not exist", path)
	}
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	if maxSize > 0 && fi.Size() > maxSize {
		return fmt.Errorf("%s is larger than %d bytes", path, maxSize)
	}
	return nil
}

// resolveSecret turns a literal or a ${env:NAME} / ${file:/path} reference into the
// secret. Errors name the variable or file, never the value.
func resolveSecret(raw string) (Secret, error) {
	ref, ok := strings.CutPrefix(raw, "${")
	if !ok || !strings.HasSuffix(ref, "}") {
		return Secret(raw), nil
	}
	ref = strings.TrimSuffix(ref, "}")
	kind, arg, _ := strings.Cut(ref, ":")
	switch kind {
	case "env":
		if arg == "" {
			return "", errors.New("${env:NAME} needs a variable name")
		}
		v, ok := os.LookupEnv(arg)
		if !ok {
			return "", fmt.Errorf("environment variable %s is not set", arg)
		}
		return Secret(v), nil
	case "file":
		if arg == "" {
			return "", errors.New("${file:/path} needs a path")
		}
		if err := checkRegular(arg, maxSecretFile); err != nil {
			return "", fmt.Errorf("secret file: %w", err)
		}
		data, err := os.ReadFile(arg)
		if err != nil {
			return "", fmt.Errorf("read secret file: %w", err)
		}
		v := strings.TrimSuffix(string(data), "\n")
		return Secret(strings.TrimSuffix(v, "\r")), nil
	}
	return "", errors.New("unknown secret reference: use a literal, ${env:NAME} or ${file:/path}")
}
