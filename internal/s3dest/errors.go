package s3dest

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Kind classifies a failure talking to STS or S3. Every kind but KindTransient is a
// misconfiguration that retrying cannot fix: a person has to change a policy or a setting.
type Kind string

// The kinds are stable strings: they become Temporal ApplicationError types, metric labels
// and NonRetryableErrorTypes entries.
const (
	KindTransient        Kind = "Transient"
	KindAssumeRoleDenied Kind = "AssumeRoleDenied"
	KindPlatformIdentity Kind = "PlatformIdentityRejected"
	KindBucketNotFound   Kind = "BucketNotFound"
	KindPutDenied        Kind = "PutObjectDenied"
	KindKMSDenied        Kind = "KMSDenied"
	KindWrongRegion      Kind = "BucketInOtherRegion"
)

// PermanentKinds lists the kinds that must not be retried.
var PermanentKinds = []Kind{KindAssumeRoleDenied, KindPlatformIdentity, KindBucketNotFound, KindPutDenied, KindKMSDenied, KindWrongRegion}

// Error is a classified STS/S3 failure. Message is written for the operator or the customer:
// what failed and what to change. It never contains credentials: AWS error messages name
// principals and resources, never keys or tokens.
type Error struct {
	Kind    Kind
	Message string
	Err     error
}

func (e *Error) Error() string { return e.Message + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Permanent reports whether retrying cannot help.
func (e *Error) Permanent() bool { return e.Kind != KindTransient }

// AsError returns the classified error inside err, if any.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

type opContext struct {
	account, roleARN, bucket, key, region, kmsKey string
}

// classifyAssumeRole explains an AssumeRole failure.
func classifyAssumeRole(err error, c opContext) error {
	code, msg := apiError(err)
	switch {
	case code == "AccessDenied" || code == "AccessDeniedException":
		return &Error{Kind: KindAssumeRoleDenied, Err: err, Message: fmt.Sprintf(
			"assuming the customer's role %s was denied: in the role's trust policy the Principal must be the platform's exporter role and the condition sts:ExternalId must equal %q (the account id); also check the role ARN in the account settings", c.roleARN, c.account)}
	case code == "InvalidClientTokenId" || code == "SignatureDoesNotMatch" || code == "InvalidAccessKeyId" || code == "UnrecognizedClientException":
		return &Error{Kind: KindPlatformIdentity, Err: err, Message: "STS rejected the platform's own AWS credentials: fix the worker's AWS credential chain (environment, profile or instance role)"}
	case code == "ValidationError" && strings.Contains(strings.ToLower(msg), "rolearn"):
		return &Error{Kind: KindAssumeRoleDenied, Err: err, Message: fmt.Sprintf("STS refused the role ARN %s as malformed: correct role_arn in the account settings", c.roleARN)}
	}
	return &Error{Kind: KindTransient, Err: err, Message: fmt.Sprintf("assuming role %s failed", c.roleARN)}
}

// classifyPut explains a PutObject failure.
func classifyPut(err error, c opContext) error {
	code, msg := apiError(err)
	lower := strings.ToLower(msg + " " + code)
	where := fmt.Sprintf("s3://%s/%s", c.bucket, c.key)
	switch {
	case strings.Contains(lower, "kms"):
		if isRetryableCode(code) {
			break
		}
		return &Error{Kind: KindKMSDenied, Err: err, Message: fmt.Sprintf(
			"writing %s failed on the KMS key %s: the customer's role needs kms:GenerateDataKey and kms:Decrypt on that key (and the key policy must allow the role); check kms_key_arn in the account settings", where, orDefault(c.kmsKey, "(bucket default key)"))}
	case code == "NoSuchBucket":
		return &Error{Kind: KindBucketNotFound, Err: err, Message: fmt.Sprintf(
			"bucket %q does not exist: check the bucket name in the account settings (the name, not the ARN)", c.bucket)}
	case code == "AccessDenied" || code == "AllAccessDisabled" || code == "AccountProblem":
		return &Error{Kind: KindPutDenied, Err: err, Message: fmt.Sprintf(
			"writing %s was denied: the role's permission policy must allow s3:PutObject and s3:PutObjectAcl on arn:aws:s3:::%s/*; also check the bucket policy and any SCP for an explicit deny, and that the bucket name is right", where, c.bucket)}
	case code == "PermanentRedirect" || code == "AuthorizationHeaderMalformed" || code == "IllegalLocationConstraintException":
		return &Error{Kind: KindWrongRegion, Err: err, Message: fmt.Sprintf(
			"bucket %q is not in region %s: set the bucket's region in the account settings", c.bucket, orDefault(c.region, "(worker default)"))}
	case code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch":
		// Temporary credentials that S3 does not know are usually stale: retry with fresh ones.
	}
	return &Error{Kind: KindTransient, Err: err, Message: fmt.Sprintf("writing %s failed", where)}
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func apiError(err error) (code, msg string) {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode(), ae.ErrorMessage()
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound {
		return "NoSuchBucket", ""
	}
	return "", err.Error()
}

func isRetryableCode(code string) bool {
	switch code {
	case "KMS.ThrottlingException", "KMS.KMSInternalException", "SlowDown", "InternalError", "ServiceUnavailable":
		return true
	}
	_, ok := retry.DefaultThrottleErrorCodes[code]
	return ok
}
