package bqsource

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/googleapis/gax-go/v2/apierror"
	"google.golang.org/api/googleapi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dreamdata/destination-aws-s3/internal/failure"
)

// cause is what a BigQuery error means for the exporter, read from its status code and, for
// the REST API, its googleapi reasons: never from its text, which carries user names.
type cause int

const (
	causeOther           cause = iota // transient: 5xx, resets, timeouts, anything unnamed
	causeNotFound                     // the table (or, on ReadRows, the session) does not exist
	causeDenied                       // the worker's identity lacks a grant
	causeUnauthenticated              // the worker's credentials were refused
	causeInvalid                      // a malformed request: a project or dataset id it cannot have
	causeThrottled                    // quota, rate limit, backendError, RESOURCE_EXHAUSTED
	causeSessionGone                  // the read session or stream expired (ReadRows only)
)

// Reasons of googleapi.Error's Errors[].Reason (the REST API's legacy error reasons) that mean
// "too much, too fast": BigQuery answers 403 for quotaExceeded and rateLimitExceeded, so the
// status alone would park a dump that only needs to slow down.
var throttleReasons = []string{"quotaExceeded", "rateLimitExceeded", "userRateLimitExceeded", "dailyLimitExceeded", "backendError"}

// reasonInvalid is BigQuery's 400 reason for a malformed id ("Invalid project ID ...").
const reasonInvalid = "invalid"

// httpCause classifies an error of the REST API (Metadata).
func httpCause(e *googleapi.Error) cause {
	hasReason := func(reasons ...string) bool {
		for _, item := range e.Errors {
			if slices.Contains(reasons, item.Reason) {
				return true
			}
		}
		return false
	}
	switch {
	case hasReason(throttleReasons...), e.Code == 429:
		return causeThrottled
	case e.Code == 404:
		return causeNotFound
	case e.Code == 401:
		return causeUnauthenticated
	case e.Code == 403:
		// accessDenied and forbidden, and also the reasons a person fixes the same way
		// (billingNotEnabled, a disabled API): throttling was ruled out above.
		return causeDenied
	case e.Code == 400 && hasReason(reasonInvalid):
		return causeInvalid
	}
	return causeOther
}

// grpcCode is the gRPC status code of err (wrapped or an *apierror.APIError); ok is false
// for errors that carry none (a context error, a decoding error).
func grpcCode(err error) (codes.Code, bool) {
	st, ok := status.FromError(err)
	if !ok {
		return codes.Unknown, false
	}
	return st.Code(), true
}

// tableCause classifies an error of Metadata (REST) or CreateReadSession (gRPC).
func tableCause(err error) cause {
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		return httpCause(ge)
	}
	code, ok := grpcCode(err)
	if !ok {
		return causeOther
	}
	switch code {
	case codes.NotFound:
		return causeNotFound
	case codes.InvalidArgument:
		return causeInvalid
	case codes.PermissionDenied:
		return causeDenied
	case codes.Unauthenticated:
		return causeUnauthenticated
	case codes.ResourceExhausted:
		return causeThrottled
	}
	return causeOther
}

// streamCause classifies an error of ReadRows. There a NotFound is the read session or stream
// being gone, not the table; BigQuery reports a session past its six hours as
// FAILED_PRECONDITION ("there was an error operating on '<stream>': session expired at ..."),
// and since only the text says "expired", an INVALID_ARGUMENT counts as expiry only when the
// session's own expire time, known from CreateReadSession, has passed.
func streamCause(err error, s *Session, now time.Time) cause {
	code, ok := grpcCode(err)
	if !ok {
		return causeOther
	}
	switch code {
	case codes.NotFound, codes.FailedPrecondition:
		return causeSessionGone
	case codes.InvalidArgument:
		if !s.ExpireTime.IsZero() && !now.Before(s.ExpireTime) {
			return causeSessionGone
		}
	case codes.PermissionDenied:
		return causeDenied
	case codes.Unauthenticated:
		return causeUnauthenticated
	case codes.ResourceExhausted:
		return causeThrottled
	}
	return causeOther
}

// classify turns an error of Metadata or Open into a *failure.Error naming the table, or a
// transient error wrapping it. billing is the project read sessions are created in.
func classify(err error, ref TableRef, billing string) error {
	switch tableCause(err) {
	case causeNotFound:
		return failure.New(failure.KindTableNotFound, err,
			"BigQuery table %s does not exist: check the account's bigquery.project, bigquery.dataset and tables", ref)
	case causeDenied:
		return deniedError(err, ref.String(), billing)
	case causeUnauthenticated:
		return unauthenticatedError(err, ref.String())
	case causeInvalid:
		return failure.New(failure.KindBigQueryInvalid, err,
			"BigQuery refused the request for table %s as invalid: check that the account's bigquery.project and bigquery.dataset are valid ids (and the billing project %s)", ref, billing)
	case causeThrottled:
		return throttledError(err, ref.String(), billing)
	}
	return fmt.Errorf("bigquery %s: %w", ref, err)
}

func deniedError(err error, table, billing string) error {
	return failure.New(failure.KindBigQueryPermission, err,
		"reading BigQuery table %s was denied: the worker's Google identity needs roles/bigquery.dataViewer on the dataset and roles/bigquery.readSessionUser on the billing project %s", table, billing)
}

func unauthenticatedError(err error, table string) error {
	return failure.New(failure.KindBigQueryPermission, err,
		"BigQuery rejected the worker's Google credentials reading table %s: check the worker's application default credentials (GOOGLE_APPLICATION_CREDENTIALS, or its workload identity) are valid and not expired", table)
}

func throttledError(err error, table, billing string) error {
	return failure.New(failure.KindBigQueryThrottled, err,
		"BigQuery is throttling reads of table %s (quota or rate limit): retrying with backoff; if it lasts, raise the BigQuery quotas (the Storage Read API's for reads) of the billing project %s, or run fewer exports at once", table, billing)
}

// maxRetryInfoWait bounds the wait a RESOURCE_EXHAUSTED's RetryInfo asks for, so a bad hint
// cannot hold a stream for long; beyond it Temporal's own backoff takes over.
const maxRetryInfoWait = time.Minute

// retryWait is how long to wait before opening a stream again: backoff, or longer when BigQuery
// says how long (the RetryInfo detail it attaches to RESOURCE_EXHAUSTED).
func retryWait(err error, backoff time.Duration) time.Duration {
	ae, ok := apierror.FromError(err)
	if !ok || ae.Details().RetryInfo == nil {
		return backoff
	}
	hint := min(ae.Details().RetryInfo.GetRetryDelay().AsDuration(), maxRetryInfoWait)
	return max(backoff, hint)
}
