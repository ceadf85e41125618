// Package accesscheck checks, before any dump runs, that a customer's AWS setup lets the
// exporter deliver: that the role's trust policy insists on the ExternalId, that the
// platform can assume the role with it, and that an object can be written under the account's
// prefix the way dumps are written (bucket-owner-full-control ACL, SSE-KMS when configured).
//
// It uses only what the customer grants: STS AssumeRole and S3 PutObject. The test object is
// written and left; it is never read, listed or deleted (the role may not, by design).
package accesscheck

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/smithy-go"

	"github.com/dreamdata/destination-aws-s3/internal/config"
	"github.com/dreamdata/destination-aws-s3/internal/failure"
	"github.com/dreamdata/destination-aws-s3/internal/policy"
	"github.com/dreamdata/destination-aws-s3/internal/s3dest"
)

// Status of one check.
type Status string

// Statuses, in increasing severity.
const (
	OK      Status = "ok"
	Warn    Status = "warn"
	Skipped Status = "skipped"
	Fail    Status = "fail"
)

// Names of the checks (stable: scripts read them from the JSON report).
const (
	CheckExternalIDRequired = "trust-policy-requires-external-id"
	CheckAssumeRole         = "assume-role-with-external-id"
	CheckPutObject          = "put-test-object"
)

// CheckFolder is the folder under the account's prefix that test objects go to.
const CheckFolder = "_destination_check"

// PerCheckTimeout bounds each network check, so a black-holed endpoint fails the check
// instead of hanging the command.
const PerCheckTimeout = 30 * time.Second

// Check is one line of the report.
type Check struct {
	Name  string `json:"name"`
	Title string `json:"title"`
	// Required checks must pass for dumps to work; the others flag risks.
	Required bool   `json:"required"`
	Status   Status `json:"status"`
	// Message says what was found and, unless the check passed, what to fix.
	Message string `json:"message"`
	// Kind is the error classification when the check failed (e.g. PutObjectDenied), the
	// same type a failed dump would carry.
	Kind string `json:"kind,omitempty"`
}

// Report is the outcome of Run.
type Report struct {
	Account    string    `json:"account"`
	RoleARN    string    `json:"role_arn"`
	ExternalID string    `json:"external_id"`
	Bucket     string    `json:"bucket"`
	Prefix     string    `json:"prefix,omitempty"`
	Region     string    `json:"region,omitempty"`
	KMSKey     string    `json:"kms_key,omitempty"`
	TestObject string    `json:"test_object_key"`
	CheckedAt  time.Time `json:"checked_at"`
	Checks     []Check   `json:"checks"`
	// OK is true when every required check passed.
	OK       bool `json:"ok"`
	Warnings int  `json:"warnings"`
}

// Prober is the part of *s3dest.Client the checks use.
type Prober interface {
	ProbeAssumeRoleWithoutExternalID(ctx context.Context, t s3dest.Target) error
	CheckAccess(ctx context.Context, t s3dest.Target) error
	Writer(t s3dest.Target) s3dest.Writer
}

// TestObjectKey is where the check writes: <prefix>/_destination_check/<UTC timestamp>.txt.
// A new key each time, so it never overwrites anything, and outside any dump folder, so no
// loader mistakes it for data.
func TestObjectKey(prefix string, now time.Time) string {
	k := CheckFolder + "/" + now.UTC().Format("20060102T150405.000Z") + ".txt"
	if prefix == "" {
		return k
	}
	return prefix + "/" + k
}

// Run performs the checks for one account, in order; the write is tried only once the role
// can be assumed.
func Run(ctx context.Context, p Prober, acc config.Account, now time.Time) Report {
	t := s3dest.Target{AccountID: acc.ID, RoleARN: acc.RoleARN, Bucket: acc.Bucket, Prefix: acc.Prefix, Region: acc.Region, KMSKeyID: acc.KMSKeyARN}
	r := Report{Account: acc.ID, RoleARN: acc.RoleARN, ExternalID: acc.ID, Bucket: acc.Bucket, Prefix: acc.Prefix,
		Region: acc.Region, KMSKey: acc.KMSKeyARN, TestObject: TestObjectKey(acc.Prefix, now), CheckedAt: now.UTC()}

	withTimeout := func(f func(context.Context) error) error {
		cctx, cancel := context.WithTimeout(ctx, PerCheckTimeout)
		defer cancel()
		return f(cctx)
	}

	// (a) Without ExternalId the role must be refused.
	a := Check{Name: CheckExternalIDRequired, Title: "trust policy requires sts:ExternalId (confused-deputy guard)"}
	err := withTimeout(func(c context.Context) error { return p.ProbeAssumeRoleWithoutExternalID(c, t) })
	e, classified := failure.As(err)
	switch {
	case err == nil:
		a.Status = Warn
		a.Message = fmt.Sprintf("WARNING: STS let the platform assume %s WITHOUT an ExternalId: the role's trust policy lacks the condition "+
			`"StringEquals": {"sts:ExternalId": %q}. Without it, anyone who gets the platform to assume roles (for example another `+
			"customer who enters this role ARN as theirs) can have data written into this bucket: the confused-deputy problem. "+
			"Fix: add the condition to the trust policy (`starter policy %s` prints it)", acc.RoleARN, acc.ID, acc.ID)
	case classified && e.Kind == failure.KindAssumeRoleDenied:
		a.Status = OK
		a.Message = "assuming the role without an ExternalId was denied, as it must be"
	case classified && e.Kind == failure.KindPlatformIdentity:
		a.Status, a.Kind = Fail, string(e.Kind)
		a.Message = e.Error()
	default:
		a.Status = Warn
		a.Message = "could not tell whether the trust policy requires the ExternalId: " + errText(err)
	}

	// (b) With ExternalId = account id the role must be granted.
	b := Check{Name: CheckAssumeRole, Title: fmt.Sprintf("assume the role with ExternalId %q", acc.ID), Required: true}
	if err := withTimeout(func(c context.Context) error { return p.CheckAccess(c, t) }); err != nil {
		b.Status, b.Kind, b.Message = Fail, kindOf(err), errText(err)+credentialHint(err)
		if a.Status == OK {
			// A refusal proves nothing about the ExternalId condition when the role is
			// refused with it too.
			a.Status = Skipped
			a.Message = "inconclusive: the role was refused without an ExternalId, but also with it (see the next check)"
		}
	} else {
		b.Status = OK
		b.Message = fmt.Sprintf("assumed %s with ExternalId %q", acc.RoleARN, acc.ID)
	}
	r.Checks = append(r.Checks, a, b)

	// (c) Write a small object the way dumps are written.
	c := Check{Name: CheckPutObject, Title: "write a test object under the prefix", Required: true}
	where := fmt.Sprintf("s3://%s/%s", acc.Bucket, r.TestObject)
	if b.Status != OK {
		c.Status = Skipped
		c.Message = fmt.Sprintf("not tried: writing needs the role (%s)", CheckAssumeRole)
	} else {
		body := fmt.Sprintf("Written by Dreamdata's destination check for account %s at %s.\n"+
			"It shows that dumps can be delivered here. It is harmless: delete it or let the lifecycle rule expire it.\n",
			acc.ID, now.UTC().Format(time.RFC3339))
		err := withTimeout(func(ctx context.Context) error {
			_, err := p.Writer(t).Put(ctx, s3dest.Object{Key: r.TestObject, Body: bytes.NewReader([]byte(body)),
				Size: int64(len(body)), ContentType: "text/plain; charset=utf-8"})
			return err
		})
		if err != nil {
			c.Status, c.Kind, c.Message = Fail, kindOf(err), errText(err)
			switch c.Kind {
			case string(failure.KindPutDenied):
				c.Message += fmt.Sprintf(" [for this account the resource is %s; `starter policy %s` prints the exact policies to paste]", policy.AccountResource(acc), acc.ID)
			case string(failure.KindKMSDenied):
				c.Message += fmt.Sprintf(" [`starter policy %s` prints the exact policies to paste]", acc.ID)
			}
		} else {
			c.Status = OK
			enc := "bucket default encryption"
			if acc.KMSKeyARN != "" {
				enc = "SSE-KMS with key " + acc.KMSKeyARN
			}
			c.Message = fmt.Sprintf("wrote %s (%d bytes) with ACL bucket-owner-full-control and %s; the object is harmless and never read, listed or deleted by us", where, len(body), enc)
		}
	}
	r.Checks = append(r.Checks, c)

	r.OK = true
	for _, ch := range r.Checks {
		if ch.Required && ch.Status != OK {
			r.OK = false
		}
		if ch.Status == Warn {
			r.Warnings++
		}
	}
	return r
}

// credentialHint recognises, in the message of an STS refusal, the words STS servers use for
// the caller's own bad credentials (some, MinIO among them, label it AccessDenied), so the
// operator looks at the platform's identity instead of the customer's trust policy. It reads
// the server's message only, never the error's whole text, which names the role.
func credentialHint(err error) string {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return ""
	}
	msg := strings.ToLower(ae.ErrorMessage())
	for _, s := range []string{"signature we calculated does not match", "security token included in the request is invalid", "access key id you provided does not exist"} {
		if strings.Contains(msg, s) {
			return " [hint: STS rejected the request's signature or key: the platform's own AWS credentials are probably wrong; fix the AWS credential chain of this command (environment, profile or instance role) before suspecting the customer's trust policy]"
		}
	}
	return ""
}

func kindOf(err error) string {
	if e, ok := failure.As(err); ok {
		return string(e.Kind)
	}
	return ""
}

// errText is the operator-facing text of an error: classified errors carry the cause and the fix.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// WriteText prints the report for a person.
func (r Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Destination check for account %s\n", r.Account)
	fmt.Fprintf(&b, "  role    %s (ExternalId %q)\n", r.RoleARN, r.ExternalID)
	dest := "s3://" + r.Bucket + "/"
	if r.Prefix != "" {
		dest += r.Prefix + "/"
	}
	fmt.Fprintf(&b, "  bucket  %s", dest)
	if r.Region != "" {
		fmt.Fprintf(&b, " (region %s)", r.Region)
	}
	if r.KMSKey != "" {
		fmt.Fprintf(&b, ", SSE-KMS key %s", r.KMSKey)
	}
	b.WriteString("\n\n")
	for _, c := range r.Checks {
		req := ""
		if !c.Required {
			req = " [advisory]"
		}
		fmt.Fprintf(&b, "%-7s %s%s\n", strings.ToUpper(string(c.Status)), c.Title, req)
		fmt.Fprintf(&b, "        %s\n", c.Message)
	}
	b.WriteString("\n")
	switch {
	case !r.OK:
		b.WriteString("Result: FAIL: dumps of this account cannot be delivered until the failed checks are fixed.\n")
	case r.Warnings > 0:
		if r.Warnings == 1 {
			b.WriteString("Result: PASS with 1 warning: dumps can be delivered, but fix the warning above.\n")
		} else {
			fmt.Fprintf(&b, "Result: PASS with %d warnings: dumps can be delivered, but fix the warnings above.\n", r.Warnings)
		}
	default:
		b.WriteString("Result: PASS: dumps of this account can be delivered.\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON prints the report for a machine.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
