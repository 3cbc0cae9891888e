package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/omnigate/omnigate/adapters/email"
	"github.com/omnigate/omnigate/config"
)

// refreshTokenFile is where omnigate email login writes the refresh token,
// under data_dir, unless --out says otherwise.
const refreshTokenFile = "email-oauth2-refresh-token"

// cmdEmail runs the email channel's tools: login.
func cmdEmail(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "login" {
		fmt.Fprintln(stderr, "usage: omnigate email login --config FILE [--flow device|browser] [--listen ADDR] [--out FILE]")
		return exitError{2}
	}
	return cmdEmailLogin(ctx, args[1:], stdout, stderr)
}

// cmdEmailLogin signs the mailbox of channels.email in once with OAuth 2.0
// and writes the refresh token, mode 0600, where the config then reads it.
func cmdEmailLogin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("email login", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf commonFlags
	fs.StringVar(&cf.config, "config", "", "config `FILE` with channels.email (auth: oauth2 and its oauth2 section)")
	fs.StringVar(&cf.data, "data", "", "data `DIR` (overrides data_dir; default ./data)")
	flow := fs.String("flow", "", "`device` (a code to enter on any device; the default, except for Google) or browser (a browser on this machine; the default for Google)")
	listen := fs.String("listen", "", "`ADDR` where the browser flow takes the redirect (default 127.0.0.1 on a free port; give a fixed one to forward it over ssh -L)")
	out := fs.String("out", "", "`FILE` to write the refresh token to (default <data_dir>/"+refreshTokenFile+")")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	if cf.config == "" {
		fmt.Fprintln(stderr, "email login: --config is required: the file with channels.email")
		return exitError{2}
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	node, ok := cfg.Channels[email.Name]
	if !ok {
		return fmt.Errorf("%s: no channels.email section: add one with auth: oauth2 (docs/channels/email.md)", cf.config)
	}
	var ec email.Config
	if err := withoutMissingToken(config.DecodeSection(cf.config, &node, config.EnvName("channels."+email.Name), &ec)); err != nil {
		return err
	}
	token, err := email.Login(ctx, ec, email.LoginOptions{Flow: *flow, Out: stdout, ListenAddr: *listen})
	if err != nil {
		return err
	}
	path := *out
	if path == "" {
		path = filepath.Join(cfg.DataDir, refreshTokenFile)
	}
	if path, err = filepath.Abs(path); err != nil {
		return err
	}
	if err := writeSecretFile(path, token); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nSigned in. The refresh token is in %s (mode 0600).\n", path)
	if ec.OAuth2.RefreshToken.Value() == token {
		fmt.Fprintln(stdout, "channels.email.oauth2.refresh_token already reads it.")
	} else {
		fmt.Fprintf(stdout, "Set in channels.email of %s:\n\n    oauth2:\n      refresh_token: ${file:%s}\n\n", cf.config, path)
	}
	fmt.Fprintln(stdout, "Then restart omnigate serve: it refreshes access tokens by itself and keeps rotated refresh tokens in its store.")
	return nil
}

// withoutMissingToken is err, the section's problems, without the missing
// refresh token that the login is about to obtain; nil when that was all.
func withoutMissingToken(err error) error {
	var errs config.Errors
	if !errors.As(err, &errs) {
		return err
	}
	var rest config.Errors
	for _, e := range errs {
		if e.Msg != email.MsgNoRefreshToken {
			rest = append(rest, e)
		}
	}
	if len(rest) == 0 {
		return nil
	}
	return rest
}

// writeSecretFile writes s to path, readable by its owner only, replacing
// the file whole: a reader never sees half a token.
func writeSecretFile(path, s string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("email login: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("email login: %w", err)
	}
	defer os.Remove(f.Name())
	// CreateTemp makes the file 0600.
	_, err = f.WriteString(s + "\n")
	err = errors.Join(err, f.Close())
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("email login: write %s: %w", path, err)
	}
	return nil
}
