package email_test

import (
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/adapters/email"
	"github.com/omnigate/omnigate/adapters/email/mailtest"
)

// cfg describes a channels.email section for the fake servers.
type cfg struct {
	imapPort, smtpPort int
	imap, smtp, top    []string // extra lines of imap:, smtp: and the section
}

// yaml renders the section; extra lines replace defaults with the same key.
func (c cfg) yaml() string {
	lines := []string{"address: " + mailtest.Address, "name: Example Support", "timeout: 5s"}
	merge := func(defaults, extra []string) []string {
		var out []string
		for _, d := range defaults {
			key, _, _ := strings.Cut(d, ":")
			if !slices.ContainsFunc(extra, func(l string) bool { return strings.HasPrefix(l, key+":") }) {
				out = append(out, "  "+d)
			}
		}
		for _, l := range extra {
			out = append(out, "  "+l)
		}
		return out
	}
	if c.imapPort > 0 {
		lines = append(lines, "imap:")
		lines = append(lines, merge([]string{"host: 127.0.0.1", "port: " + strconv.Itoa(c.imapPort), "security: none",
			"password: " + mailtest.IMAPPassword, "poll_interval: 1s", "initial_scan: all"}, c.imap)...)
	}
	if c.smtpPort > 0 {
		lines = append(lines, "smtp:")
		lines = append(lines, merge([]string{"host: 127.0.0.1", "port: " + strconv.Itoa(c.smtpPort), "security: none",
			"username: " + mailtest.SMTPUser, "password: " + mailtest.SMTPPassword}, c.smtp)...)
	}
	lines = append(lines, c.top...)
	return strings.Join(lines, "\n") + "\n"
}

// build builds the adapter as omnigate serve does: from its YAML section,
// through the registry.
func build(t *testing.T, deps adapters.Deps, src string) adapters.Adapter {
	t.Helper()
	var node yaml.Node
	if err := yaml.Unmarshal([]byte(src), &node); err != nil {
		t.Fatal(err)
	}
	a, err := adapters.Build(email.Name, "omnigate.yaml", &node, deps)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, src)
	}
	return a
}

// newSilentListener accepts connections and never says a word; it returns
// its port.
func newSilentListener(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().(*net.TCPAddr).Port
}
