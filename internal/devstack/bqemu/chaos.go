package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Fault kinds the proxy can inject into the Storage Read API, for fault campaigns. Each
// answers the way BigQuery does when the matching thing goes wrong.
const (
	// FaultCut breaks a ReadRows stream with UNAVAILABLE after a few responses, as a dropped
	// connection or a server restart does.
	FaultCut = "cut"
	// FaultUnavailable answers ReadRows or CreateReadSession with UNAVAILABLE at once.
	FaultUnavailable = "unavailable"
	// FaultExhausted answers ReadRows or CreateReadSession with RESOURCE_EXHAUSTED (BigQuery's
	// concurrency and quota limits).
	FaultExhausted = "exhausted"
	// FaultExpire expires the stream's whole read session now: this and every later ReadRows
	// of the session answer FAILED_PRECONDITION "session expired at ...", as BigQuery does
	// after a session's six hours.
	FaultExpire = "expire"
	// FaultStall stops a ReadRows stream after a few responses without ending it, as a
	// half-open connection does, until the client gives up (or stallFor passes). Not among
	// DefaultFaults: each costs the client its whole stall timeout.
	FaultStall = "stall"
)

// stallFor bounds a stall, so a client without a watchdog still ends eventually.
const stallFor = 5 * time.Minute

// DefaultFaults are the kinds chosen from when none are named, in the order the random choice
// uses.
var DefaultFaults = []string{FaultCut, FaultUnavailable, FaultExhausted, FaultExpire}

// AllFaults lists every fault kind.
var AllFaults = []string{FaultCut, FaultUnavailable, FaultExhausted, FaultExpire, FaultStall}

// FaultConfig is what the admin endpoint reads and writes.
type FaultConfig struct {
	// Rate is the probability that a ReadRows or CreateReadSession call gets a fault.
	Rate float64 `json:"rate"`
	// Kinds are the faults to choose from; empty means DefaultFaults.
	Kinds []string `json:"kinds,omitempty"`
}

func (c FaultConfig) validate() error {
	if c.Rate < 0 || c.Rate > 1 {
		return fmt.Errorf("fault rate %v out of [0, 1]", c.Rate)
	}
	for _, k := range c.Kinds {
		if !contains(AllFaults, k) {
			return fmt.Errorf("unknown fault kind %q (want %s)", k, strings.Join(AllFaults, ", "))
		}
	}
	return nil
}

// parseFaultKinds reads a comma-separated list of kinds; empty means all.
func parseFaultKinds(s string) []string {
	var out []string
	for _, k := range strings.Split(s, ",") {
		if k = strings.TrimSpace(k); k != "" {
			out = append(out, k)
		}
	}
	return out
}

// faults decides, with a seeded generator, which calls get which fault, and counts them.
type faults struct {
	mu     sync.Mutex
	rng    *rand.Rand
	cfg    FaultConfig
	counts map[string]int
}

func newFaults(seed uint64, cfg FaultConfig) *faults {
	return &faults{rng: rand.New(rand.NewPCG(seed, seed^0xb16_9e77)), cfg: cfg, counts: map[string]int{}}
}

// decision is the fault chosen for one call.
type decision struct {
	kind string
	// after is, for FaultCut, how many responses go out before the cut.
	after int64
}

// pick chooses the fault for one call among the kinds that apply to it, or none. A nil
// *faults injects nothing.
func (f *faults) pick(applicable ...string) decision {
	if f == nil {
		return decision{}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	kinds := f.cfg.Kinds
	if len(kinds) == 0 {
		kinds = DefaultFaults
	}
	var usable []string
	for _, k := range kinds {
		if contains(applicable, k) {
			usable = append(usable, k)
		}
	}
	roll, idx, after := f.rng.Float64(), f.rng.IntN(64), 1+f.rng.Int64N(3)
	if len(usable) == 0 || roll >= f.cfg.Rate {
		return decision{}
	}
	d := decision{kind: usable[idx%len(usable)], after: after}
	if d.kind != FaultCut && d.kind != FaultStall { // counted when they happen: a short stream may end first
		f.counts[d.kind]++
	}
	return d
}

func (f *faults) count(kind string) {
	if f == nil {
		return
	}
	f.mu.Lock()
	f.counts[kind]++
	f.mu.Unlock()
}

// faultState is the admin endpoint's answer.
type faultState struct {
	FaultConfig
	Counts map[string]int `json:"counts"`
}

func (f *faults) state() faultState {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := faultState{FaultConfig: f.cfg, Counts: map[string]int{}}
	st.Kinds = append([]string(nil), f.cfg.Kinds...)
	for k, n := range f.counts {
		st.Counts[k] = n
	}
	return st
}

func (f *faults) set(cfg FaultConfig) {
	f.mu.Lock()
	f.cfg = cfg
	f.mu.Unlock()
}

// faultError is the status BigQuery answers with for an injected fault.
func faultError(kind, stream string) error {
	switch kind {
	case FaultUnavailable:
		return status.Error(codes.Unavailable, "bqemu chaos: the service is currently unavailable")
	case FaultExhausted:
		// BigQuery marks a retryable RESOURCE_EXHAUSTED with a RetryInfo detail.
		st := status.Newf(codes.ResourceExhausted, "bqemu chaos: exceeded rate limits: too many concurrent read streams for %s", stream)
		if withInfo, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(time.Second)}); err == nil {
			st = withInfo
		}
		return st.Err()
	}
	return status.Errorf(codes.Internal, "bqemu chaos: fault %q", kind)
}

// expiredError is what BigQuery answers on a stream of an expired read session (observed:
// "FAILED_PRECONDITION: there was an error operating on 'projects/…/streams/…': session
// expired at 2024-11-23T09:59:13+00:00").
func expiredError(stream string, at time.Time) error {
	return status.Errorf(codes.FailedPrecondition, "there was an error operating on '%s': session expired at %s",
		stream, at.UTC().Format("2006-01-02T15:04:05-07:00"))
}

// cutError ends a stream part way, as a dropped connection does.
func cutError(responses int64) error {
	return status.Errorf(codes.Unavailable, "bqemu chaos: stream removed after %d responses (connection reset)", responses)
}

// serveAdmin serves the fault settings and counts on addr (loopback only) until the
// listener is closed:
//
//	GET /faults            {"rate":0.1,"kinds":["cut"],"counts":{"cut":3}}
//	PUT /faults {"rate":0} sets the rate and kinds
func serveAdmin(addr string, f *faults) (*http.Server, net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("--admin-addr: %w", err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, nil, errors.New("--admin-addr must be a loopback address")
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen admin: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/faults", func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet:
		case http.MethodPut, http.MethodPost:
			var cfg FaultConfig
			if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&cfg); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			if err := cfg.validate(); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			f.set(cfg)
		default:
			http.Error(w, "GET or PUT", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(f.state())
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(lis) }()
	return srv, lis, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// sortedKinds renders counts in a stable order, for logs.
func sortedKinds(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%d ", k, m[k])
	}
	return strings.TrimSpace(b.String())
}
