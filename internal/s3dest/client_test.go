package s3dest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/dreamdata/destination-aws-s3/internal/failure"
)

// fakeAWS serves STS AssumeRole and path-style S3 PutObject over HTTP, so the tests below run
// the real SDK clients: signing, retries, checksum middleware, the transport.
type fakeAWS struct {
	t   *testing.T
	srv *httptest.Server
	// sts answers the n-th AssumeRole (1-based): an HTTP status and an error code, or 200.
	sts func(n int32) (status int, code string)
	// s3 answers the n-th PutObject after reading its body; nil answers 200.
	s3 func(n int32, r *http.Request, body []byte) (status int, code string)
	// stall makes PutObject never read the body nor answer, until the test ends.
	stall bool

	assumeRoles, puts atomic.Int32
	mu                sync.Mutex
	tokens            []string // session token of each PutObject
	release           chan struct{}
}

func newFakeAWS(t *testing.T) *fakeAWS {
	f := &fakeAWS{t: t, release: make(chan struct{})}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	t.Cleanup(func() { close(f.release) }) // runs first: stalled handlers return
	return f
}

func errorXML(code string) string {
	return fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>fake %s</Message><RequestId>r1</RequestId></Error>`, code, code)
}

func (f *fakeAWS) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && r.URL.Path == "/" {
		if err := r.ParseForm(); err != nil || r.Form.Get("Action") != "AssumeRole" {
			http.Error(w, "bad STS request", http.StatusBadRequest)
			return
		}
		n := f.assumeRoles.Add(1)
		status, code := http.StatusOK, ""
		if f.sts != nil {
			status, code = f.sts(n)
		}
		if status != http.StatusOK {
			w.Header().Set("Content-Type", "text/xml")
			w.WriteHeader(status)
			fmt.Fprintf(w, `<ErrorResponse><Error><Type>Sender</Type><Code>%s</Code><Message>fake %s</Message></Error><RequestId>r1</RequestId></ErrorResponse>`, code, code)
			return
		}
		if r.Form.Get("ExternalId") != "acme" {
			f.t.Errorf("AssumeRole without the account's ExternalId: %q", r.Form.Get("ExternalId"))
		}
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(w, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>
<Credentials><AccessKeyId>ASIAFAKE%d</AccessKeyId><SecretAccessKey>fake-secret</SecretAccessKey><SessionToken>token-%d</SessionToken><Expiration>%s</Expiration></Credentials>
<AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/r/s</Arn><AssumedRoleId>AROAFAKE:s</AssumedRoleId></AssumedRoleUser>
</AssumeRoleResult><ResponseMetadata><RequestId>r1</RequestId></ResponseMetadata></AssumeRoleResponse>`,
			n, n, time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
		return
	}
	if r.Method != http.MethodPut || strings.Contains(r.URL.RawQuery, "uploadId") {
		f.t.Errorf("unexpected request %s %s", r.Method, r.URL)
		http.Error(w, "unexpected", http.StatusBadRequest)
		return
	}
	n := f.puts.Add(1)
	f.mu.Lock()
	f.tokens = append(f.tokens, r.Header.Get("X-Amz-Security-Token"))
	f.mu.Unlock()
	if f.stall {
		<-f.release
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	status, code := http.StatusOK, ""
	if f.s3 != nil {
		status, code = f.s3(n, r, body)
	}
	if status != http.StatusOK {
		w.WriteHeader(status)
		io.WriteString(w, errorXML(code))
		return
	}
	if got := r.Header.Get("X-Amz-Checksum-Crc32c"); got != "" {
		if got != crcOf(body) {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, errorXML("BadDigest"))
			return
		}
		w.Header().Set("X-Amz-Checksum-Crc32c", got)
	}
	w.Header().Set("ETag", `"fake-etag"`)
}

// client is a Client on the fake, with STS retries that do not wait.
func (f *fakeAWS) client() *Client {
	base := aws.Config{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider("AKIAPLATFORM", "platform-secret", "")}
	s := Settings{S3Endpoint: f.srv.URL, STSEndpoint: f.srv.URL, PathStyle: true}
	c := New(base, s)
	c.sts = newSTSClient(base, c.settings, noBackoff{})
	return c
}

type noBackoff struct{}

func (noBackoff) BackoffDelay(int, error) (time.Duration, error) { return 0, nil }

func TestCheckAccessRidesOutSTSTrouble(t *testing.T) {
	cases := map[string]struct {
		sts   func(n int32) (int, string)
		kind  failure.Kind // "" for success
		calls int32
	}{
		"5xx, then granted":       {func(n int32) (int, string) { return map[bool]int{true: 503, false: 200}[n <= 4], "ServiceUnavailable" }, "", 5},
		"throttled, then granted": {func(n int32) (int, string) { return map[bool]int{true: 400, false: 200}[n <= 6], "Throttling" }, "", 7},
		"down for good":           {func(int32) (int, string) { return 500, "InternalFailure" }, failure.KindTransient, STSMaxAttempts},
		"denied":                  {func(int32) (int, string) { return 403, "AccessDenied" }, failure.KindAssumeRoleDenied, 1},
		"platform identity":       {func(int32) (int, string) { return 403, "InvalidClientTokenId" }, failure.KindPlatformIdentity, 1},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFakeAWS(t)
			f.sts = tc.sts
			err := f.client().CheckAccess(context.Background(), testTarget())
			if tc.kind == "" && err != nil {
				t.Fatalf("CheckAccess: %v", err)
			}
			if tc.kind != "" {
				if e, ok := failure.As(err); !ok || e.Kind != tc.kind {
					t.Fatalf("error %v, want %s", err, tc.kind)
				}
			}
			if got := f.assumeRoles.Load(); got != tc.calls {
				t.Errorf("%d AssumeRole calls, want %d", got, tc.calls)
			}
		})
	}
}

func TestSTSBackoffBudget(t *testing.T) {
	var lo, hi time.Duration
	for attempt := 1; attempt < STSMaxAttempts; attempt++ {
		c := stsBackoffCap(attempt)
		if c > STSMaxBackoff {
			t.Errorf("attempt %d waits up to %s", attempt, c)
		}
		lo += jitter(c, 0)
		hi += jitter(c, 0.999999)
	}
	// The retries alone must cover a couple of minutes of STS outage, and not hold an
	// activity much longer than its own retries would.
	if lo < 70*time.Second || hi > 160*time.Second {
		t.Errorf("STS retries wait %s to %s", lo, hi)
	}
	t.Logf("AssumeRole retries wait %s to %s in all", lo, hi)
	if d, _ := (stsBackoff{}).BackoffDelay(20, nil); d < STSMaxBackoff/2 || d > STSMaxBackoff {
		t.Errorf("late backoff %s", d)
	}
}

func TestTransportsHaveTimeouts(t *testing.T) {
	c := New(aws.Config{Region: "eu-west-1"}, Settings{})
	check := func(name string, hc aws.HTTPClient, header time.Duration) {
		b, ok := hc.(*awshttp.BuildableClient)
		if !ok {
			t.Fatalf("%s HTTP client is %T", name, hc)
		}
		tr := b.GetTransport()
		if tr.TLSHandshakeTimeout != TLSHandshakeTimeout || tr.ResponseHeaderTimeout != header || tr.IdleConnTimeout != IdleConnTimeout ||
			tr.MaxConnsPerHost != MaxConnsPerHost || b.GetDialer().Timeout != ConnectTimeout {
			t.Errorf("%s transport %+v", name, tr)
		}
	}
	check("S3", c.s3HTTP, S3ResponseHeaderTimeout)
	o := c.sts.Options()
	check("STS", o.HTTPClient, STSResponseHeaderTimeout)
	if o.Retryer.MaxAttempts() != STSMaxAttempts {
		t.Errorf("STS retryer makes %d attempts", o.Retryer.MaxAttempts())
	}
}

func TestExpiredTokenFetchesFreshCredentials(t *testing.T) {
	f := newFakeAWS(t)
	f.s3 = func(n int32, _ *http.Request, _ []byte) (int, string) {
		if n == 1 {
			return http.StatusBadRequest, "ExpiredToken"
		}
		return http.StatusOK, ""
	}
	data := randomBytes(3 << 20)
	res, err := f.client().Writer(testTarget()).Put(context.Background(), Object{Key: "k", Body: bytes.NewReader(data), Size: int64(len(data))})
	if err != nil || res.ChecksumCRC32C != crcOf(data) {
		t.Fatalf("put: %+v %v", res, err)
	}
	if f.assumeRoles.Load() != 2 || f.puts.Load() != 2 {
		t.Errorf("%d AssumeRole, %d PutObject calls; want 2 and 2", f.assumeRoles.Load(), f.puts.Load())
	}
	if f.tokens[0] != "token-1" || f.tokens[1] != "token-2" {
		t.Errorf("session tokens %v: the retry must sign with fresh credentials", f.tokens)
	}
}

func TestProgressCountsBytesSentOnce(t *testing.T) {
	f := newFakeAWS(t)
	var seen http.Header
	f.s3 = func(_ int32, r *http.Request, _ []byte) (int, string) {
		seen = r.Header.Clone()
		return http.StatusOK, ""
	}
	data := randomBytes(3<<20 + 5)
	var prog progress
	res, err := f.client().Writer(testTarget()).Put(context.Background(), Object{Key: "p/k.parquet", Body: bytes.NewReader(data), Size: int64(len(data)),
		ContentType: "application/vnd.apache.parquet", OnProgress: prog.add})
	if err != nil || res.ChecksumCRC32C != crcOf(data) || res.ETag != `"fake-etag"` {
		t.Fatalf("put: %+v %v", res, err)
	}
	// Over plain HTTP the SDK reads the body once more to sign its SHA-256: that is no
	// progress, only bytes on the wire are.
	if prog.n.Load() != int64(len(data)) {
		t.Errorf("progress %d, want %d", prog.n.Load(), len(data))
	}
	if seen.Get("X-Amz-Checksum-Crc32c") != crcOf(data) || seen.Get("X-Amz-Acl") != "bucket-owner-full-control" ||
		seen.Get("X-Amz-Server-Side-Encryption") != "aws:kms" || seen.Get("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id") != testTarget().KMSKeyID ||
		seen.Get("Content-Type") != "application/vnd.apache.parquet" || strings.Contains(seen.Get("Content-Encoding"), "aws-chunked") {
		t.Errorf("request headers %v", seen)
	}
}

func TestStalledBodyIsCancelledAndRetriedOnce(t *testing.T) {
	f := newFakeAWS(t)
	f.stall = true
	w := f.client().Writer(testTarget()).(*bucketWriter)
	w.stallTimeout = 300 * time.Millisecond
	// More than the loopback socket buffers hold, so the sender blocks.
	data := make([]byte, 64<<20)
	var prog progress
	start := time.Now()
	_, err := w.Put(context.Background(), Object{Key: "k", Body: bytes.NewReader(data), Size: int64(len(data)), PartSize: int64(len(data)), OnProgress: prog.add})
	e, ok := failure.As(err)
	if !ok || e.Kind != failure.KindStalled {
		t.Fatalf("error %v, want %s", err, failure.KindStalled)
	}
	if f.puts.Load() != 2 {
		t.Errorf("%d PutObject requests, want 2 (one retry)", f.puts.Load())
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("the stall took %s to notice", d)
	}
	if n := prog.n.Load(); n == 0 || n >= 2*int64(len(data)) {
		t.Errorf("progress %d", n)
	}
	t.Logf("stalled after %d bytes in two tries, %s: %v", prog.n.Load(), time.Since(start), err)
}

func TestSlowAnswerAfterTheBodyIsNoStall(t *testing.T) {
	f := newFakeAWS(t)
	f.s3 = func(int32, *http.Request, []byte) (int, string) {
		time.Sleep(time.Second) // S3 assembling, or a slow disk: the body was all sent
		return http.StatusOK, ""
	}
	w := f.client().Writer(testTarget()).(*bucketWriter)
	w.stallTimeout = 200 * time.Millisecond
	data := randomBytes(1 << 20)
	if _, err := w.Put(context.Background(), Object{Key: "k", Body: bytes.NewReader(data), Size: int64(len(data))}); err != nil {
		t.Fatal(err)
	}
	if f.puts.Load() != 1 {
		t.Errorf("%d PutObject requests", f.puts.Load())
	}
}

func TestWatchedBodyAfterTheAttempt(t *testing.T) {
	fired := make(chan struct{}, 1)
	w := &bodyWatch{timeout: 50 * time.Millisecond, stalled: func() { fired <- struct{}{} }}
	b := w.sending(strings.NewReader("abcdef"), 6)
	buf := make([]byte, 2)
	if _, err := b.Read(buf); err != nil {
		t.Fatal(err)
	}
	b.finish()
	if _, err := b.Read(buf); err != nil { // the transport still writing after the answer
		t.Fatal(err)
	}
	select {
	case <-fired:
		t.Error("a read after the attempt re-armed the stall timer")
	case <-time.After(200 * time.Millisecond):
	}
	b = w.sending(strings.NewReader("abcdef"), 6)
	if _, err := b.Read(buf); err != nil {
		t.Fatal(err)
	}
	select {
	case <-fired:
	case <-time.After(5 * time.Second):
		t.Error("a body that stopped moving did not fire the stall timer")
	}
}

var errLeaseLost = errors.New("lease lost")

func TestFenceCutsABodyShortAndStoresNothing(t *testing.T) {
	f := newFakeAWS(t)
	var complete atomic.Int32
	f.s3 = func(int32, *http.Request, []byte) (int, string) {
		complete.Add(1) // only a request whose whole body arrived gets here
		return http.StatusOK, ""
	}
	// More than the loopback socket buffers hold, so most of the body is read after the fence
	// turns.
	data := make([]byte, 64<<20)
	var prog progress
	fence := func() error {
		if prog.n.Load() > 1<<20 {
			return errLeaseLost
		}
		return nil
	}
	_, err := f.client().Writer(testTarget()).Put(context.Background(), Object{Key: "k", Body: bytes.NewReader(data), Size: int64(len(data)),
		PartSize: int64(len(data)), OnProgress: prog.add, Fence: fence})
	if !errors.Is(err, errLeaseLost) {
		t.Fatalf("error %v, want the fence's", err)
	}
	if _, classified := failure.As(err); classified {
		t.Errorf("the fence's error was classified: %v", err)
	}
	if complete.Load() != 0 {
		t.Errorf("%d requests with a whole body reached the server", complete.Load())
	}
	if n := prog.n.Load(); n >= int64(len(data)) {
		t.Errorf("%d bytes sent: the body was not cut short", n)
	}
}

func TestFenceIsAskedBeforeEveryAttempt(t *testing.T) {
	f := newFakeAWS(t)
	var shut atomic.Bool
	f.s3 = func(int32, *http.Request, []byte) (int, string) {
		shut.Store(true) // the lease lapses while S3 answers 500: the SDK's retry must not go
		return http.StatusInternalServerError, "InternalError"
	}
	fence := func() error {
		if shut.Load() {
			return errLeaseLost
		}
		return nil
	}
	data := randomBytes(1 << 10)
	_, err := f.client().Writer(testTarget()).Put(context.Background(), Object{Key: "k", Body: bytes.NewReader(data), Size: int64(len(data)), Fence: fence})
	if !errors.Is(err, errLeaseLost) {
		t.Fatalf("error %v, want the fence's", err)
	}
	if n := f.puts.Load(); n != 1 {
		t.Errorf("%d PutObject requests, want 1", n)
	}
	// A writer whose fence is already shut sends nothing at all.
	before := f.puts.Load()
	if _, err := f.client().Writer(testTarget()).Put(context.Background(), Object{Key: "k", Body: bytes.NewReader(data), Size: int64(len(data)), Fence: fence}); !errors.Is(err, errLeaseLost) {
		t.Fatalf("error %v", err)
	}
	if f.puts.Load() != before || f.assumeRoles.Load() > 1 {
		t.Errorf("a fenced writer sent requests")
	}
}
