// Command omnigate is the omnichannel customer-service gateway: one binary
// that serves every channel and the agent desk (serve), and the tools to run it
// (check-config, adapters, send, tail, dlq, version).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `omnigate: omnichannel customer-service gateway

Usage:
  omnigate serve [--config FILE] [--http ADDR] [--data DIR]
  omnigate check-config FILE
  omnigate adapters
  omnigate send [--config FILE] --channel NAME --from ADDRESS [--text TEXT] [--id PROVIDER_ID]
  omnigate tail [--config FILE] [SUBJECT]
  omnigate dlq list [--config FILE] [--stage STAGE] [--limit N]
  omnigate dlq replay [--config FILE] (SEQ... | --all [--stage STAGE])
  omnigate route --explain [--config FILE] [--channel C] [--from ID] [--tier T] TEXT
  omnigate report [--config FILE] [--from TIME] [--to TIME] [--by queue|agent|channel|tag|intent|hour|day] [--format table|csv|json]
  omnigate intent (train|eval|predict|export-corrections) ...   (see docs/models.md)
  omnigate sentiment (train|eval) ...
  omnigate healthcheck [--url URL]
  omnigate suggest (eval --kb PATH FILE | search --kb PATH TEXT | split -o DIR FILE)
  omnigate email login --config FILE [--flow device|browser] [--out FILE]
  omnigate version

Run 'omnigate COMMAND -h' for a command's flags.
`

// errUsage reports a command line that cannot be run; main prints the usage.
var errUsage = errors.New("usage")

// exitError carries an exit code other than 1.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func main() {
	err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr)
	var ee exitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		os.Exit(ee.code)
	case errors.Is(err, errUsage):
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "omnigate:", err)
		os.Exit(1)
	}
}

// run executes one command line; it is main without the process around it, so
// tests can call it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return cmdServe(ctx, rest, stdout, stderr)
	case "check-config":
		return cmdCheckConfig(rest, stdout, stderr)
	case "adapters":
		return cmdAdapters(rest, stdout)
	case "send":
		return cmdSend(ctx, rest, stdout, stderr)
	case "tail":
		return cmdTail(ctx, rest, stdout, stderr)
	case "dlq":
		return cmdDLQ(ctx, rest, stdout, stderr)
	case "route":
		return cmdRoute(rest, stdout, stderr)
	case "suggest":
		return cmdSuggest(rest, stdout, stderr)
	case "report":
		return cmdReport(ctx, rest, stdout, stderr)
	case "intent":
		return cmdIntent(ctx, rest, stdout, stderr)
	case "sentiment":
		return cmdSentiment(rest, stdout, stderr)
	case "healthcheck":
		return cmdHealthcheck(ctx, rest, stdout)
	case "email":
		return cmdEmail(ctx, rest, stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "omnigate %s\n", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprintf(stderr, "omnigate: unknown command %q\n\n", cmd)
		return errUsage
	}
}
