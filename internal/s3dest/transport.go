package s3dest

import (
	"math/rand/v2"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
)

// Timeouts of the connections to S3 and STS. Without them a black-holed endpoint or a
// half-open connection holds an upload until the activity's heartbeat timeout kills the
// whole table export.
const (
	// ConnectTimeout bounds dialing a TCP connection.
	ConnectTimeout = 10 * time.Second
	// KeepAlive is the TCP keep-alive period, which also lets the kernel notice a dead peer
	// on an idle pooled connection.
	KeepAlive = 30 * time.Second
	// TLSHandshakeTimeout bounds the TLS handshake.
	TLSHandshakeTimeout = 10 * time.Second
	// S3ResponseHeaderTimeout is how long S3 may take, once a request's body is fully
	// written, to send the response headers. CompleteMultipartUpload is the slow one: S3
	// answers it with headers at once and keeps the connection alive with whitespace while
	// it assembles the parts, but compatible servers may assemble first; two minutes covers
	// assembling thousands of parts.
	S3ResponseHeaderTimeout = 2 * time.Minute
	// STSResponseHeaderTimeout: AssumeRole answers in well under a second; a request that
	// hangs is retried instead of eating the retry budget.
	STSResponseHeaderTimeout = 30 * time.Second
	// IdleConnTimeout closes pooled connections nobody used for this long.
	IdleConnTimeout = 90 * time.Second
	// MaxConnsPerHost bounds the connections to one endpoint (one bucket's, or STS): many
	// concurrent uploads queue for a connection instead of opening sockets without limit.
	// It is far above what one worker's uploads need (tables × DefaultUploadConcurrency).
	MaxConnsPerHost = 64
	// StallTimeout cancels a request whose body has not moved for this long: no byte of it
	// was taken by the connection (a half-open connection whose send buffer is full, a server
	// that stopped reading). The request is tried once more on a new connection, then the
	// upload fails as failure.KindStalled.
	StallTimeout = 2 * time.Minute
)

// STS retries: AssumeRole must ride out a few minutes of STS trouble (5xx, throttling,
// resets), because without credentials nothing moves. The activity is retried by the
// workflow as well; this keeps one outage from burning its attempts.
const (
	// STSMaxAttempts is how many times one AssumeRole is tried.
	STSMaxAttempts = 10
	// STSMaxBackoff caps the wait between two tries. The waits are 1s, 2s, 4s, 8s, 16s,
	// then 30s, each between half and all of that: 75s to 151s for all ten tries, about
	// two minutes with the tries themselves.
	STSMaxBackoff = 30 * time.Second
)

// newHTTPClient is the transport of the S3 or STS clients: AWS's defaults plus the timeouts
// above.
func newHTTPClient(responseHeaderTimeout time.Duration) *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().
		WithDialerOptions(func(d *net.Dialer) {
			d.Timeout = ConnectTimeout
			d.KeepAlive = KeepAlive
		}).
		WithTransportOptions(func(t *http.Transport) {
			t.TLSHandshakeTimeout = TLSHandshakeTimeout
			t.ResponseHeaderTimeout = responseHeaderTimeout
			t.IdleConnTimeout = IdleConnTimeout
			t.MaxConnsPerHost = MaxConnsPerHost
			t.MaxIdleConnsPerHost = MaxConnsPerHost
		})
}

// newSTSRetryer retries AssumeRole for minutes (see STSMaxAttempts). The SDK's standard
// retryer decides what is retryable (5xx, throttling, connection errors); the retry quota is
// off, because the STS client is shared by every account and one outage would drain it for
// all of them.
func newSTSRetryer(backoff retry.BackoffDelayer) aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = STSMaxAttempts
		o.MaxBackoff = STSMaxBackoff
		o.Backoff = backoff
		o.RateLimiter = ratelimit.None
	})
}

// stsBackoff waits min(2^(attempt-1) s, STSMaxBackoff), jittered between half and all of
// it. The SDK's default jitter draws from zero up, so ten tries could all come within
// seconds; a floor makes the retry budget last the minutes it is meant to.
type stsBackoff struct{}

func (stsBackoff) BackoffDelay(attempt int, _ error) (time.Duration, error) {
	return jitter(stsBackoffCap(attempt), rand.Float64()), nil
}

// stsBackoffCap is the longest wait after the given (1-based) failed attempt.
func stsBackoffCap(attempt int) time.Duration {
	d := time.Second
	for i := 1; i < attempt && d < STSMaxBackoff; i++ {
		d *= 2
	}
	return min(d, STSMaxBackoff)
}

// jitter is between half and all of d, for r in [0, 1).
func jitter(d time.Duration, r float64) time.Duration {
	return d/2 + time.Duration(r*float64(d/2))
}
