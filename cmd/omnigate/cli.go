package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/routing"
)

// cmdAdapters lists the built-in adapters and their config keys.
func cmdAdapters(_ []string, stdout io.Writer) error {
	list := adapters.List()
	if len(list) == 0 {
		fmt.Fprintln(stdout, "no adapters are built in")
		return nil
	}
	for _, a := range list {
		fmt.Fprintf(stdout, "%s (%s): %s\n", a.Name, a.Kind, a.Doc)
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		for _, k := range a.Keys {
			def := k.Default
			if def != "" {
				def = "default " + def
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", k.Path, k.Type, def, k.Doc)
		}
		tw.Flush()
	}
	return nil
}

// cmdSend injects a customer message as channel's adapter would.
func cmdSend(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf commonFlags
	cf.register(fs)
	channel := fs.String("channel", "", "channel `NAME`, e.g. sms")
	from := fs.String("from", "", "sender `ADDRESS` on that channel, e.g. +15551234567")
	text := fs.String("text", "", "message `TEXT` (default: read from stdin)")
	id := fs.String("id", "", "provider message `ID` (messages with the same id are stored once)")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	if *channel == "" || *from == "" {
		fmt.Fprintln(stderr, "send: --channel and --from are required")
		return exitError{2}
	}
	if *text == "" {
		b, err := io.ReadAll(io.LimitReader(os.Stdin, core.MaxTextBytes+1))
		if err != nil {
			return err
		}
		*text = strings.TrimRight(string(b), "\n")
	}
	b, closeFn, err := cf.openTool(ctx, "omnigate-send", stderr)
	if err != nil {
		return err
	}
	defer closeFn()
	m := core.NewMessage(core.KindMessage, core.Inbound, *channel)
	m.From = core.NewIdentity(*channel, *from)
	m.Text = *text
	m.External.Message = *id
	dup, err := adapters.NewPublisher(b, *channel).Inbound(ctx, m)
	if err != nil {
		return err
	}
	if dup {
		fmt.Fprintf(stdout, "duplicate of an earlier message with id %s: not stored again\n", *id)
		return nil
	}
	fmt.Fprintf(stdout, "published %s from %s on %s\n", m.ID, m.From, bus.SubjectIn(*channel, string(m.From)))
	return nil
}

// cmdTail prints what crosses the bus, one line per message, until interrupted.
func cmdTail(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tail", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf commonFlags
	cf.register(fs)
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	subject := "omni.>"
	if fs.NArg() > 0 {
		subject = fs.Arg(0)
	}
	b, closeFn, err := cf.openTool(ctx, "omnigate-tail", stderr)
	if err != nil {
		return err
	}
	defer closeFn()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	sub, err := b.Conn().Subscribe(subject, func(m *nats.Msg) {
		fmt.Fprintln(stdout, formatBusMsg(m.Subject, m.Header, m.Data))
	})
	if err != nil {
		return fmt.Errorf("tail %s: %w", subject, err)
	}
	defer sub.Unsubscribe()
	fmt.Fprintf(stderr, "watching %s (Ctrl-C to stop)\n", subject)
	<-ctx.Done()
	return nil
}

// formatBusMsg renders one bus message for a terminal.
func formatBusMsg(subject string, h nats.Header, data []byte) string {
	m, err := core.Decode(data)
	if err != nil {
		return fmt.Sprintf("%s  %s  (%d bytes, not an envelope: %v)", time.Now().Format("15:04:05"), subject, len(data), err)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s  %-28s %s %s", m.ReceivedAt.Local().Format("15:04:05"), subject, m.Kind, m.Direction)
	if m.Type != "" {
		fmt.Fprintf(&sb, " %s", m.Type)
	}
	if m.From != "" || m.To != "" {
		fmt.Fprintf(&sb, "  %s -> %s", orDash(string(m.From)), orDash(string(m.To)))
	}
	if m.ConversationID != "" {
		fmt.Fprintf(&sb, "  conv=%s", m.ConversationID)
	}
	if e := h.Get(bus.HeaderDLQError); e != "" {
		fmt.Fprintf(&sb, "  error=%q", e)
	}
	if m.Text != "" {
		t := strings.ReplaceAll(m.Text, "\n", " ")
		if r := []rune(t); len(r) > 80 {
			t = string(r[:80]) + "…"
		}
		fmt.Fprintf(&sb, "  %q", t)
	}
	if n := len(m.Attachments); n > 0 {
		fmt.Fprintf(&sb, "  +%d attachment(s)", n)
	}
	return sb.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// cmdDLQ lists and replays dead letters.
func cmdDLQ(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "replay") {
		fmt.Fprintln(stderr, "usage: omnigate dlq list|replay [flags]")
		return exitError{2}
	}
	sub := args[0]
	fs := flag.NewFlagSet("dlq "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf commonFlags
	cf.register(fs)
	stage := fs.String("stage", "", "only dead letters of `STAGE`")
	limit := fs.Int("limit", 100, "list at most `N`")
	all := fs.Bool("all", false, "replay every dead letter (of --stage, if given), each sender's in their original order")
	allowReorder := fs.Bool("allow-reorder", false, "replay a dead letter even when later messages of its sender were handled already")
	if err := fs.Parse(args[1:]); err != nil {
		return exitError{2}
	}
	b, closeFn, err := cf.openTool(ctx, "omnigate-dlq", stderr)
	if err != nil {
		return err
	}
	defer closeFn()

	if sub == "list" {
		dls, err := b.DeadLetters(ctx, *stage, *limit)
		if err != nil {
			return err
		}
		if len(dls) == 0 {
			fmt.Fprintln(stdout, "no dead letters")
			return nil
		}
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tTIME\tSTAGE\tSUBJECT\tTRIES\tERROR")
		for _, d := range dls {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\n", d.Sequence, d.Time.Local().Format(time.DateTime), d.Stage, d.Subject, d.Deliveries, d.Error)
		}
		return tw.Flush()
	}

	var seqs []uint64
	if *all {
		dls, err := b.DeadLetters(ctx, *stage, 0)
		if err != nil {
			return err
		}
		// In the order the originals had, so a sender's replays keep theirs.
		slices.SortStableFunc(dls, func(a, b bus.DeadLetter) int {
			return cmp.Or(cmp.Compare(a.Header.Get(bus.HeaderDLQStream), b.Header.Get(bus.HeaderDLQStream)),
				cmp.Compare(originalSeq(a), originalSeq(b)))
		})
		for _, d := range dls {
			seqs = append(seqs, d.Sequence)
		}
	} else {
		if fs.NArg() == 0 {
			fmt.Fprintln(stderr, "dlq replay: give the SEQ of each dead letter (omnigate dlq list shows them) or --all")
			return exitError{2}
		}
		for _, a := range fs.Args() {
			n, err := strconv.ParseUint(a, 10, 64)
			if err != nil {
				return fmt.Errorf("dlq replay: %q is not a sequence number", a)
			}
			seqs = append(seqs, n)
		}
	}
	var errs []error
	refused := 0
	for _, seq := range seqs {
		if _, err := b.Replay(ctx, seq, bus.ReplayOptions{AllowReorder: *allowReorder}); err != nil {
			if errors.Is(err, bus.ErrWouldReorder) {
				refused++
			}
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(stdout, "replayed %d\n", seq)
	}
	if refused > 0 {
		fmt.Fprintf(stdout, "%d dead letter(s) left in the DLQ: replaying them would reorder their sender's messages (see the errors; --allow-reorder replays them anyway)\n", refused)
	}
	return errors.Join(errs...)
}

// originalSeq is the stream sequence of the message d is a dead letter of.
func originalSeq(d bus.DeadLetter) uint64 {
	n, _ := strconv.ParseUint(cmp.Or(d.Header.Get(bus.HeaderReplaySequence), d.Header.Get(bus.HeaderDLQSequence)), 10, 64)
	return n
}

// cmdHealthcheck exits 0 when URL answers 200: the container health check,
// for images without curl. Its default, /readyz, passes while the replica can
// take traffic (its bus takes publishes), whatever else is degraded; /healthz
// says what is.
func cmdHealthcheck(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	url := fs.String("url", "http://127.0.0.1:8080/readyz", "`URL` to check")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return fmt.Errorf("%s: %s %s", *url, resp.Status, bytes.TrimSpace(body))
	}
	fmt.Fprintln(stdout, "ok")
	return nil
}

// cmdRoute explains which routing rule a sample message matches, and why.
func cmdRoute(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("route", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf commonFlags
	cf.register(fs)
	explain := fs.Bool("explain", false, "explain the routing of the sample message (the only mode)")
	var s routing.Sample
	fs.StringVar(&s.Channel, "channel", "", "`CHANNEL` the message arrives on (default web)")
	fs.StringVar(&s.From, "from", "", "sender `IDENTITY`, e.g. sms:+15551234567")
	fs.StringVar(&s.Language, "lang", "", "`LANGUAGE` (default: detected)")
	tier := fs.String("tier", "", "the contact's `TIER`")
	tags := fs.String("tags", "", "the contact's `TAGS`, comma-separated")
	var attrs multiFlag
	fs.Var(&attrs, "attr", "a contact attribute `KEY=VALUE` (repeatable)")
	fs.BoolVar(&s.Returning, "returning", false, "the customer had a conversation before")
	at := fs.String("at", "", "arrival `TIME` (RFC 3339; default now)")
	envelope := fs.String("envelope", "", "read the message as a JSON envelope from `FILE` (- for stdin)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	if !*explain {
		fmt.Fprintln(stderr, "usage: omnigate route --explain [flags] TEXT")
		return exitError{2}
	}
	s.Text = strings.Join(fs.Args(), " ")
	s.Attributes = map[string]string{}
	for _, kv := range attrs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("route: --attr %q: want KEY=VALUE", kv)
		}
		s.Attributes[k] = v
	}
	if *tier != "" {
		s.Attributes[routing.TierAttribute] = *tier
	}
	if *tags != "" {
		s.Tags = strings.Split(*tags, ",")
	}
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return fmt.Errorf("route: --at: %w", err)
		}
		s.Now = t
	}
	if *envelope != "" {
		var err error
		if *envelope == "-" {
			s.Envelope, err = io.ReadAll(io.LimitReader(os.Stdin, core.MaxEnvelopeBytes))
		} else {
			s.Envelope, err = os.ReadFile(*envelope)
		}
		if err != nil {
			return fmt.Errorf("route: envelope: %w", err)
		}
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	rc, err := routingConfig(cf.config, cfg)
	if err != nil {
		return err
	}
	explainWith(loadModels(rc.Models, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))), &s)
	return routing.ExplainSample(stdout, rc, s, *asJSON)
}

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
