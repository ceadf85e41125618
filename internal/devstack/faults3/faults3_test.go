package faults3

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// upstream records what reached it.
type upstream struct {
	mu     sync.Mutex
	reqs   []string // method host uri body
	writes []string // what OnWrite reported
}

func (u *upstream) written(bucket, key string) {
	u.mu.Lock()
	u.writes = append(u.writes, bucket+" "+key)
	u.mu.Unlock()
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	u.mu.Lock()
	u.reqs = append(u.reqs, fmt.Sprintf("%s %s %s %s", r.Method, r.Host, r.RequestURI, b))
	u.mu.Unlock()
	if r.Method == http.MethodPost && r.URL.Path == "/" {
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprint(w, `<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>ASIAEXAMPLEKEY01</AccessKeyId>`+
			`<SecretAccessKey>secret-access-key-0001</SecretAccessKey><SessionToken>session-token-00001</SessionToken>`+
			`</Credentials></AssumeRoleResult></AssumeRoleResponse>`)
		return
	}
	w.Header().Set("ETag", `"abc"`)
	w.WriteHeader(http.StatusOK)
}

func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.reqs)
}

func start(t *testing.T, rate float64, kinds ...Kind) (*Proxy, *upstream) {
	t.Helper()
	up := &upstream{}
	srv := httptest.NewServer(up)
	t.Cleanup(srv.Close)
	p, err := Start(Config{Upstream: srv.URL, Seed: 1, Rate: rate, Kinds: kinds, MaxDelay: 100 * time.Millisecond,
		HangFor: 200 * time.Millisecond, OnWrite: up.written})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, up
}

func put(p *Proxy, key string) (*http.Response, error) {
	req, _ := http.NewRequest(http.MethodPut, p.URL+"/bucket/"+key, strings.NewReader("payload"))
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=ASIASESSIONKEY1/20240101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=x")
	req.Header.Set("X-Amz-Security-Token", "token-of-the-session")
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	return resp, err
}

func TestPassThroughKeepsTheSignedRequest(t *testing.T) {
	p, up := start(t, 0)
	key := "exports/acme/2024-01-01T04:03/companies/companies_000000000000.parquet.gz?x-id=PutObject"
	resp, err := put(p, key)
	if err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") != `"abc"` {
		t.Fatalf("pass-through: %v %v", resp, err)
	}
	host := strings.TrimPrefix(p.URL, "http://")
	if want := fmt.Sprintf("PUT %s /bucket/%s payload", host, key); up.reqs[0] != want {
		t.Errorf("upstream saw %q, want %q (Host and URI as signed)", up.reqs[0], want)
	}
	time.Sleep(50 * time.Millisecond) // OnWrite runs in its own goroutine
	up.mu.Lock()
	if len(up.writes) != 1 || up.writes[0] != "bucket exports/acme/2024-01-01T04:03/companies/companies_000000000000.parquet.gz" {
		t.Errorf("OnWrite saw %q", up.writes)
	}
	up.mu.Unlock()
	secrets := map[string]bool{}
	for _, s := range p.Secrets() {
		secrets[s.Value] = true
	}
	if !secrets["ASIASESSIONKEY1"] || !secrets["token-of-the-session"] {
		t.Errorf("secrets seen: %v", p.Secrets())
	}
}

func TestFaultKinds(t *testing.T) {
	for _, tc := range []struct {
		kind        Kind
		status      int  // 0: the client sees a transport error
		reachesMinI bool // the write reached upstream
	}{
		{SlowDown, http.StatusServiceUnavailable, false},
		{InternalError, http.StatusInternalServerError, false},
		{Reset, 0, false},
		{Truncate, 0, true},
		{Delay, http.StatusOK, true},
		{Hang, 0, false},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			p, up := start(t, 1, tc.kind)
			resp, err := put(p, "k")
			switch {
			case tc.status == 0 && err == nil:
				t.Errorf("client saw %s, want a transport error", resp.Status)
			case tc.status != 0 && (err != nil || resp.StatusCode != tc.status):
				t.Errorf("client saw %v %v, want status %d", resp, err, tc.status)
			}
			if got := up.count() > 0; got != tc.reachesMinI {
				t.Errorf("reached upstream: %v, want %v", got, tc.reachesMinI)
			}
			if p.Counts()[tc.kind] != 1 {
				t.Errorf("counts %v", p.Counts())
			}
		})
	}
}

func TestSTSIsNotFaultedAndItsCredentialsAreKept(t *testing.T) {
	p, _ := start(t, 1, SlowDown)
	req, _ := http.NewRequest(http.MethodPost, p.URL+"/", strings.NewReader("Action=AssumeRole&Version=2011-06-15"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("AssumeRole through the proxy: %v %v", resp, err)
	}
	resp.Body.Close()
	got := map[string]bool{}
	for _, s := range p.Secrets() {
		got[s.Value] = true
	}
	for _, want := range []string{"ASIAEXAMPLEKEY01", "secret-access-key-0001", "session-token-00001"} {
		if !got[want] {
			t.Errorf("assumed credential %q not kept", want)
		}
	}
}

func TestRefusesRemoteUpstream(t *testing.T) {
	if _, err := Start(Config{Upstream: "http://203.0.113.7:9000"}); err == nil {
		t.Fatal("a non-loopback upstream was accepted")
	}
}
