package metrics

import (
	"net/http"
	"sync/atomic"
)

// State is a worker's readiness, served on /readyz.
type State int32

const (
	// Starting: not connected to Temporal or not polling yet.
	Starting State = iota
	// Ready: connected and polling its task queue.
	Ready
	// Draining: told to stop; it polls no more and lets its running activities finish.
	Draining
)

func (s State) String() string {
	switch s {
	case Ready:
		return "ready"
	case Draining:
		return "draining"
	}
	return "starting"
}

// Readiness answers /readyz: 200 "ready" while the worker polls, 503 "starting" or
// "draining" otherwise. The zero value is Starting. Safe for concurrent use.
type Readiness struct{ s atomic.Int32 }

// Set changes the state.
func (r *Readiness) Set(s State) { r.s.Store(int32(s)) }

// State is the current state.
func (r *Readiness) State() State { return State(r.s.Load()) }

func (r *Readiness) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	s := r.State()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if s != Ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_, _ = w.Write([]byte(s.String() + "\n"))
}
