package s3dest

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/dreamdata/destination-aws-s3/internal/failure"
)

// apiErr is a service error wrapped the way the SDK wraps it: operation error, HTTP response
// error with the status, the API error.
func apiErr(status int, code, msg string) error {
	return &smithy.OperationError{ServiceID: "S3", OperationName: "PutObject", Err: &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
			Err:      &smithy.GenericAPIError{Code: code, Message: msg},
		},
		RequestID: "req-1",
	}}
}

// statusErr is an HTTP response error without an API error in it (an empty or unparsable
// body).
func statusErr(status int) error {
	return &smithy.OperationError{ServiceID: "S3", OperationName: "PutObject", Err: &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
			Err:      errors.New("http response error"),
		},
	}}
}

// netErr is a failure without any answer whose text holds every word a text matcher would
// fall for: the bucket acme-kms-exports, "kms", "AccessDenied", "NoSuchBucket".
func netErr() error {
	return &smithy.OperationError{ServiceID: "S3", OperationName: "PutObject", Err: &url.Error{
		Op:  "Put",
		URL: "https://acme-kms-exports.s3.eu-west-1.amazonaws.com/AccessDenied/NoSuchBucket/kms:GenerateDataKey.parquet",
		Err: &net.OpError{Op: "write", Net: "tcp", Err: syscall.ECONNRESET},
	}}
}

func TestClassifyPut(t *testing.T) {
	c := opContext{account: "acme", roleARN: "arn:aws-cn:iam::123456789012:role/r", bucket: "acme-kms-exports", prefix: "p", key: "p/x.parquet", kmsKey: "arn:aws:kms:eu-west-1:123456789012:key/k"}
	cases := map[string]struct {
		err      error
		kind     failure.Kind
		contains []string
	}{
		"access denied":       {apiErr(403, "AccessDenied", "Access Denied"), failure.KindPutDenied, []string{"s3:PutObject", "s3:PutObjectAcl", "arn:aws-cn:s3:::acme-kms-exports/p/*"}},
		"access denied, key":  {apiErr(403, "AccessDenied", `User: arn:aws:sts::1:assumed-role/r/s is not authorized to perform: s3:PutObject on resource: "arn:aws:s3:::acme-kms-exports/kms/x" with an explicit deny`), failure.KindPutDenied, nil},
		"no such bucket":      {apiErr(404, "NoSuchBucket", "The specified bucket does not exist"), failure.KindBucketNotFound, []string{`"acme-kms-exports"`, "not the ARN"}},
		"404 without a body":  {statusErr(404), failure.KindBucketNotFound, nil},
		"kms denied (AWS)":    {apiErr(403, "AccessDenied", "User: arn:aws:sts::1:assumed-role/r/s is not authorized to perform: kms:GenerateDataKey on resource: arn:aws:kms:eu-west-1:1:key/k"), failure.KindKMSDenied, []string{"kms:GenerateDataKey", "kms:Decrypt", "key/k"}},
		"kms decrypt denied":  {apiErr(403, "AccessDenied", "not authorized to perform: kms:Decrypt"), failure.KindKMSDenied, nil},
		"kms not found":       {apiErr(400, "KMS.NotFoundException", "Invalid keyId"), failure.KindKMSDenied, []string{"kms_key_arn"}},
		"kms disabled":        {apiErr(400, "KMS.DisabledException", "key is disabled"), failure.KindKMSDenied, nil},
		"kms access denied":   {apiErr(403, "KMS.AccessDeniedException", "denied"), failure.KindKMSDenied, nil},
		"kms invalid state":   {apiErr(400, "KMS.KMSInvalidStateException", "pending deletion"), failure.KindKMSDenied, nil},
		"kms key usage":       {apiErr(400, "KMS.InvalidKeyUsageException", "wrong usage"), failure.KindKMSDenied, nil},
		"kms (MinIO unknown)": {apiErr(404, "kms:KeyNotFound", "key with given key ID does not exist"), failure.KindKMSDenied, nil},
		"kms (MinIO denied)":  {apiErr(403, "kms:NotAuthorized", "insufficient permissions to perform KMS operation"), failure.KindKMSDenied, nil},
		"kms (MinIO 500)":     {apiErr(500, "kms:KeyGenerationFailed", "failed"), failure.KindTransient, nil},
		"wrong region":        {apiErr(301, "PermanentRedirect", "The bucket you are attempting to access must be addressed using the specified endpoint"), failure.KindWrongRegion, []string{"region"}},
		"wrong region header": {apiErr(400, "AuthorizationHeaderMalformed", "the region 'us-east-1' is wrong; expecting 'eu-west-1'"), failure.KindWrongRegion, nil},
		"slow down":           {apiErr(503, "SlowDown", "Please reduce your request rate"), failure.KindTransient, nil},
		"internal error":      {apiErr(500, "InternalError", "We encountered an internal error"), failure.KindTransient, nil},
		"kms throttled":       {apiErr(400, "KMS.ThrottlingException", "Rate exceeded"), failure.KindTransient, nil},
		"kms internal":        {apiErr(500, "KMS.KMSInternalException", "internal"), failure.KindTransient, nil},
		"kms internal (400)":  {apiErr(400, "KMS.KMSInternalException", "internal"), failure.KindTransient, nil},
		"request timeout":     {apiErr(400, "RequestTimeout", "Your socket connection to the server was not read from or written to"), failure.KindTransient, nil},
		"bad digest":          {apiErr(400, "BadDigest", "The CRC32C you specified did not match the calculated checksum."), failure.KindTransient, nil},
		"checksum mismatch":   {apiErr(400, "XAmzContentChecksumMismatch", "The provided 'x-amz-checksum' header does not match what was computed."), failure.KindTransient, nil},
		"expired token":       {apiErr(400, "ExpiredToken", "The provided token has expired."), failure.KindTransient, []string{"fresh"}},
		"http 500":            {statusErr(500), failure.KindTransient, nil},
		"http 503":            {statusErr(503), failure.KindTransient, nil},
		"http 503 access den": {apiErr(503, "AccessDenied", "kms:GenerateDataKey"), failure.KindTransient, nil},
		"unknown code":        {apiErr(400, "SomethingNew", "?"), failure.KindTransient, nil},
		"network reset":       {netErr(), failure.KindTransient, nil},
		"plain text":          {errors.New("AccessDenied: kms:GenerateDataKey on acme-kms-exports: NoSuchBucket"), failure.KindTransient, nil},
		"timeout":             {fmt.Errorf("put: %w", &url.Error{Op: "Put", URL: "https://acme-kms-exports.s3.amazonaws.com/k", Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("i/o timeout")}}), failure.KindTransient, nil},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := classifyPut(tc.err, c)
			e, ok := AsError(err)
			if !ok {
				t.Fatalf("not classified: %v", err)
			}
			if e.Kind != tc.kind {
				t.Fatalf("kind %s, want %s (%v)", e.Kind, tc.kind, err)
			}
			if e.Permanent() != (tc.kind.Class() != failure.Transient) {
				t.Errorf("permanent = %v", e.Permanent())
			}
			for _, s := range tc.contains {
				if !strings.Contains(e.Message, s) {
					t.Errorf("message %q lacks %q", e.Message, s)
				}
			}
			if !errors.Is(err, tc.err) {
				t.Error("the cause must stay wrapped")
			}
		})
	}
}

func TestClassifyAssumeRole(t *testing.T) {
	c := opContext{account: "acme", roleARN: "arn:aws:iam::123456789012:role/kms-AccessDenied"}
	cases := map[string]struct {
		err  error
		kind failure.Kind
	}{
		"denied":         {apiErr(403, "AccessDenied", "not authorized to perform: sts:AssumeRole"), failure.KindAssumeRoleDenied},
		"bad identity":   {apiErr(403, "InvalidClientTokenId", "The security token included in the request is invalid"), failure.KindPlatformIdentity},
		"malformed arn":  {apiErr(400, "ValidationError", "1 validation error detected: Value at 'roleArn' failed to satisfy constraint"), failure.KindAssumeRoleDenied},
		"throttling":     {apiErr(400, "Throttling", "Rate exceeded"), failure.KindTransient},
		"5xx":            {statusErr(503), failure.KindTransient},
		"5xx denied":     {apiErr(500, "AccessDenied", "?"), failure.KindTransient},
		"network":        {netErr(), failure.KindTransient},
		"validation":     {apiErr(400, "ValidationError", "something else"), failure.KindTransient},
		"expired (ours)": {apiErr(400, "ExpiredToken", "The security token included in the request is expired"), failure.KindTransient},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			e, ok := AsError(classifyAssumeRole(tc.err, c))
			if !ok || e.Kind != tc.kind {
				t.Fatalf("got %+v, want %s", e, tc.kind)
			}
			if tc.kind == failure.KindAssumeRoleDenied && !strings.Contains(e.Message, c.roleARN) {
				t.Errorf("message %q lacks the role", e.Message)
			}
		})
	}
	e, _ := AsError(classifyAssumeRole(apiErr(403, "AccessDenied", "not authorized"), c))
	if !strings.Contains(e.Message, `sts:ExternalId must equal "acme"`) || e.Class() != failure.Parkable {
		t.Errorf("assume denied: %+v", e)
	}
}

func TestSessionNameAndPartSize(t *testing.T) {
	c := New(aws.Config{Region: "eu-west-1"}, Settings{})
	if got := c.sessionName("acme corp/eu"); got != "dreamdata-export-acme-corp-eu" {
		t.Errorf("session name %q", got)
	}
	if got := c.sessionName(strings.Repeat("a", 100)); len(got) != 64 {
		t.Errorf("session name must be cut to 64 characters, got %d", len(got))
	}
	for _, size := range []int64{0, 5 << 20, 256 << 20, 10 << 30, 400 << 30, 5 << 40} {
		p := PartSizeFor(size)
		if p < MinPartSize || p > MaxPartSize || (size+p-1)/p > MaxParts {
			t.Errorf("size %d: part %d gives %d parts", size, p, size/p)
		}
		if size <= 400<<30 && size/p > MaxParts/10 {
			t.Errorf("size %d: part %d leaves no room (%d parts)", size, p, size/p)
		}
	}
	for _, tc := range []struct{ asked, size, want int64 }{
		{0, 40 << 20, 16 << 20},
		{1 << 20, 40 << 20, MinPartSize},   // below S3's minimum
		{10 << 30, 40 << 30, MaxPartSize},  // above S3's maximum
		{MinPartSize, 100 << 30, 11 << 20}, // 10000 parts of 5 MiB cannot hold 100 GiB
		{MinPartSize, -1, MinPartSize},     // unknown size
		{0, -1, 16 << 20},                  // unknown size, default
		{8 << 20, 8<<20 + 1, 8 << 20},      // two parts
		{MinPartSize, MaxParts * MinPartSize, MinPartSize},
	} {
		if got := partSizeOf(tc.asked, tc.size, MinPartSize); got != tc.want {
			t.Errorf("partSizeOf(%d, %d) = %d, want %d", tc.asked, tc.size, got, tc.want)
		}
	}
}
