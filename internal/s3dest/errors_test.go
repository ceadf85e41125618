package s3dest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go"
)

func apiErr(code, msg string) error {
	// Wrapped the way the SDK wraps service errors.
	return fmt.Errorf("operation error S3: PutObject, https response error StatusCode: 403: %w",
		&smithy.GenericAPIError{Code: code, Message: msg})
}

func TestClassifyPut(t *testing.T) {
	c := opContext{account: "acme", bucket: "acme-data", key: "p/x.parquet.gz", kmsKey: "arn:aws:kms:eu-west-1:123456789012:key/k"}
	cases := map[string]struct {
		err      error
		kind     Kind
		contains []string
	}{
		"access denied":    {apiErr("AccessDenied", "Access Denied"), KindPutDenied, []string{"s3:PutObject", "s3:PutObjectAcl", "arn:aws:s3:::acme-data/*"}},
		"no such bucket":   {apiErr("NoSuchBucket", "The specified bucket does not exist"), KindBucketNotFound, []string{`"acme-data"`, "not the ARN"}},
		"kms denied (AWS)": {apiErr("AccessDenied", "User: arn:aws:sts::1:assumed-role/r/s is not authorized to perform: kms:GenerateDataKey on resource"), KindKMSDenied, []string{"kms:GenerateDataKey", "kms:Decrypt", "key/k"}},
		"kms not found":    {apiErr("KMS.NotFoundException", "Invalid keyId"), KindKMSDenied, []string{"kms_key_arn"}},
		"wrong region":     {apiErr("PermanentRedirect", "The bucket you are attempting to access must be addressed using the specified endpoint"), KindWrongRegion, []string{"region"}},
		"slow down":        {apiErr("SlowDown", "Please reduce your request rate"), KindTransient, nil},
		"internal error":   {apiErr("InternalError", "We encountered an internal error"), KindTransient, nil},
		"kms throttled":    {apiErr("KMS.ThrottlingException", "Rate exceeded"), KindTransient, nil},
		"network reset":    {errors.New("read tcp: connection reset by peer"), KindTransient, nil},
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
			if e.Permanent() != (tc.kind != KindTransient) {
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
	c := opContext{account: "acme", roleARN: "arn:aws:iam::123456789012:role/r"}
	e, _ := AsError(classifyAssumeRole(apiErr("AccessDenied", "not authorized to perform: sts:AssumeRole"), c))
	if e.Kind != KindAssumeRoleDenied || !strings.Contains(e.Message, `sts:ExternalId must equal "acme"`) || !strings.Contains(e.Message, c.roleARN) {
		t.Errorf("assume denied: %+v", e)
	}
	e, _ = AsError(classifyAssumeRole(apiErr("InvalidClientTokenId", "The security token included in the request is invalid"), c))
	if e.Kind != KindPlatformIdentity {
		t.Errorf("bad platform credentials: %+v", e)
	}
	e, _ = AsError(classifyAssumeRole(apiErr("Throttling", "Rate exceeded"), c))
	if e.Kind != KindTransient {
		t.Errorf("throttling must retry: %+v", e)
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
	for _, size := range []int64{0, 5 << 20, 256 << 20, 10 << 30, 400 << 30} {
		p := PartSizeFor(size)
		if p < MinPartSize || size/p > int64(MaxParts)/10 {
			t.Errorf("size %d: part %d gives %d parts", size, p, size/p)
		}
	}
}
