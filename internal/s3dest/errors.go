package s3dest

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/dreamdata/destination-aws-s3/internal/failure"
	"github.com/dreamdata/destination-aws-s3/internal/policy"
)

// AsError is failure.As, kept for callers of this package: every failure this package names
// is a *failure.Error.
func AsError(err error) (*failure.Error, bool) { return failure.As(err) }

type opContext struct {
	account, roleARN, bucket, prefix, key, region, kmsKey string
}

// answer is what a server said about a failed request: the API error code and message it
// wrote, and the HTTP status. A failure that never got an answer (a reset, a timeout, a DNS
// error, a truncated body) has none of them. Classification reads only these, never the
// text of err, which carries the request URL and so the customer's bucket and key names.
type answer struct {
	code, message string
	status        int
}

func answerOf(err error) answer {
	var a answer
	var ae smithy.APIError
	if errors.As(err, &ae) {
		a.code, a.message = ae.ErrorCode(), ae.ErrorMessage()
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		a.status = re.HTTPStatusCode()
	}
	return a
}

// transient reports an answer that retrying fixes: a server error, throttling, or a code S3,
// STS or KMS use for a passing condition.
func (a answer) transient() bool {
	if a.status >= 500 || a.status == http.StatusTooManyRequests {
		return true
	}
	switch a.code {
	case "SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout", "RequestTimeTooSkewed",
		"KMS.ThrottlingException", "KMS.KMSInternalException", "KMS.DependencyTimeoutException",
		"IDPCommunicationError",
		// The bytes S3 received differ from their checksum (MinIO says
		// XAmzContentChecksumMismatch): sent again, they arrive whole.
		"BadDigest", "InvalidDigest", "XAmzContentChecksumMismatch":
		return true
	}
	if _, ok := retry.DefaultThrottleErrorCodes[a.code]; ok {
		return true
	}
	_, ok := retry.DefaultRetryableErrorCodes[a.code]
	return ok
}

// kmsAction finds, in an API error message, the KMS action a policy refused, as AWS writes it:
// "... is not authorized to perform: kms:GenerateDataKey on resource: ...". Bucket names cannot
// hold a colon, so "acme-kms-exports" never matches.
var kmsAction = regexp.MustCompile(`(?i)\bkms:(GenerateDataKey\w*|Decrypt|Encrypt|ReEncrypt\w*|DescribeKey|CreateGrant)\b`)

// kmsRefusal reports an answer that names the KMS key as the cause: S3 relays KMS's own error
// codes as "KMS.<code>" (KMS.NotFoundException, KMS.DisabledException,
// KMS.KMSInvalidStateException, KMS.AccessDeniedException, KMS.InvalidKeyUsageException...),
// MinIO answers "kms:<code>" (kms:KeyNotFound for an unknown key, kms:NotAuthorized), and an
// IAM refusal of a kms: action comes as AccessDenied whose message names the action.
func (a answer) kmsRefusal() bool {
	code := strings.ToLower(a.code)
	switch {
	case strings.HasPrefix(code, "kms.") || strings.HasPrefix(code, "kms:") || code == "kmsaccessdenied" || code == "kmsaccessdeniedexception":
		return true
	case a.code == "AccessDenied" || a.code == "AccessDeniedException":
		return kmsAction.MatchString(a.message)
	}
	return false
}

// staleCredentials reports an answer S3 gives for temporary credentials it no longer
// accepts: fresh ones from STS fix it.
func (a answer) staleCredentials() bool {
	switch a.code {
	case "ExpiredToken", "ExpiredTokenException", "InvalidToken", "InvalidAccessKeyId", "TokenRefreshRequired":
		return true
	}
	return false
}

// classifyAssumeRole explains an AssumeRole failure.
func classifyAssumeRole(err error, c opContext) error {
	a := answerOf(err)
	switch {
	case a.code == "" && a.status == 0, a.transient():
		// No answer (a reset, a timeout), or STS is down or throttling: the SDK has already
		// retried for minutes (stsMaxAttempts); the activity retries on.
	case a.code == "AccessDenied" || a.code == "AccessDeniedException":
		return failure.New(failure.KindAssumeRoleDenied, err,
			"assuming the customer's role %s was denied: in the role's trust policy the Principal must be the platform's exporter role and the condition sts:ExternalId must equal %q (the account id); also check the role ARN in the account settings", c.roleARN, c.account)
	case a.code == "InvalidClientTokenId" || a.code == "SignatureDoesNotMatch" || a.code == "InvalidAccessKeyId" || a.code == "UnrecognizedClientException":
		return failure.New(failure.KindPlatformIdentity, err,
			"STS rejected the platform's own AWS credentials: fix the worker's AWS credential chain (environment, profile or instance role)")
	case a.code == "ValidationError" && strings.Contains(strings.ToLower(a.message), "rolearn"):
		return failure.New(failure.KindAssumeRoleDenied, err,
			"STS refused the role ARN %s as malformed: correct role_arn in the account settings", c.roleARN)
	}
	return failure.New(failure.KindTransient, err, "assuming role %s failed", c.roleARN)
}

// objectResource is the ARN pattern the role must be allowed to write (as `starter policy`
// prints it): the account's prefix, or the whole bucket for an account without one.
func (c opContext) objectResource() string {
	partition := "aws"
	if parts := strings.SplitN(c.roleARN, ":", 3); len(parts) == 3 && strings.HasPrefix(c.roleARN, "arn:") && parts[1] != "" {
		partition = parts[1]
	}
	return policy.ObjectResource(partition, c.bucket, c.prefix)
}

// classifyPut explains a failed write: PutObject or one of the multipart calls.
func classifyPut(err error, c opContext) error {
	a := answerOf(err)
	where := fmt.Sprintf("s3://%s/%s", c.bucket, c.key)
	switch {
	case a.code == "" && a.status == 0:
		// No answer at all: a reset, a timeout, a truncated body, DNS. Never a misconfiguration
		// we could name; the text of such errors is not read (it holds the URL).
	case a.transient():
	case a.kmsRefusal():
		return failure.New(failure.KindKMSDenied, err,
			"writing %s failed on the KMS key %s: the customer's role needs kms:GenerateDataKey and kms:Decrypt on that key (and the key policy must allow the role); check kms_key_arn in the account settings", where, orDefault(c.kmsKey, "(bucket default key)"))
	case a.code == "NoSuchBucket" || (a.code == "" && a.status == http.StatusNotFound):
		// A 404 without a body is what S3 gives when it cannot even name the bucket.
		return failure.New(failure.KindBucketNotFound, err,
			"bucket %q does not exist: check the bucket name in the account settings (the name, not the ARN)", c.bucket)
	case a.code == "AccessDenied" || a.code == "AllAccessDisabled" || a.code == "AccountProblem":
		return failure.New(failure.KindPutDenied, err,
			"writing %s was denied: the role's permission policy must allow s3:PutObject and s3:PutObjectAcl on %s; also check the bucket policy and any SCP for an explicit deny, and that the bucket name is right", where, c.objectResource())
	case a.code == "PermanentRedirect" || a.code == "AuthorizationHeaderMalformed" || a.code == "IllegalLocationConstraintException":
		return failure.New(failure.KindWrongRegion, err,
			"bucket %q is not in region %s: set the bucket's region in the account settings", c.bucket, orDefault(c.region, "(worker default)"))
	case a.staleCredentials():
		// Put has already fetched fresh credentials and tried again once.
		return failure.New(failure.KindTransient, err, "writing %s failed: S3 refused the role's temporary credentials, also fresh ones", where)
	}
	return failure.New(failure.KindTransient, err, "writing %s failed", where)
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
