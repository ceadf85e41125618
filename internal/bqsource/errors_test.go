package bqsource

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/googleapis/gax-go/v2/apierror"
	"google.golang.org/api/googleapi"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/dreamdata/destination-aws-s3/internal/failure"
)

func restError(code int, reasons ...string) *googleapi.Error {
	e := &googleapi.Error{Code: code, Message: "user-name-bearing text that must not matter"}
	for _, r := range reasons {
		e.Errors = append(e.Errors, googleapi.ErrorItem{Reason: r, Message: "whatever"})
	}
	return e
}

func asAPIError(t *testing.T, err error) error {
	t.Helper()
	ae, ok := apierror.FromError(err)
	if !ok {
		t.Fatalf("apierror.FromError(%v) failed", err)
	}
	return ae
}

// TestClassifyTableErrors: errors of Metadata (REST) and CreateReadSession (gRPC), bare,
// wrapped as the clients wrap them, get the kind of their code and reasons; the message names
// the table and the original error stays in the chain.
func TestClassifyTableErrors(t *testing.T) {
	ref := TableRef{Project: "proj", Dataset: "ds", Table: "events"}
	cases := []struct {
		name string
		err  error
		kind failure.Kind // KindTransient: not classified
		says string       // a phrase the message must hold
	}{
		{"REST 404", restError(404, "notFound"), failure.KindTableNotFound, "does not exist"},
		{"REST 404 after retries", fmt.Errorf("retry failed with context deadline exceeded; last error: %w", restError(404, "notFound")), failure.KindTableNotFound, "does not exist"},
		{"REST 404 as APIError", asAPIError(t, restError(404, "notFound")), failure.KindTableNotFound, "does not exist"},
		{"REST 400 invalid", restError(400, "invalid"), failure.KindBigQueryInvalid, "bigquery.project"},
		{"REST 400 other reason", restError(400, "badRequest"), failure.KindTransient, ""},
		{"REST 403 accessDenied", restError(403, "accessDenied"), failure.KindBigQueryPermission, "roles/bigquery.dataViewer"},
		{"REST 403 forbidden", restError(403, "forbidden"), failure.KindBigQueryPermission, "roles/bigquery.readSessionUser on the billing project billing"},
		{"REST 403 no reason", restError(403), failure.KindBigQueryPermission, "denied"},
		{"REST 403 quotaExceeded", restError(403, "quotaExceeded"), failure.KindBigQueryThrottled, "throttling"},
		{"REST 403 rateLimitExceeded", restError(403, "rateLimitExceeded"), failure.KindBigQueryThrottled, "throttling"},
		{"REST 429", restError(429), failure.KindBigQueryThrottled, "throttling"},
		{"REST 500 backendError", restError(500, "backendError"), failure.KindBigQueryThrottled, "throttling"},
		{"REST 503 backendError", restError(503, "backendError"), failure.KindBigQueryThrottled, "throttling"},
		{"REST 500 internalError", restError(500, "internalError"), failure.KindTransient, ""},
		{"REST 502 no reason", restError(502), failure.KindTransient, ""},
		{"REST 401", restError(401, "authError"), failure.KindBigQueryPermission, "credentials"},

		{"gRPC NOT_FOUND", status.Error(codes.NotFound, "x"), failure.KindTableNotFound, "does not exist"},
		{"gRPC NOT_FOUND as APIError", asAPIError(t, status.Error(codes.NotFound, "x")), failure.KindTableNotFound, "does not exist"},
		{"gRPC INVALID_ARGUMENT", status.Error(codes.InvalidArgument, "x"), failure.KindBigQueryInvalid, "valid ids"},
		{"gRPC PERMISSION_DENIED", asAPIError(t, status.Error(codes.PermissionDenied, "x")), failure.KindBigQueryPermission, "roles/bigquery.readSessionUser"},
		{"gRPC UNAUTHENTICATED", status.Error(codes.Unauthenticated, "x"), failure.KindBigQueryPermission, "credentials"},
		{"gRPC RESOURCE_EXHAUSTED", status.Error(codes.ResourceExhausted, "x"), failure.KindBigQueryThrottled, "throttling"},
		{"gRPC UNAVAILABLE", status.Error(codes.Unavailable, "x"), failure.KindTransient, ""},
		{"gRPC FAILED_PRECONDITION", status.Error(codes.FailedPrecondition, "x"), failure.KindTransient, ""},
		{"deadline", context.DeadlineExceeded, failure.KindTransient, ""},
		{"plain", errors.New("connection reset"), failure.KindTransient, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := classify(tc.err, ref, "billing")
			if k := failure.KindOf(got); k != tc.kind {
				t.Fatalf("kind %s, want %s: %v", k, tc.kind, got)
			}
			if !errors.Is(got, tc.err) {
				t.Errorf("%v does not wrap %v", got, tc.err)
			}
			if !strings.Contains(got.Error(), "proj.ds.events") || !strings.Contains(got.Error(), tc.says) {
				t.Errorf("message %q lacks the table or %q", got, tc.says)
			}
		})
	}
}

// TestStreamCause: on ReadRows, NOT_FOUND and FAILED_PRECONDITION mean the session is gone,
// INVALID_ARGUMENT only once the session's expire time has passed.
func TestStreamCause(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	live := &Session{ExpireTime: now.Add(time.Hour)}
	expired := &Session{ExpireTime: now.Add(-time.Second)}
	unknown := &Session{}
	cases := []struct {
		err  error
		s    *Session
		want cause
	}{
		{status.Error(codes.NotFound, "x"), live, causeSessionGone},
		{status.Error(codes.FailedPrecondition, "x"), live, causeSessionGone},
		{fmt.Errorf("read: %w", status.Error(codes.FailedPrecondition, "x")), live, causeSessionGone},
		{status.Error(codes.InvalidArgument, "x"), expired, causeSessionGone},
		{status.Error(codes.InvalidArgument, "x"), live, causeOther},
		{status.Error(codes.InvalidArgument, "x"), unknown, causeOther},
		{status.Error(codes.PermissionDenied, "x"), live, causeDenied},
		{status.Error(codes.Unauthenticated, "x"), live, causeUnauthenticated},
		{status.Error(codes.ResourceExhausted, "x"), live, causeThrottled},
		{status.Error(codes.Unavailable, "x"), expired, causeOther},
		{errFraming, live, causeOther},
	}
	for i, tc := range cases {
		if got := streamCause(tc.err, tc.s, now); got != tc.want {
			t.Errorf("case %d (%v): cause %d, want %d", i, tc.err, got, tc.want)
		}
	}
}

// TestRetryWait: a RESOURCE_EXHAUSTED's RetryInfo lengthens the wait, within bounds.
func TestRetryWait(t *testing.T) {
	withDelay := func(d time.Duration) error {
		st, err := status.New(codes.ResourceExhausted, "slow down").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(d)})
		if err != nil {
			t.Fatal(err)
		}
		return st.Err()
	}
	cases := []struct {
		err  error
		want time.Duration
	}{
		{status.Error(codes.ResourceExhausted, "x"), time.Second},
		{withDelay(5 * time.Second), 5 * time.Second},
		{withDelay(time.Millisecond), time.Second},
		{withDelay(time.Hour), maxRetryInfoWait},
		{fmt.Errorf("%w: %w", errStalled, context.Canceled), time.Second},
	}
	for i, tc := range cases {
		if got := retryWait(tc.err, time.Second); got != tc.want {
			t.Errorf("case %d: wait %s, want %s", i, got, tc.want)
		}
	}
}
