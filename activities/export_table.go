package activities

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"

	"github.com/dreamdata/destination-aws-s3/internal/bqsource"
	"github.com/dreamdata/destination-aws-s3/internal/config"
	"github.com/dreamdata/destination-aws-s3/internal/export"
	"github.com/dreamdata/destination-aws-s3/internal/failure"
	"github.com/dreamdata/destination-aws-s3/internal/layout"
	"github.com/dreamdata/destination-aws-s3/internal/receipt"
	"github.com/dreamdata/destination-aws-s3/internal/s3dest"
)

// Timing of a table export.
const (
	// DefaultStallTimeout: a table export in which no row was read and no byte was sent for
	// this long fails (transient, so Temporal retries it from its last shard). It is longer
	// than the transport's own stall guards (BigQuery Recv, S3 request body), which reopen a
	// stream or resend a part first.
	DefaultStallTimeout = 5 * time.Minute
	// heartbeatEvery: a live attempt heartbeats this often, even while BigQuery creates the
	// read session, so a slow CreateReadSession under load does not time the attempt out.
	// Temporal's HeartbeatTimeout then only catches dead or partitioned workers; the stall
	// watchdog catches live ones that stopped moving data.
	heartbeatEvery = 10 * time.Second
	// sessionStopMargin: no shard upload starts when the read session expires within this.
	// sessionRestartMargin: an attempt that finds its session expiring within this starts
	// the table again on a new session. The gap between them is longer than any upload in
	// flight, so an attempt still uploading on the old session (a worker Temporal lost
	// sight of) has finished before a successor writes the new session's shards.
	sessionStopMargin    = 30 * time.Minute
	sessionRestartMargin = 15 * time.Minute
	// maxSessionRestarts bounds the new sessions one attempt opens after BigQuery reports its
	// session gone; past it the attempt fails and Temporal retries with backoff.
	maxSessionRestarts = 2
)

// ExportTableInput is one table of one dump.
type ExportTableInput struct {
	Account    config.Account
	Table      string
	DumpFolder string
	// SnapshotTime is the BigQuery snapshot the table is read at: the dump's time, or the
	// time a rerun of the table was accepted.
	SnapshotTime time.Time
	// MinShards: see export.Job.MinShards. The workflow passes the table's shard high-water
	// mark from every earlier pass and attempt it heard of.
	MinShards int
	// Resume, when set, is where a parked attempt of this same pass stopped: the table goes
	// on on the same read session while it is valid (same snapshot, same shard boundaries).
	Resume *export.Progress `json:",omitempty"`
	// StreamGroups lets the export split a table too big for one worker within one read
	// session into stream groups (the result is then a SplitPlan): the workflow release that
	// sets it can run them.
	StreamGroups bool `json:",omitempty"`
	// MinGroups is the fewest groups to split into: a split pass that ran out of its session
	// asks for more.
	MinGroups int `json:",omitempty"`
}

// TableResult is what a finished table contributes to the receipt. Its files travel packed
// (export.Shards), so a table of 20,000 shards stays far below Temporal's payload limits.
type TableResult struct {
	Table        string          `json:"table"`
	Folder       string          `json:"folder"`
	Files        export.Shards   `json:"files"`
	RowCount     int64           `json:"row_count"`
	Schema       []receipt.Field `json:"schema"`
	SnapshotTime time.Time       `json:"snapshot_time"`
	// Split, when set, says the table was not exported but split (see SplitPlan); the other
	// fields then name the table only.
	Split *SplitPlan `json:"split,omitempty"`
}

// FailureDetails ride on every failed ExportTable attempt's error, whatever failed (opening
// the session, reading, uploading).
type FailureDetails struct {
	// Reserved is the table's shard high-water mark (export.Progress.Reserved): no index at or
	// past it was written. A later pass of the table writes at least this many shards.
	Reserved int `json:"reserved"`
	// Resume is where the attempt stopped, to go on from there on the same session after a fix.
	Resume *export.Progress `json:"resume,omitempty"`
	// SessionRanOut: a stream group stopped because its read session was too short for it,
	// not because BigQuery lost the session early (see ExportStreamGroup).
	SessionRanOut bool `json:"session_ran_out,omitempty"`
}

// ExportTable reads the table at the snapshot and uploads it as parquet shards. It
// heartbeats its progress after every shard (and every few seconds while alive) and resumes
// from the last recorded progress when retried. A table too big for one worker within one
// read session is not exported here: with in.StreamGroups, the result is a SplitPlan, and the
// workflow runs ExportStreamGroup for each group.
func (a *Activities) ExportTable(ctx context.Context, in ExportTableInput) (TableResult, error) {
	acc := in.Account
	log := tlog.With(activity.GetLogger(ctx), "account", acc.ID, "dump", in.DumpFolder, "table", in.Table)
	started := a.now()

	p, err := a.startingProgress(ctx, in, log)
	if err != nil {
		return TableResult{}, a.failed(in.Table, err, FailureDetails{Reserved: in.MinShards})
	}
	minShards := max(in.MinShards, p.Reserved)
	minGroups := in.MinGroups
	if _, restart := SessionMargins(p.Session); p.Session != nil && !p.Session.ExpireTime.IsZero() && a.now().Add(restart).After(p.Session.ExpireTime) {
		// Shard boundaries belong to the session: start the table again on a new one and pad
		// up to every index that may have been written on the old one. One session was not
		// long enough for it: with stream groups, it is split now.
		log.Warn("read session expiring, starting the table again on a new session", "shards_done", len(p.Files), "reserved", p.Reserved)
		p = export.Progress{Reserved: p.Reserved}
		if in.StreamGroups {
			minGroups = max(minGroups, 2)
		}
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	hb := newHeartbeater(ctx, in.Table, a.leaseOf(ctx, time.Now()), p, a.stallTimeout(), time.Now, cancel)
	defer hb.stop()
	fail := func(err error) (TableResult, error) {
		return a.exportFailed(ctx, in.Table, in.Table, hb, minShards, err)
	}

	release, err := a.Projects.acquire(ctx, acc, in.Table, projectWait)
	if err != nil {
		return fail(err)
	}
	defer release()

	ref := bqsource.TableRef{Project: acc.BigQuery.Project, Dataset: acc.BigQuery.Dataset, Table: in.Table}
	if p.Session == nil {
		s, err := a.Source.Open(ctx, ref, in.SnapshotTime, a.maxStreams())
		if err != nil {
			return fail(err)
		}
		log.Info("read session opened", "streams", len(s.Streams), "expires", s.ExpireTime, "estimated_bytes", s.EstimatedBytes)
		if in.StreamGroups {
			var plan *SplitPlan
			if s, plan, err = a.planGroups(ctx, ref, in, s, minGroups, minShards, log); err != nil {
				return fail(err)
			}
			if plan != nil {
				return TableResult{Table: in.Table, Folder: layout.TableFolder(acc.Prefix, in.DumpFolder, in.Table),
					SnapshotTime: in.SnapshotTime, Split: plan}, nil
			}
		}
		p.Session = s
		hb.record(p)
	} else {
		log.Info("resuming table export", "shards_done", len(p.Files), "stream", p.Stream, "offset", p.Offset)
	}
	fields, err := p.Session.Fields()
	if err != nil {
		return fail(failure.New(failure.KindUnsupportedSchema, err, "table %s: the read session's schema cannot be described", in.Table))
	}

	e := a.exporter(acc, hb)
	job := export.Job{Table: in.Table, Prefix: acc.Prefix, DumpFolder: in.DumpFolder, Extension: acc.FileExtension,
		MinShards: minShards, Now: a.now, Touch: hb.touch}
	uploadUntil := func(s *bqsource.Session) time.Time {
		if s.ExpireTime.IsZero() {
			return time.Time{}
		}
		stop, _ := SessionMargins(s)
		return s.ExpireTime.Add(-stop)
	}
	job.UploadUntil = uploadUntil(p.Session)
	record := a.recorder(in.Table, hb, log)
	files, err := e.Run(ctx, job, &p, record)
	for restarts := 0; err != nil && failure.KindOf(err) == failure.KindSessionExpired && restarts < maxSessionRestarts; restarts++ {
		// BigQuery says the session is gone: nothing can read it any more, so this attempt
		// starts the table again on a new session at once, padding up to every index written.
		log.Warn("read session gone, starting the table again on a new session", "shards_done", len(p.Files), "reserved", p.Reserved, "error", err)
		job.MinShards = max(job.MinShards, p.Reserved, len(p.Files))
		p = export.Progress{Reserved: job.MinShards}
		s, oerr := a.Source.Open(ctx, ref, in.SnapshotTime, a.maxStreams())
		if oerr != nil {
			return fail(oerr)
		}
		p.Session = s
		hb.record(p)
		job.UploadUntil = uploadUntil(s)
		files, err = e.Run(ctx, job, &p, record)
	}
	if err != nil {
		if errors.Is(err, export.ErrUploadWindowClosed) {
			err = failure.New(failure.KindSessionExpired, err, "table %s: its read session expires at %s", in.Table, p.Session.ExpireTime.Format(time.RFC3339))
		}
		var se *export.SchemaError
		if errors.As(err, &se) {
			err = failure.New(failure.KindUnsupportedSchema, err, "table %s needs a new exporter release", in.Table)
		}
		return fail(err)
	}
	res := a.tableResult(in.Table, in.DumpFolder, acc, files, fields, in.SnapshotTime)
	a.Metrics.TableExported(in.Table, a.now().Sub(started))
	log.Info("table exported", "files", len(files), "rows", res.RowCount)
	return res, nil
}

// startingProgress is where this attempt starts: the progress an earlier attempt recorded,
// else the parked pass's progress the workflow handed back, else nothing.
func (a *Activities) startingProgress(ctx context.Context, in ExportTableInput, log tlog.Logger) (export.Progress, error) {
	if activity.HasHeartbeatDetails(ctx) {
		var p export.Progress
		if err := activity.GetHeartbeatDetails(ctx, &p); err != nil {
			// Without it, this attempt cannot know which shard indexes exist: guessing could
			// leave a stale shard beside the receipt.
			return export.Progress{}, failure.New(failure.KindProgressUnreadable, err,
				"table %s: the progress an earlier attempt recorded cannot be read (a worker of another version?); start a new dump with `starter run`", in.Table)
		}
		if p.Reserved == 0 && len(p.Files) > 0 {
			// Recorded before reservations existed: at most one upload past the record.
			p.Reserved = len(p.Files) + 1
		}
		return p, nil
	}
	if in.Resume != nil && in.Resume.Session != nil {
		log.Info("resuming a parked table on its read session", "shards_done", len(in.Resume.Files))
		return *in.Resume, nil
	}
	return export.Progress{}, nil
}

func (a *Activities) maxStreams() int {
	if a.MaxStreams <= 0 {
		return export.DefaultMaxStreams
	}
	return a.MaxStreams
}

func (a *Activities) stallTimeout() time.Duration {
	if a.StallTimeout <= 0 {
		return DefaultStallTimeout
	}
	return a.StallTimeout
}

var errStalled = errors.New("export stalled")

// Heartbeat leases. With a HeartbeatRecorder, an attempt writes only while Temporal has
// confirmed one of its heartbeats within leaseShare of the heartbeat timeout (and well
// before its start-to-close timeout): past that, Temporal may have given the attempt up and
// a successor (a retry, or a rerun's pass) may be writing the same keys, so a late write
// from this one (a worker that was frozen, partitioned or swapped out) could land over the
// successor's shard, even after the receipt. Timing uses the local monotonic clock from the
// moment each confirmed heartbeat was sent, which Temporal received no earlier, so clock
// skew between worker and server does not matter.
const (
	leaseShare         = 0.75
	leaseRetryEvery    = 2 * time.Second  // after a heartbeat Temporal did not confirm
	heartbeatRPCLimit  = 10 * time.Second // one heartbeat call
	heartbeatMinGap    = time.Second      // progress heartbeats, at most this often
	attemptDeadlineGap = time.Minute      // stop writing this long before start-to-close
)

// errAbandoned is the cause of an attempt Temporal no longer knows (it timed out and was
// retried, or its workflow ended).
var errAbandoned = errors.New("temporal no longer knows this activity attempt")

// heartbeater keeps one table export's heartbeat: the latest progress, sent soon after it
// changes and every heartbeatEvery while the attempt lives; the stall watchdog, which
// cancels the attempt when no data moved for the stall timeout; and, with a recorder, the
// attempt's write lease (fence).
type heartbeater struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	now    func() time.Time
	stall  time.Duration
	table  string

	lease

	sendMu     sync.Mutex // orders sends, so an older snapshot never follows a newer one
	mu         sync.Mutex // guards the fields below; never held over a call to Temporal
	last       export.Progress
	leaseUntil time.Time // zero until Temporal confirmed a heartbeat
	lost       error     // set for good once Temporal disowned the attempt
	failing    bool      // the last heartbeat was not confirmed
	// confirmed is the shard reservation (export.Progress.Reserved) Temporal holds: the
	// starting one, then that of the last confirmed heartbeat.
	confirmed int

	kick  chan struct{}
	moved atomic.Int64 // unix nanoseconds of the last data movement
	done  chan struct{}
	wg    sync.WaitGroup
}

// lease is what an attempt's write lease rests on.
type lease struct {
	rec   HeartbeatRecorder // nil: the SDK's throttled heartbeats, and no lease
	token []byte
	// span is how long a confirmed heartbeat keeps the lease; zero: no heartbeat timeout,
	// so Temporal never gives the attempt up for missing heartbeats.
	span time.Duration
	end  time.Time // no write at or after it; zero: none
}

// leaseOf is the attempt's lease: its heartbeat timeout and its deadline as the activity
// info tells them, counted on the local clock from started.
func (a *Activities) leaseOf(ctx context.Context, started time.Time) lease {
	if a.Heartbeats == nil {
		return lease{}
	}
	info := activity.GetInfo(ctx)
	return lease{rec: a.Heartbeats, token: info.TaskToken,
		span: time.Duration(float64(info.HeartbeatTimeout) * leaseShare), end: attemptEnd(info, started)}
}

// attemptEnd is when an attempt that started at started (local clock) stops writing: a
// margin before its start-to-close or schedule-to-close timeout, which Temporal counts from
// a moment no later than started.
func attemptEnd(info activity.Info, started time.Time) time.Time {
	if info.Deadline.IsZero() || info.StartedTime.IsZero() {
		return time.Time{}
	}
	d := info.Deadline.Sub(info.StartedTime)
	return started.Add(d - min(attemptDeadlineGap, d/4))
}

func newHeartbeater(ctx context.Context, table string, l lease, p export.Progress, stall time.Duration, now func() time.Time, cancel context.CancelCauseFunc) *heartbeater {
	h := &heartbeater{ctx: ctx, cancel: cancel, now: now, stall: stall, table: table, last: p, lease: l,
		confirmed: p.Reserved, kick: make(chan struct{}, 1), done: make(chan struct{})}
	if l.rec != nil {
		h.beat() // the lease starts with a confirmed heartbeat
	}
	h.touch()
	h.wg.Go(func() {
		t := time.NewTicker(min(heartbeatEvery, stall/4))
		defer t.Stop()
		for {
			retry := (<-chan time.Time)(nil)
			if h.unconfirmed() {
				retry = time.After(leaseRetryEvery)
			}
			select {
			case <-h.done:
				return
			case <-t.C:
				if idle := h.now().Sub(time.Unix(0, h.moved.Load())); idle >= h.stall {
					cancel(fmt.Errorf("%w: idle for %s", errStalled, idle.Round(time.Second)))
					return
				}
				h.beat()
			case <-h.kick:
				h.beat()
				select { // progress heartbeats at most every heartbeatMinGap
				case <-h.done:
					return
				case <-time.After(heartbeatMinGap):
				}
			case <-retry:
				h.beat()
			}
		}
	})
	return h
}

// touch notes that data moved.
func (h *heartbeater) touch() { h.moved.Store(h.now().UnixNano()) }

// record makes p the latest progress and sends it (with a recorder, soon: the sends are
// spaced, and the latest progress is what goes).
func (h *heartbeater) record(p export.Progress) {
	h.touch()
	h.mu.Lock()
	h.last = p
	h.mu.Unlock()
	if h.rec == nil {
		h.beat()
		return
	}
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// beat sends the latest progress. With a recorder it renews the lease when Temporal
// confirms it, and ends the attempt when Temporal no longer knows it or asks it to stop.
func (h *heartbeater) beat() {
	h.sendMu.Lock()
	defer h.sendMu.Unlock()
	h.mu.Lock()
	last, lost := h.last, h.lost
	h.mu.Unlock()
	if h.rec == nil {
		activity.RecordHeartbeat(h.ctx, last)
		return
	}
	if lost != nil {
		return
	}
	sent := h.now()
	ctx, cancel := context.WithTimeout(h.ctx, heartbeatRPCLimit)
	err := h.rec.RecordActivityHeartbeat(ctx, h.token, last)
	cancel()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failing = err != nil
	var notFound *serviceerror.NotFound
	switch {
	case err == nil:
		h.leaseUntil = sent.Add(h.span)
		h.confirmed = max(h.confirmed, last.Reserved)
	case errors.As(err, &notFound):
		h.lost = fmt.Errorf("%w: %v", errAbandoned, err)
		h.cancel(h.lost)
	case temporal.IsCanceledError(err):
		// The workflow cancelled the table (the dump failed, or was cancelled).
		h.lost = fmt.Errorf("%w: cancellation requested", errAbandoned)
		h.cancel(context.Canceled)
	case errors.Is(err, activity.ErrActivityPaused), errors.Is(err, activity.ErrActivityReset):
		// An operator paused or reset the activity: this attempt's work is no longer wanted.
		h.lost = fmt.Errorf("%w: %v", errAbandoned, err)
		h.cancel(err)
	case h.ctx.Err() == nil:
		activity.GetLogger(h.ctx).Warn("heartbeat not confirmed by Temporal", "table", h.table, "error", err)
	}
}

// unconfirmed: Temporal did not confirm the last heartbeat (and has not disowned the
// attempt), so the next one goes sooner than the ticker's.
func (h *heartbeater) unconfirmed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.rec != nil && h.failing && h.lost == nil
}

// fence says whether the attempt may still write (s3dest.Object.Fence): only while its
// lease holds. Without a recorder there is no lease.
func (h *heartbeater) fence() error {
	if h.rec == nil {
		return nil
	}
	h.mu.Lock()
	until, lost := h.leaseUntil, h.lost
	h.mu.Unlock()
	now := h.now()
	switch {
	case lost != nil:
		return failure.New(failure.KindLeaseLost, lost, "table %s: this attempt stopped writing: Temporal gave it up", h.table)
	case !h.end.IsZero() && !now.Before(h.end):
		return failure.New(failure.KindLeaseLost, nil, "table %s: this attempt stopped writing: it is close to its start-to-close timeout", h.table)
	case h.span > 0 && !now.Before(until):
		return failure.New(failure.KindLeaseLost, nil,
			"table %s: this attempt stopped writing: Temporal has not confirmed its heartbeat for %s, so it may have given the attempt up; it is retried from its last shard",
			h.table, h.span)
	}
	return nil
}

func (h *heartbeater) progress() export.Progress {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

func (h *heartbeater) stop() {
	close(h.done)
	h.wg.Wait()
}

// fencedWriter hands every object the attempt's fence, once Temporal holds the shard
// reservation.
type fencedWriter struct {
	w        s3dest.Writer
	fence    func() error
	reserved func(context.Context) error // waits until Temporal holds the reservation
}

func (f fencedWriter) Put(ctx context.Context, obj s3dest.Object) (s3dest.PutResult, error) {
	if f.reserved != nil {
		if err := f.reserved(ctx); err != nil {
			return s3dest.PutResult{}, err
		}
	}
	obj.Fence = f.fence
	return f.w.Put(ctx, obj)
}

// awaitReserved returns once Temporal holds the latest shard reservation, so that no upload
// ever reaches an index a successor could not know of (see export.Progress.Reserved): the
// exporter raises the reservation just before the upload that needs it. It sends the
// heartbeat itself, at once, and gives up when the lease does.
func (h *heartbeater) awaitReserved(ctx context.Context) error {
	if h.rec == nil {
		return nil // the SDK's heartbeats: ReserveAhead covers the ones not yet sent
	}
	for {
		h.mu.Lock()
		want, have, failing := h.last.Reserved, h.confirmed, h.failing
		h.mu.Unlock()
		if have >= want {
			return nil
		}
		if err := h.fence(); err != nil {
			return err
		}
		if failing {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(leaseRetryEvery):
			}
		}
		h.beat()
	}
}
