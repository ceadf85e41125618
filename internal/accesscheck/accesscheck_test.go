package accesscheck

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go"

	"github.com/dreamdata/destination-aws-s3/internal/config"
	"github.com/dreamdata/destination-aws-s3/internal/failure"
	"github.com/dreamdata/destination-aws-s3/internal/s3dest"
)

// fakeProber answers like s3dest.Client would, from canned errors, and records the writes.
type fakeProber struct {
	noExternalID, withExternalID, put error
	puts                              []s3dest.Object
	bodies                            []string
}

func (f *fakeProber) ProbeAssumeRoleWithoutExternalID(context.Context, s3dest.Target) error {
	return f.noExternalID
}
func (f *fakeProber) CheckAccess(context.Context, s3dest.Target) error { return f.withExternalID }
func (f *fakeProber) Writer(s3dest.Target) s3dest.Writer               { return fakeWriter{f} }

type fakeWriter struct{ f *fakeProber }

func (w fakeWriter) Put(_ context.Context, o s3dest.Object) (s3dest.PutResult, error) {
	b, _ := io.ReadAll(o.Body)
	w.f.puts = append(w.f.puts, o)
	w.f.bodies = append(w.f.bodies, string(b))
	return s3dest.PutResult{}, w.f.put
}

var (
	denied      = failure.New(failure.KindAssumeRoleDenied, errors.New("AccessDenied"), "assuming the customer's role was denied: fix the trust policy")
	badIdentity = failure.New(failure.KindPlatformIdentity, errors.New("InvalidClientTokenId"), "STS rejected the platform's own AWS credentials")
	sigDenied   = failure.New(failure.KindAssumeRoleDenied, &smithy.GenericAPIError{Code: "AccessDenied", Message: "The request signature we calculated does not match the signature you provided."}, "assuming the customer's role was denied")
	// The role's name holds the words of a bad signature: only the server's message counts.
	trickyDenied = failure.New(failure.KindAssumeRoleDenied, fmt.Errorf("role arn:aws:iam::1:role/signature-we-calculated-does-not-match: %w", &smithy.GenericAPIError{Code: "AccessDenied", Message: "not authorized to perform: sts:AssumeRole"}), "assuming the customer's role was denied")
	putDenied    = failure.New(failure.KindPutDenied, &smithy.GenericAPIError{Code: "AccessDenied"}, "writing was denied: the role's permission policy must allow s3:PutObject")
)

var now = time.Date(2024, 5, 1, 9, 30, 12, 345e6, time.UTC)

func acc() config.Account {
	return config.Account{ID: "acme", Bucket: "acme-data", RoleARN: "arn:aws:iam::123456789012:role/r", Prefix: "exports", KMSKeyARN: "arn:aws:kms:eu-west-1:123456789012:key/k"}
}

func statuses(r Report) string {
	var s []string
	for _, c := range r.Checks {
		s = append(s, string(c.Status))
	}
	return strings.Join(s, ",")
}

func TestRun(t *testing.T) {
	cases := map[string]struct {
		p        fakeProber
		want     string
		ok       bool
		warnings int
		contains []string
	}{
		"all good":            {fakeProber{noExternalID: denied}, "ok,ok,ok", true, 0, []string{"Result: PASS: dumps"}},
		"no external id":      {fakeProber{}, "warn,ok,ok", true, 1, []string{"WITHOUT an ExternalId", `"sts:ExternalId": "acme"`, "confused-deputy", "starter policy acme", "PASS with 1 warning"}},
		"role denied":         {fakeProber{noExternalID: denied, withExternalID: denied}, "skipped,fail,skipped", false, 0, []string{"inconclusive", "fix the trust policy", "not tried", "Result: FAIL"}},
		"bad signature":       {fakeProber{noExternalID: denied, withExternalID: sigDenied}, "skipped,fail,skipped", false, 0, []string{"platform's own AWS credentials are probably wrong"}},
		"trust policy":        {fakeProber{noExternalID: denied, withExternalID: trickyDenied}, "skipped,fail,skipped", false, 0, []string{"Result: FAIL"}},
		"put denied":          {fakeProber{noExternalID: denied, put: putDenied}, "ok,ok,fail", false, 0, []string{"s3:PutObject", "for this account the resource is arn:aws:s3:::acme-data/exports/*", "`starter policy acme` prints the exact policies", "Result: FAIL"}},
		"platform identity":   {fakeProber{noExternalID: badIdentity, withExternalID: badIdentity}, "fail,fail,skipped", false, 0, []string{"platform's own AWS credentials"}},
		"sts unreachable (a)": {fakeProber{noExternalID: errors.New("dial tcp: i/o timeout")}, "warn,ok,ok", true, 1, []string{"could not tell"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := tc.p
			r := Run(context.Background(), &p, acc(), now)
			if got := statuses(r); got != tc.want {
				t.Errorf("statuses %s, want %s", got, tc.want)
			}
			if r.OK != tc.ok || r.Warnings != tc.warnings {
				t.Errorf("ok=%v warnings=%d, want %v %d", r.OK, r.Warnings, tc.ok, tc.warnings)
			}
			var text bytes.Buffer
			if err := r.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			for _, s := range tc.contains {
				if !strings.Contains(text.String(), s) {
					t.Errorf("report lacks %q:\n%s", s, text.String())
				}
			}
			var js bytes.Buffer
			if err := r.WriteJSON(&js); err != nil {
				t.Fatal(err)
			}
			var back Report
			if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.OK != r.OK || len(back.Checks) != 3 {
				t.Errorf("JSON report: %v\n%s", err, js.String())
			}
			if strings.HasSuffix(tc.want, "fail,skipped") && len(p.puts) != 0 {
				t.Error("wrote although the role could not be assumed")
			}
		})
	}
}

func TestTestObject(t *testing.T) {
	p := &fakeProber{noExternalID: denied}
	r := Run(context.Background(), p, acc(), now)
	if len(p.puts) != 1 {
		t.Fatalf("%d writes", len(p.puts))
	}
	o := p.puts[0]
	if o.Key != "exports/_destination_check/20240501T093012.345Z.txt" || o.Key != r.TestObject {
		t.Errorf("key %q (report %q)", o.Key, r.TestObject)
	}
	if o.Size != int64(len(p.bodies[0])) || !strings.Contains(p.bodies[0], "harmless") {
		t.Errorf("body %q size %d", p.bodies[0], o.Size)
	}
	if got := TestObjectKey("", now); got != "_destination_check/20240501T093012.345Z.txt" {
		t.Errorf("without prefix: %q", got)
	}
	msg := r.Checks[2].Message
	for _, s := range []string{"bucket-owner-full-control", "SSE-KMS with key arn:aws:kms", "s3://acme-data/exports/_destination_check/"} {
		if !strings.Contains(msg, s) {
			t.Errorf("put message %q lacks %q", msg, s)
		}
	}
	if r.Checks[1].Kind != "" || !r.Checks[1].Required || r.Checks[0].Required {
		t.Errorf("checks %+v", r.Checks)
	}
}

func TestFailureKindsAreReported(t *testing.T) {
	p := &fakeProber{noExternalID: denied, put: fmt.Errorf("wrapped: %w", putDenied)}
	r := Run(context.Background(), p, acc(), now)
	if r.Checks[2].Kind != string(failure.KindPutDenied) {
		t.Errorf("kind %q", r.Checks[2].Kind)
	}
}

func TestCredentialHintReadsOnlyTheServerMessage(t *testing.T) {
	if credentialHint(sigDenied) == "" {
		t.Error("a bad signature must point at the platform's credentials")
	}
	if h := credentialHint(trickyDenied); h != "" {
		t.Errorf("the role's name gave a hint: %s", h)
	}
	if h := credentialHint(errors.New("the request signature we calculated does not match")); h != "" {
		t.Errorf("text without an API error gave a hint: %s", h)
	}
}
