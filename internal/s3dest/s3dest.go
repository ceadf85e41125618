// Package s3dest writes objects into a customer's S3 bucket through the customer's IAM role.
//
// The customer grants exactly s3:PutObject and s3:PutObjectAcl (plus KMS use when the bucket
// is encrypted with a customer key). So this package is write-only by design: it never lists,
// reads, heads, deletes or aborts anything in the customer's bucket.
package s3dest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/dreamdata/destination-aws-s3/internal/settings"
)

// Limits of the upload path.
const (
	// SessionDuration of the assumed role. An hour is the default maximum a role allows.
	SessionDuration = time.Hour
	// RefreshWindow: cached credentials are renewed this long before they expire, so a shard
	// upload that starts just before expiry does not fail half way. Big dumps outlive an hour.
	RefreshWindow = 10 * time.Minute
	// MinPartSize is S3's smallest multipart part (all but the last).
	MinPartSize = 5 << 20
	// MaxPartSize is S3's largest part, and its largest single PutObject.
	MaxPartSize = 5 << 30
	// MaxParts is S3's largest number of parts in one upload.
	MaxParts = 10000
	// DefaultUploadConcurrency is how many parts of one object upload at once.
	DefaultUploadConcurrency = 4
)

// Settings describe how the worker reaches STS and S3. Zero values mean AWS defaults.
type Settings struct {
	// S3Endpoint and STSEndpoint override the AWS endpoints (a local S3-compatible server).
	S3Endpoint  string
	STSEndpoint string
	// PathStyle addresses buckets as endpoint/bucket instead of bucket.endpoint.
	PathStyle bool
	// ChecksumWhenRequired sends no checksum headers, for servers that reject them. S3 then
	// verifies nothing end to end; PutResult.ChecksumCRC32C is still the object's CRC32C,
	// computed here. Leave it off against AWS.
	ChecksumWhenRequired bool
	// SessionNamePrefix starts the RoleSessionName (visible in the customer's CloudTrail).
	SessionNamePrefix string
}

// BindFlags defines the S3 and STS flags on fs, with their environment variables as
// defaults (malformed ones are kept in env's errors): the worker and the starter share them.
func (s *Settings) BindFlags(fs *flag.FlagSet, env *settings.Environment) {
	fs.StringVar(&s.S3Endpoint, "s3-endpoint", env.String("S3_ENDPOINT_URL", ""), "S3 endpoint URL; empty means AWS (env S3_ENDPOINT_URL)")
	fs.StringVar(&s.STSEndpoint, "sts-endpoint", env.String("STS_ENDPOINT_URL", ""), "STS endpoint URL; empty means AWS (env STS_ENDPOINT_URL)")
	fs.BoolVar(&s.PathStyle, "s3-path-style", env.Bool("S3_FORCE_PATH_STYLE", false), "address buckets path-style, for S3-compatible servers (env S3_FORCE_PATH_STYLE)")
	fs.BoolVar(&s.ChecksumWhenRequired, "s3-checksum-when-required", env.Bool("S3_CHECKSUM_WHEN_REQUIRED", false), "send checksums only when required, for servers that reject the SDK's default CRCs (env S3_CHECKSUM_WHEN_REQUIRED)")
}

// Target is one customer's bucket as the account configuration names it.
type Target struct {
	AccountID string
	RoleARN   string
	Bucket    string
	// Prefix is the account's folder in the bucket, for error messages: writes name whole keys.
	Prefix   string
	Region   string
	KMSKeyID string
}

// Object is one object to write.
type Object struct {
	Key string
	// Body is read in place, parts concurrently, when it is an io.ReaderAt (an *os.File, a
	// *bytes.Reader); it is read from its current offset when it is also an io.Seeker. Any
	// other reader is read once, each part buffered in memory while it uploads.
	Body        io.Reader
	Size        int64 // -1 when unknown
	ContentType string
	// PartSize of a multipart upload; 0 means PartSizeFor(Size). Objects up to the part
	// size go in one PutObject.
	PartSize int64
	// OnProgress, when set, is called with the number of request body bytes just handed to
	// the connection, as they go, so the caller can heartbeat on bytes moving and notice
	// stalls. It is called from several goroutines at once (the parts upload concurrently,
	// and the HTTP transport writes bodies from its own goroutines), so it must be safe for
	// concurrent use and quick. Bytes sent again by a retry are counted again.
	OnProgress func(n int64)
	// Fence, when set, says whether this writer may still write: it is asked before every
	// request of the object is sent (each retry too, and a multipart upload's completion)
	// and before every read of a request body by the connection. Once it returns an error
	// nothing more is sent, a body being sent is cut short (S3 stores no object from a
	// truncated request), and Put returns that error. A writer that may have been
	// superseded, such as a Temporal activity attempt whose heartbeat was not confirmed
	// lately, uses it so that a late write can never land over a newer one. It must be
	// quick and safe for concurrent use.
	Fence func() error
}

// Writer puts objects into one bucket. It is the whole boundary the exporter needs.
type Writer interface {
	Put(ctx context.Context, obj Object) (PutResult, error)
}

// PutResult is what was written.
type PutResult struct {
	ETag string
	// ChecksumCRC32C is the CRC32C of the whole object (S3's FULL_OBJECT checksum type,
	// base64 of the big-endian bytes), the same for single and multipart uploads, so any
	// CRC32C tool can verify a downloaded object against it. It is computed here, and S3
	// confirmed it unless Settings.ChecksumWhenRequired is set.
	ChecksumCRC32C string
}

// Client hands out per-account writers. It caches assumed-role credentials per account for
// the life of the worker, and refreshes them before they expire. It is safe for concurrent use.
type Client struct {
	base     aws.Config
	sts      *sts.Client
	settings Settings
	// s3HTTP is shared by every account's S3 client: one connection pool per bucket host.
	s3HTTP aws.HTTPClient

	mu    sync.Mutex
	creds map[credKey]*aws.CredentialsCache
}

type credKey struct{ roleARN, externalID string }

// New builds a Client on the platform's own AWS configuration (its identity calls AssumeRole).
func New(base aws.Config, s Settings) *Client {
	if s.SessionNamePrefix == "" {
		s.SessionNamePrefix = "dreamdata-export"
	}
	return &Client{
		base:     base,
		sts:      newSTSClient(base, s, stsBackoff{}),
		settings: s,
		s3HTTP:   newHTTPClient(S3ResponseHeaderTimeout),
		creds:    map[credKey]*aws.CredentialsCache{},
	}
}

func newSTSClient(base aws.Config, s Settings, backoff retry.BackoffDelayer) *sts.Client {
	return sts.NewFromConfig(base, func(o *sts.Options) {
		if s.STSEndpoint != "" {
			o.BaseEndpoint = aws.String(s.STSEndpoint)
		}
		o.HTTPClient = newHTTPClient(STSResponseHeaderTimeout)
		o.Retryer = newSTSRetryer(backoff)
	})
}

var sessionNameUnsafe = regexp.MustCompile(`[^A-Za-z0-9+=,.@-]`)

// sessionName names the account in the customer's CloudTrail; STS allows 2-64 characters.
func (c *Client) sessionName(account string) string {
	n := c.settings.SessionNamePrefix + "-" + sessionNameUnsafe.ReplaceAllString(account, "-")
	if len(n) > 64 {
		n = n[:64]
	}
	return n
}

func (c *Client) credentials(t Target) *aws.CredentialsCache {
	k := credKey{t.RoleARN, t.AccountID}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc, ok := c.creds[k]; ok {
		return cc
	}
	p := stscreds.NewAssumeRoleProvider(c.sts, t.RoleARN, func(o *stscreds.AssumeRoleOptions) {
		o.ExternalID = aws.String(t.AccountID)
		o.RoleSessionName = c.sessionName(t.AccountID)
		o.Duration = SessionDuration
	})
	cc := aws.NewCredentialsCache(p, func(o *aws.CredentialsCacheOptions) { o.ExpiryWindow = RefreshWindow })
	c.creds[k] = cc
	return cc
}

// CheckAccess assumes the customer's role now, so a broken trust policy fails the dump before
// any work is done. The credentials stay cached for the uploads that follow.
func (c *Client) CheckAccess(ctx context.Context, t Target) error {
	_, err := c.credentials(t).Retrieve(ctx)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return err
		}
		return classifyAssumeRole(err, opContext{account: t.AccountID, roleARN: t.RoleARN})
	}
	return nil
}

// Writer returns the write-only view of the account's bucket.
func (c *Client) Writer(t Target) Writer {
	creds := c.credentials(t)
	return newBucketWriter(newS3Client(c.base, c.settings, c.s3HTTP, creds, t.Region), creds, t, c.settings)
}

// newS3Client is an S3 client for one bucket, signing with creds.
func newS3Client(base aws.Config, s Settings, httpClient aws.HTTPClient, creds aws.CredentialsProvider, region string) *s3.Client {
	return s3.NewFromConfig(base, func(o *s3.Options) {
		o.Credentials = creds
		o.HTTPClient = httpClient
		if region != "" {
			o.Region = region
		}
		if s.S3Endpoint != "" {
			o.BaseEndpoint = aws.String(s.S3Endpoint)
		}
		o.UsePathStyle = s.PathStyle
		if s.ChecksumWhenRequired {
			o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		}
		o.APIOptions = append(o.APIOptions, addBodyWatch)
	})
}

// PartSizeFor picks a multipart part size so an object of the given size needs at most a
// tenth of S3's part limit, leaving room for shards that overshoot their target.
func PartSizeFor(size int64) int64 {
	p := int64(16 << 20)
	for size > 0 && size/p > int64(MaxParts)/10 && p < MaxPartSize {
		p *= 2
	}
	return min(p, MaxPartSize)
}

// String describes the target without anything secret, for logs.
func (t Target) String() string {
	return fmt.Sprintf("s3://%s (role %s, account %s)", t.Bucket, t.RoleARN, t.AccountID)
}
