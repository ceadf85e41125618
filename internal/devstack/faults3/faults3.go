// Package faults3 is a fault-injecting reverse proxy for the local stack's S3 (MinIO). The
// worker's S3 and STS endpoints point at it; it forwards every request to MinIO unchanged and,
// at a configurable rate chosen by a seeded random generator, answers instead with the faults
// real S3 produces: SlowDown (503), InternalError (500), a connection reset in the middle of
// the request, a response cut short after MinIO has applied the write, and delays.
//
// Requests are SigV4-signed by the client, so the proxy changes nothing that is signed: the
// Host header stays what the client sent (and signed), the path and query stay byte for byte.
//
// STS AssumeRole calls pass through without faults (the workflow's access check is not what
// the campaign exercises); the proxy reads the credentials they hand out, and the access key
// ids and session tokens of every signed S3 request, so a campaign can prove none of them
// leaked into workflow histories or logs. Credentials are kept in memory only, never logged.
package faults3

import (
	"bufio"
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Kind is one kind of injected fault.
type Kind string

// The fault kinds.
const (
	// SlowDown answers 503 with the S3 error code SlowDown, without forwarding.
	SlowDown Kind = "s3_slowdown"
	// InternalError answers 500 with the S3 error code InternalError, without forwarding.
	InternalError Kind = "s3_internal_error"
	// Reset reads part of the request body, then resets the connection (TCP RST): the write
	// never reaches MinIO.
	Reset Kind = "s3_connection_reset"
	// Truncate forwards the request (MinIO applies the write), then sends only part of the
	// response and closes the connection: the client cannot tell whether the write landed.
	Truncate Kind = "s3_truncated_response"
	// Delay holds the request for a while, then forwards it.
	Delay Kind = "s3_delay"
	// Hang holds the request without answering until the client gives up (or HangFor
	// passes), as a half-open connection does: it exercises the client's stall watchdog.
	// Not among DefaultKinds: each costs the client its whole stall timeout.
	Hang Kind = "s3_hang"
)

// DefaultKinds are the kinds a zero Config.Kinds chooses from, in a fixed order (the random
// choice depends on it).
var DefaultKinds = []Kind{SlowDown, InternalError, Reset, Truncate, Delay}

// AllKinds lists every kind.
var AllKinds = []Kind{SlowDown, InternalError, Reset, Truncate, Delay, Hang}

// Config configures a Proxy.
type Config struct {
	// Upstream is MinIO's base URL; it must be on a loopback address.
	Upstream string
	// Seed seeds the fault choices; the same seed replays the same sequence of decisions
	// (which request gets which fault depends on timing across concurrent requests).
	Seed uint64
	// Rate is the probability that a request gets a fault, 0 to 1.
	Rate float64
	// Kinds are the faults to choose from; empty means DefaultKinds.
	Kinds []Kind
	// HangFor bounds Hang faults; zero means 5 minutes.
	HangFor time.Duration
	// OnWrite, when set, is called in its own goroutine after each object write (a PUT that
	// is not a multipart part) that MinIO accepted, with the bucket and key: a campaign hangs
	// its receipt.json consumer here, as a customer hangs an S3 event trigger.
	OnWrite func(bucket, key string)
	// MaxDelay bounds Delay faults; zero means 2s.
	MaxDelay time.Duration
	// Timeout bounds each forwarded request; zero means 2 minutes.
	Timeout time.Duration
}

// Proxy is a running fault-injecting proxy. It is safe for concurrent use.
type Proxy struct {
	// URL is the proxy's base URL (http://127.0.0.1:PORT), for S3_ENDPOINT_URL.
	URL string

	upstream  *url.URL
	transport *http.Transport
	srv       *http.Server
	lis       net.Listener
	timeout   time.Duration
	maxDelay  time.Duration
	hangFor   time.Duration
	onWrite   func(bucket, key string)

	mu       sync.Mutex
	rng      *rand.Rand
	rate     float64
	kinds    []Kind
	counts   map[Kind]int
	requests int
	secrets  map[string]string // value -> what it is (never printed)
}

// Start listens on a free loopback port and serves until Close.
func Start(cfg Config) (*Proxy, error) {
	up, err := url.Parse(cfg.Upstream)
	if err != nil {
		return nil, fmt.Errorf("faults3: upstream: %w", err)
	}
	if !isLoopback(up.Hostname()) {
		return nil, fmt.Errorf("%w: %q", ErrNotLoopback, up.Host)
	}
	if cfg.Rate < 0 || cfg.Rate > 1 {
		return nil, fmt.Errorf("faults3: rate %v out of [0, 1]", cfg.Rate)
	}
	kinds := cfg.Kinds
	if len(kinds) == 0 {
		kinds = DefaultKinds
	}
	for _, k := range kinds {
		if !slices.Contains(AllKinds, k) {
			return nil, fmt.Errorf("faults3: unknown fault kind %q", k)
		}
	}
	p := &Proxy{
		upstream: up,
		transport: &http.Transport{
			// Nothing may be added to or taken from the client's signed request or from MinIO's
			// answer: no transparent gzip, no proxy from the environment.
			DisableCompression:    true,
			Proxy:                 nil,
			MaxIdleConnsPerHost:   32,
			ExpectContinueTimeout: time.Second,
			ResponseHeaderTimeout: time.Minute,
		},
		timeout:  orDefault(cfg.Timeout, 2*time.Minute),
		maxDelay: orDefault(cfg.MaxDelay, 2*time.Second),
		hangFor:  orDefault(cfg.HangFor, 5*time.Minute),
		onWrite:  cfg.OnWrite,
		rng:      rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5dee_c0de)),
		rate:     cfg.Rate,
		kinds:    append([]Kind(nil), kinds...),
		counts:   map[Kind]int{},
		secrets:  map[string]string{},
	}
	p.lis, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p.URL = "http://" + p.lis.Addr().String()
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 30 * time.Second}
	go func() { _ = p.srv.Serve(p.lis) }()
	return p, nil
}

// Close stops the proxy, ending requests in flight.
func (p *Proxy) Close() error {
	err := p.srv.Close()
	p.transport.CloseIdleConnections()
	return err
}

// SetRate changes the fault rate, e.g. to 0 once a campaign stops injecting.
func (p *Proxy) SetRate(rate float64) {
	p.mu.Lock()
	p.rate = min(max(rate, 0), 1)
	p.mu.Unlock()
}

// Counts returns how many faults of each kind were injected.
func (p *Proxy) Counts() map[Kind]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.counts)
}

// Requests returns how many requests the proxy received.
func (p *Proxy) Requests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests
}

// Secret is a credential the proxy saw: Value must never be printed, What says what it is.
type Secret struct {
	What  string
	Value string
}

// Secrets returns every credential seen so far: the access key ids and session tokens of
// signed requests, and the keys AssumeRole handed out.
func (p *Proxy) Secrets() []Secret {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Secret, 0, len(p.secrets))
	for v, what := range p.secrets {
		out = append(out, Secret{What: what, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].What < out[j].What })
	return out
}

func (p *Proxy) remember(what, value string) {
	if len(value) < 8 { // nothing that short is a credential; avoid matching noise later
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.secrets[value]; !ok {
		p.secrets[value] = fmt.Sprintf("%s #%d", what, len(p.secrets)+1)
	}
}

// decide picks the fault for one request, or "" for none.
func (p *Proxy) decide(sts bool) (Kind, time.Duration, float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests++
	roll := p.rng.Float64()
	k := p.kinds[p.rng.IntN(len(p.kinds))]
	d := time.Duration(p.rng.Int64N(int64(p.maxDelay))) + 50*time.Millisecond
	frac := p.rng.Float64()
	if sts || roll >= p.rate {
		return "", 0, 0
	}
	p.counts[k]++
	return k, d, frac
}

var credentialRe = regexp.MustCompile(`Credential=([^/,\s]+)/`)

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Only temporary (assumed) credentials carry a session token; the platform identity's
	// own access key id, which signs AssumeRole, is a user name, not a secret.
	if t := r.Header.Get("X-Amz-Security-Token"); t != "" {
		p.remember("session token", t)
		if m := credentialRe.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
			p.remember("session access key id", m[1])
		}
	}
	sts := isSTS(r)
	kind, delay, frac := p.decide(sts)
	switch kind {
	case SlowDown:
		drain(r.Body, frac)
		writeS3Error(w, http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate.")
		return
	case InternalError:
		drain(r.Body, frac)
		writeS3Error(w, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
		return
	case Reset:
		p.reset(w, r, frac)
		return
	case Delay:
		if !wait(r.Context(), delay) {
			return
		}
	case Hang:
		drain(r.Body, 1)
		wait(r.Context(), p.hangFor)
		panic(http.ErrAbortHandler) // the client gave up (or we did): no answer at all
	}
	resp, body, err := p.forward(r)
	if err != nil {
		writeS3Error(w, http.StatusBadGateway, "InternalError", "faults3: upstream: "+err.Error())
		return
	}
	if sts {
		p.rememberAssumed(body)
	}
	if p.onWrite != nil && r.Method == http.MethodPut && resp.StatusCode/100 == 2 && !r.URL.Query().Has("partNumber") {
		if bucket, key, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/"); ok {
			go p.onWrite(bucket, key)
		}
	}
	if kind == Truncate {
		p.truncate(w, resp, body, frac)
		return
	}
	h := w.Header()
	for k, vs := range resp.Header {
		h[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
}

// forward sends r to MinIO as it came and returns the answer with its whole body (S3 answers
// to writes are small).
func (p *Proxy) forward(r *http.Request) (*http.Response, []byte, error) {
	ctx, cancel := context.WithTimeout(r.Context(), p.timeout)
	defer cancel()
	// r.RequestURI is the request target exactly as the client sent (and signed) it.
	u, err := url.Parse(p.upstream.Scheme + "://" + p.upstream.Host + r.RequestURI)
	if err != nil {
		return nil, nil, err
	}
	var body io.Reader = r.Body
	if r.ContentLength == 0 {
		body = http.NoBody
	}
	out, err := http.NewRequestWithContext(ctx, r.Method, u.String(), body)
	if err != nil {
		return nil, nil, err
	}
	out.URL = u
	out.Header = r.Header.Clone()
	out.Host = r.Host // signed by the client
	out.ContentLength = r.ContentLength
	out.TransferEncoding = r.TransferEncoding
	resp, err := p.transport.RoundTrip(out)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, nil, err
	}
	return resp, b, nil
}

// reset reads part of the request body, then closes the connection with an RST.
func (p *Proxy) reset(w http.ResponseWriter, r *http.Request, frac float64) {
	drain(r.Body, frac)
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // close sends RST, as a dropped connection does
	}
	_ = conn.Close()
}

// truncate sends MinIO's answer cut short: part of the head, or the whole head and part of
// the body, then closes the connection.
func (p *Proxy) truncate(w http.ResponseWriter, resp *http.Response, body []byte, frac float64) {
	var raw bytes.Buffer
	fmt.Fprintf(&raw, "HTTP/1.1 %s\r\n", resp.Status)
	h := resp.Header.Clone()
	h.Set("Content-Length", fmt.Sprint(len(body)))
	_ = h.Write(&raw)
	raw.WriteString("\r\n")
	head := raw.Len()
	raw.Write(body)
	cut := int(float64(head) * frac) // somewhere in the head
	if len(body) > 1 {
		cut = head + int(float64(len(body)-1)*frac) // somewhere in the body
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, _ = buf.Write(raw.Bytes()[:max(cut, 1)])
	_ = buf.Flush()
	_ = conn.Close()
}

// rememberAssumed records the credentials of an AssumeRole answer.
func (p *Proxy) rememberAssumed(body []byte) {
	var out struct {
		Creds struct {
			AccessKeyID     string `xml:"AccessKeyId"`
			SecretAccessKey string `xml:"SecretAccessKey"`
			SessionToken    string `xml:"SessionToken"`
		} `xml:"AssumeRoleResult>Credentials"`
	}
	if xml.Unmarshal(body, &out) != nil {
		return
	}
	p.remember("assumed access key id", out.Creds.AccessKeyID)
	p.remember("assumed secret access key", out.Creds.SecretAccessKey)
	p.remember("assumed session token", out.Creds.SessionToken)
}

// isSTS tells STS calls (form POSTs to the root path) from S3 calls.
func isSTS(r *http.Request) bool {
	return r.Method == http.MethodPost && r.URL.Path == "/" &&
		strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded")
}

func writeS3Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Connection", "close")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
		`<Error><Code>%s</Code><Message>%s</Message><RequestId>faults3-%d</RequestId><HostId>faults3</HostId></Error>`,
		code, msg, time.Now().UnixNano())
}

// drain reads about frac of a request body (bounded), as a server that fails part way would.
func drain(body io.Reader, frac float64) {
	_, _ = io.CopyN(io.Discard, bufio.NewReader(body), int64(frac*float64(64<<10)))
}

// wait sleeps d or until ctx ends; it reports whether the whole wait passed.
func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ErrNotLoopback is returned for upstreams off this machine.
var ErrNotLoopback = errors.New("faults3: upstream must be a loopback address")
