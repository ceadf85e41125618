// Package s3dest writes objects into a customer's S3 bucket through the customer's IAM role.
//
// The customer grants exactly s3:PutObject and s3:PutObjectAcl (plus KMS use when the bucket
// is encrypted with a customer key). So this package is write-only by design: it never lists,
// reads, heads, deletes or aborts anything in the customer's bucket.
package s3dest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// Limits of the upload path.
const (
	// SessionDuration of the assumed role. An hour is the default maximum a role allows.
	SessionDuration = time.Hour
	// RefreshWindow: cached credentials are renewed this long before they expire, so a shard
	// upload that starts just before expiry does not fail half way. Big dumps outlive an hour.
	RefreshWindow = 10 * time.Minute
	// MinPartSize is S3's smallest multipart part.
	MinPartSize = manager.MinUploadPartSize
	// MaxParts is S3's largest number of parts in one upload.
	MaxParts = manager.MaxUploadParts
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
	// ChecksumWhenRequired turns off the SDK's default CRC checksums for servers that reject
	// them. Uploads then carry no end-to-end checksum; leave it off against AWS.
	ChecksumWhenRequired bool
	// SessionNamePrefix starts the RoleSessionName (visible in the customer's CloudTrail).
	SessionNamePrefix string
}

// Target is one customer's bucket as the account configuration names it.
type Target struct {
	AccountID string
	RoleARN   string
	Bucket    string
	Region    string
	KMSKeyID  string
}

// Object is one object to write.
type Object struct {
	Key         string
	Body        io.Reader // an *os.File or other io.ReadSeeker avoids buffering parts in memory
	Size        int64     // -1 when unknown
	ContentType string
	// PartSize of a multipart upload; 0 means derived from Size.
	PartSize int64
}

// Writer puts objects into one bucket. It is the whole boundary the exporter needs.
type Writer interface {
	Put(ctx context.Context, obj Object) (PutResult, error)
}

// PutResult is what S3 answered for one object.
type PutResult struct {
	ETag           string
	ChecksumCRC32C string
}

// Client hands out per-account writers. It caches assumed-role credentials per account for
// the life of the worker, and refreshes them before they expire. It is safe for concurrent use.
type Client struct {
	base     aws.Config
	sts      *sts.Client
	settings Settings

	mu    sync.Mutex
	creds map[credKey]*aws.CredentialsCache
}

type credKey struct{ roleARN, externalID string }

// New builds a Client on the platform's own AWS configuration (its identity calls AssumeRole).
func New(base aws.Config, s Settings) *Client {
	stsClient := sts.NewFromConfig(base, func(o *sts.Options) {
		if s.STSEndpoint != "" {
			o.BaseEndpoint = aws.String(s.STSEndpoint)
		}
	})
	if s.SessionNamePrefix == "" {
		s.SessionNamePrefix = "dreamdata-export"
	}
	return &Client{base: base, sts: stsClient, settings: s, creds: map[credKey]*aws.CredentialsCache{}}
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
		return classifyAssumeRole(err, opContext{account: t.AccountID, roleARN: t.RoleARN})
	}
	return nil
}

// Writer returns the write-only view of the account's bucket.
func (c *Client) Writer(t Target) Writer {
	creds := c.credentials(t)
	client := s3.NewFromConfig(c.base, func(o *s3.Options) {
		o.Credentials = creds
		if t.Region != "" {
			o.Region = t.Region
		}
		if c.settings.S3Endpoint != "" {
			o.BaseEndpoint = aws.String(c.settings.S3Endpoint)
		}
		o.UsePathStyle = c.settings.PathStyle
		if c.settings.ChecksumWhenRequired {
			o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		}
	})
	return &bucketWriter{client: client, target: t, settings: c.settings}
}

type bucketWriter struct {
	client   *s3.Client
	target   Target
	settings Settings
}

// PartSizeFor picks a multipart part size so an object of the given size needs at most a
// tenth of S3's part limit, leaving room for shards that overshoot their target.
func PartSizeFor(size int64) int64 {
	p := int64(16 << 20)
	for size > 0 && size/p > int64(MaxParts)/10 {
		p *= 2
	}
	return p
}

// Put writes one object with the bucket-owner-full-control ACL, so the customer owns what we
// write, SSE-KMS when the account has a key, and a CRC32C checksum S3 verifies.
func (w *bucketWriter) Put(ctx context.Context, obj Object) (PutResult, error) {
	in := &s3.PutObjectInput{
		Bucket:      aws.String(w.target.Bucket),
		Key:         aws.String(obj.Key),
		Body:        obj.Body,
		ACL:         types.ObjectCannedACLBucketOwnerFullControl,
		ContentType: aws.String(obj.ContentType),
	}
	if !w.settings.ChecksumWhenRequired {
		in.ChecksumAlgorithm = types.ChecksumAlgorithmCrc32c
	}
	if w.target.KMSKeyID != "" {
		in.ServerSideEncryption = types.ServerSideEncryptionAwsKms
		in.SSEKMSKeyId = aws.String(w.target.KMSKeyID)
	}
	partSize := obj.PartSize
	if partSize == 0 {
		partSize = PartSizeFor(obj.Size)
	}
	up := manager.NewUploader(w.client, func(u *manager.Uploader) {
		u.PartSize = partSize
		u.Concurrency = DefaultUploadConcurrency
		// The customer's policy does not grant s3:AbortMultipartUpload; a failed upload's
		// parts are left for the bucket's lifecycle rule instead of a denied abort call.
		u.LeavePartsOnError = true
	})
	out, err := up.Upload(ctx, in)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return PutResult{}, err
		}
		return PutResult{}, classifyPut(err, opContext{account: w.target.AccountID, roleARN: w.target.RoleARN,
			bucket: w.target.Bucket, key: obj.Key, region: w.target.Region, kmsKey: w.target.KMSKeyID})
	}
	res := PutResult{ETag: aws.ToString(out.ETag), ChecksumCRC32C: aws.ToString(out.ChecksumCRC32C)}
	return res, nil
}

// String describes the target without anything secret, for logs.
func (t Target) String() string {
	return fmt.Sprintf("s3://%s (role %s, account %s)", t.Bucket, t.RoleARN, t.AccountID)
}
