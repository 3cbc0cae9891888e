package model

import (
	"context"
	"log/slog"
	"os"
	"sync/atomic"
	"time"
)

// Live holds a model read from a file and reads it again when the file
// changes (its modification time or size), so that a retrained model is
// picked up without a restart. A file that fails to load keeps the previous
// model, with a warning. Get is safe for concurrent use.
type Live[T any] struct {
	path  string
	parse func(*Classifier) (T, error)
	log   *slog.Logger
	cur   atomic.Pointer[T]
	stamp fileStamp
}

type fileStamp struct {
	mod  time.Time
	size int64
}

// OpenLive loads path with parse and returns a Live serving it. The error is
// the load's: the caller decides on a fallback.
func OpenLive[T any](path string, parse func(*Classifier) (T, error), log *slog.Logger) (*Live[T], error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Live[T]{path: path, parse: parse, log: log}
	if err := l.load(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *Live[T]) load() error {
	st, err := os.Stat(l.path)
	if err != nil {
		return err
	}
	c, err := Load(l.path)
	if err != nil {
		return err
	}
	v, err := l.parse(c)
	if err != nil {
		return err
	}
	l.cur.Store(&v)
	l.stamp = fileStamp{mod: st.ModTime(), size: st.Size()}
	return nil
}

// Get returns the current model.
func (l *Live[T]) Get() T { return *l.cur.Load() }

// Path is the file the model comes from.
func (l *Live[T]) Path() string { return l.path }

// Run checks the file every interval (default 10 s) until ctx is done and
// reloads it when it changed. It returns nil.
func (l *Live[T]) Run(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		interval = 10 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		l.Check()
	}
}

// Check reloads the file if it changed since the last load, and reports
// whether it did.
func (l *Live[T]) Check() bool {
	st, err := os.Stat(l.path)
	if err != nil {
		l.log.Warn("model file unreadable, keeping the loaded model", "path", l.path, "err", err)
		return false
	}
	if (fileStamp{mod: st.ModTime(), size: st.Size()}) == l.stamp {
		return false
	}
	if err := l.load(); err != nil {
		l.log.Warn("model file changed but does not load, keeping the previous model", "path", l.path, "err", err)
		l.stamp = fileStamp{mod: st.ModTime(), size: st.Size()} // warn once per change
		return false
	}
	l.log.Info("model reloaded", "path", l.path)
	return true
}
