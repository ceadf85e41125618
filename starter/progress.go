package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// progressEvery is how often a long operation reports on stderr.
const progressEvery = 2 * time.Second

// progress reports a long operation's count on stderr: at most every progressEvery, and once
// at the end. It is safe for concurrent use.
type progress struct {
	w     io.Writer
	what  string
	clock func() time.Time

	mu          sync.Mutex
	start, last time.Time
	done, total int
}

func newProgress(w io.Writer, what string) *progress {
	// The app's clock is for the commands' logic (and fixed in tests); rates need the real one.
	now := time.Now()
	return &progress{w: w, what: what, clock: time.Now, start: now, last: now}
}

func (p *progress) update(done, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done, p.total = done, total
	if now := p.clock(); now.Sub(p.last) >= progressEvery && done < total {
		p.last = now
		el := now.Sub(p.start)
		fmt.Fprintf(p.w, "%s: %d/%d schedules, %s, %.0f/s\n", p.what, done, total, el.Round(100*time.Millisecond), float64(done)/el.Seconds())
	}
}

func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.total == 0 {
		return
	}
	el := p.clock().Sub(p.start)
	fmt.Fprintf(p.w, "%s: %d/%d schedules in %s (%.0f/s)\n", p.what, p.done, p.total, el.Round(100*time.Millisecond), float64(p.done)/max(el.Seconds(), 0.001))
}

// envDuration reads a duration environment variable (10m, 1h30m); unset or empty means def.
// A malformed value is kept as an error: the command refuses to run, naming it.
func (c *command) envDuration(name string, def time.Duration) time.Duration {
	v, ok := os.LookupEnv(name)
	if !ok || v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		c.envErrs = append(c.envErrs, fmt.Errorf("environment variable %s=%q is not a duration: use e.g. 10m or 1h30m", name, v))
		return def
	}
	return d
}
