// Package failure is the exporter's one error taxonomy. Every failure the exporter can name
// is an *Error with a Kind, and every Kind has one Class in one table (classes below): it says
// whether Temporal retries it (Transient), a dump waits for a person to fix it (Parkable), or
// the dump fails (Fatal). The lists the workflow needs (non-retryable types, parkable types)
// are derived from that table, never kept by hand.
//
// Kinds are stable strings: they become Temporal ApplicationError types, metric labels and
// the ExportState an operator filters on. Classify from API error codes only, never from
// error text, which carries user names (a bucket called "acme-kms-exports").
package failure

import (
	"errors"
	"fmt"
	"sort"
)

// Class says what a failure calls for.
type Class int

const (
	// Transient failures are retried with backoff: 5xx, throttling, timeouts, resets.
	Transient Class = iota
	// Parkable failures are misconfigurations a person can fix (a policy, a bucket, a grant)
	// while the dump waits in waiting_for_fix; a retry then resumes it.
	Parkable
	// Fatal failures need a code change or a new dump; the dump fails at once.
	Fatal
)

func (c Class) String() string {
	switch c {
	case Transient:
		return "transient"
	case Parkable:
		return "parkable"
	case Fatal:
		return "fatal"
	}
	return fmt.Sprintf("Class(%d)", int(c))
}

// Kind names one cause.
type Kind string

// The kinds. Their class is in the table below.
const (
	KindTransient Kind = "Transient"
	// Stalled: no byte moved for the stall timeout (a half-open connection, a hung server).
	KindStalled Kind = "Stalled"
	// BigQueryThrottled: quotaExceeded, rateLimitExceeded, RESOURCE_EXHAUSTED.
	KindBigQueryThrottled Kind = "BigQueryThrottled"
	// LeaseLost: Temporal has not confirmed a table export's heartbeat for long enough that
	// it may have given the attempt up and started another, so this one stopped writing.
	KindLeaseLost Kind = "HeartbeatLeaseLost"
	// SessionExpired: the BigQuery read session is gone (expired after 6 hours, or its
	// streams are no longer found); the table goes on from a new session.
	KindSessionExpired Kind = "ReadSessionExpired"

	// STS and S3 misconfigurations.
	KindAssumeRoleDenied Kind = "AssumeRoleDenied"
	KindPlatformIdentity Kind = "PlatformIdentityRejected"
	KindBucketNotFound   Kind = "BucketNotFound"
	KindPutDenied        Kind = "PutObjectDenied"
	KindKMSDenied        Kind = "KMSDenied"
	KindWrongRegion      Kind = "BucketInOtherRegion"

	// BigQuery misconfigurations.
	KindTableNotFound      Kind = "TableNotFound"
	KindBigQueryPermission Kind = "BigQueryPermissionDenied"
	// KindBigQueryInvalid: BigQuery refused the request as malformed (a project or dataset
	// id it cannot have): the account settings need fixing.
	KindBigQueryInvalid Kind = "BigQueryInvalidRequest"

	// Fatal kinds.
	KindUnsupportedSchema Kind = "UnsupportedSchema"
	KindInvalidAccount    Kind = "InvalidAccount"
	KindInvalidReceipt    Kind = "InvalidReceipt"
	// KindProgressUnreadable: a retried table export cannot read the progress an earlier
	// attempt recorded, so it cannot know which shard indexes exist; only a new dump (a new
	// folder) is safe.
	KindProgressUnreadable Kind = "ProgressUnreadable"
)

// classes is the one table. A kind missing here is Transient.
var classes = map[Kind]Class{
	KindTransient:         Transient,
	KindStalled:           Transient,
	KindBigQueryThrottled: Transient,
	KindSessionExpired:    Transient,
	KindLeaseLost:         Transient,

	KindAssumeRoleDenied:   Parkable,
	KindPlatformIdentity:   Parkable,
	KindBucketNotFound:     Parkable,
	KindPutDenied:          Parkable,
	KindKMSDenied:          Parkable,
	KindWrongRegion:        Parkable,
	KindTableNotFound:      Parkable,
	KindBigQueryPermission: Parkable,
	KindBigQueryInvalid:    Parkable,

	// A column the encoder cannot write needs a new release; an account that fails its own
	// validation travels in the workflow input, which no fix of the accounts file changes.
	KindUnsupportedSchema:  Fatal,
	KindInvalidAccount:     Fatal,
	KindInvalidReceipt:     Fatal,
	KindProgressUnreadable: Fatal,
}

// Class of the kind; unknown kinds are Transient.
func (k Kind) Class() Class { return classes[k] }

// ClassOf is the class of an error type string (a Temporal ApplicationError type).
func ClassOf(errType string) Class { return Kind(errType).Class() }

// NonRetryable lists, sorted, every kind Temporal must not retry: the parkable and fatal ones.
func NonRetryable() []string {
	var out []string
	for k, c := range classes {
		if c != Transient {
			out = append(out, string(k))
		}
	}
	sort.Strings(out)
	return out
}

// Error is a classified failure. Message is written for the operator or the customer: the
// cause and the fix, first. It never holds credentials.
type Error struct {
	Kind    Kind
	Message string
	Err     error
}

// New builds a classified error; err may be nil.
func New(kind Kind, err error, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...), Err: err}
}

func (e *Error) Error() string {
	if e.Err == nil {
		return e.Message
	}
	return e.Message + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Class of the error's kind.
func (e *Error) Class() Class { return e.Kind.Class() }

// Permanent reports whether retrying cannot help.
func (e *Error) Permanent() bool { return e.Class() != Transient }

// As returns the outermost classified error in err's chain.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// KindOf is the kind of err: its classified kind, or KindTransient.
func KindOf(err error) Kind {
	if e, ok := As(err); ok {
		return e.Kind
	}
	return KindTransient
}
