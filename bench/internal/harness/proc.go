// Package harness holds what the end-to-end benchmarks and the fault suite
// share: building binaries from this module, running child processes that
// never outlive the benchmark, a fake Twilio REST API, signed SMS webhooks, and
// running "omnigate serve" from a generated config.
//
// It is Unix-only: children run in their own process groups, so that a signal
// reaches a child and whatever it started, and a terminal's Ctrl-C reaches only
// the benchmark, which then stops them in order.
package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// GoBuild builds pkg (a path such as ./cmd/omnigate or a module package such as
// github.com/nats-io/nats-server/v2) into the binary out, with the go command of
// the PATH, showing the compiler's output on stderr.
func GoBuild(ctx context.Context, out, pkg string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w", pkg, err)
	}
	return nil
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// FreePorts returns n distinct free ports: they are all held open until the
// last is chosen, so none is picked twice.
func FreePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// tailBytes is how much of a child's stderr a Proc keeps in memory for error
// messages.
const tailBytes = 16 << 10

// Proc is a child process in its own process group. Its methods are safe for
// concurrent use.
type Proc struct {
	// Name names the process in errors and reports.
	Name string
	// Pid is the process id, also its process group id.
	Pid int

	cmd  *exec.Cmd
	tail *tailBuffer
	log  *os.File
	done chan struct{}
	err  error // set before done is closed
}

// StartOptions are the optional settings of Start.
type StartOptions struct {
	// LogFile, when set, receives the child's stdout and stderr, appended (a
	// restarted process continues its predecessor's log).
	LogFile string
	// Dir is the child's working directory; empty is the benchmark's.
	Dir string
}

// Start runs bin with args in a new process group. The child gets SIGKILL if
// the benchmark dies without stopping it (Linux), so nothing is left running;
// callers still Stop or Kill every Proc they start.
func Start(name string, opt StartOptions, bin string, args ...string) (*Proc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Dir = opt.Dir
	cmd.SysProcAttr = sysProcAttr()
	p := &Proc{Name: name, cmd: cmd, tail: &tailBuffer{max: tailBytes}, done: make(chan struct{})}
	var out io.Writer = p.tail
	if opt.LogFile != "" {
		f, err := os.OpenFile(opt.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("%s: log: %w", name, err)
		}
		p.log = f
		out = io.MultiWriter(p.tail, f)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		if p.log != nil {
			p.log.Close()
		}
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p.Pid = cmd.Process.Pid
	go func() {
		p.err = cmd.Wait()
		if p.log != nil {
			p.log.Close()
		}
		close(p.done)
	}()
	return p, nil
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// ExitErr is how the process ended (nil for exit status 0); it blocks until it
// has.
func (p *Proc) ExitErr() error {
	<-p.done
	return p.err
}

// Tail returns the last lines the process wrote on stdout and stderr.
func (p *Proc) Tail() string { return p.tail.String() }

// Signal sends sig to the process's group; a process that already exited is
// not an error.
func (p *Proc) Signal(sig syscall.Signal) error {
	if p.Exited() {
		return nil
	}
	if err := syscall.Kill(-p.Pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("%s: signal %v: %w", p.Name, sig, err)
	}
	return nil
}

// Kill sends SIGKILL to the process group and waits for the process to exit.
func (p *Proc) Kill() {
	_ = p.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop asks the process to end with SIGTERM and waits up to grace for it, then
// kills it. It reports whether the process ended by itself.
func (p *Proc) Stop(grace time.Duration) bool {
	if p.Exited() {
		return true
	}
	_ = p.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
		p.Kill()
		return false
	}
}

// Sample is what /proc says about a process.
type Sample struct {
	// CPU is user plus system time in seconds.
	CPU float64
	// RSS and HWM are the resident set size and its peak, in bytes.
	RSS, HWM float64
}

// clockTicks is USER_HZ, 100 on every Linux the project runs on.
const clockTicks = 100

// Sample reads the process's CPU time and memory from /proc (zero elsewhere or
// once it exited).
func (p *Proc) Sample() Sample { return SamplePid(p.Pid) }

// SamplePid is Sample for any process id, such as the benchmark's own.
func SamplePid(pid int) Sample {
	var s Sample
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
		// Fields after the command name, which is in parentheses.
		if i := bytes.LastIndexByte(b, ')'); i > 0 {
			f := strings.Fields(string(b[i+1:]))
			if len(f) > 13 {
				ut, _ := strconv.ParseFloat(f[11], 64)
				st, _ := strconv.ParseFloat(f[12], 64)
				s.CPU = (ut + st) / clockTicks
			}
		}
	}
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			switch k {
			case "VmRSS":
				s.RSS = kb * 1024
			case "VmHWM":
				s.HWM = kb * 1024
			}
		}
	}
	return s
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// Group is the set of processes a benchmark started, so that one deferred
// KillAll ends every one of them, on success, error or Ctrl-C alike.
type Group struct {
	mu    sync.Mutex
	procs []*Proc
}

// Add records p; it returns p for chaining.
func (g *Group) Add(p *Proc) *Proc {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.procs = append(g.procs, p)
	return p
}

// KillAll kills every process of the group still running and waits for them.
func (g *Group) KillAll() {
	g.mu.Lock()
	procs := g.procs
	g.procs = nil
	g.mu.Unlock()
	for _, p := range procs {
		_ = p.Signal(syscall.SIGKILL)
	}
	for _, p := range procs {
		<-p.done
	}
}
