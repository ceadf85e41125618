// Package workflows holds the deterministic orchestration of a dump. Nothing here does I/O:
// every side effect is an activity.
package workflows

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/dreamdata/destination-aws-s3/activities"
	"github.com/dreamdata/destination-aws-s3/internal/config"
	"github.com/dreamdata/destination-aws-s3/internal/export"
	"github.com/dreamdata/destination-aws-s3/internal/failure"
	"github.com/dreamdata/destination-aws-s3/internal/layout"
	"github.com/dreamdata/destination-aws-s3/internal/receipt"
)

// DefaultMaxParallelTables bounds how many tables of one dump export at once.
const DefaultMaxParallelTables = 3

// ExportInput starts one dump of one account. The account travels whole in the input (it
// holds identifiers only), so the Web UI shows exactly which bucket and role a run used.
type ExportInput struct {
	Account config.Account `json:"account"`
	// MaxParallelTables: zero means DefaultMaxParallelTables.
	MaxParallelTables int `json:"max_parallel_tables,omitempty"`
	// ScheduleTimes are the account's UTC dump times ("HH:MM"); a dump parked on a
	// misconfiguration gives up before the next of them. Empty means the plan's defaults.
	ScheduleTimes []string `json:"schedule_times,omitempty"`
}

// RetryRequest is the argument of the retry update (and signal), sent once a
// misconfiguration is fixed.
type RetryRequest struct {
	Note string `json:"note,omitempty"`
}

// RetryResult answers an accepted retry.
type RetryResult struct {
	// Tables are the tables the dump goes on with (empty when it was the access check).
	Tables  []string `json:"tables"`
	Message string   `json:"message"`
}

// RerunRequest is the argument of the rerun update (and signal). No tables means the whole
// dump.
type RerunRequest struct {
	Tables []string `json:"tables,omitempty"`
}

// RerunResult answers an accepted rerun: what will run.
type RerunResult struct {
	Tables  []string `json:"tables"`
	Message string   `json:"message"`
}

// ParkInfo says why a dump waits and until when.
type ParkInfo struct {
	// Type and Message are the first cause (the one an operator fixes first).
	Type     string    `json:"type"`
	Message  string    `json:"message"`
	Since    time.Time `json:"since"`
	Deadline time.Time `json:"deadline"`
	// Causes lists every failed table with its own cause ("" for the access check).
	Causes []ParkCause `json:"causes,omitempty"`
}

// ParkCause is one failed table of a parked dump.
type ParkCause struct {
	Table   string `json:"table,omitempty"`
	Type    string `json:"type"`
	Message string `json:"message"`
}

// ExportResult summarises a complete dump. It is a summary, not the receipt (which lists
// every file and lives in the bucket), so it stays small whatever the dump's size.
type ExportResult struct {
	DumpFolder string `json:"dump_folder"`
	ReceiptKey string `json:"receipt_key"`
	// Timestamp is the receipt's timestamp.
	Timestamp string                  `json:"timestamp"`
	Tables    map[string]TableSummary `json:"tables"`
}

// TableSummary is one table of a complete dump.
type TableSummary struct {
	Folder         string `json:"folder"`
	TotalFileCount int    `json:"total_file_count"`
	RowCount       int64  `json:"row_count"`
	SnapshotTime   string `json:"snapshot_time"`
}

// Table and dump states, as the progress query and the ExportState search attribute show them.
const (
	StatePending   = "pending"
	StateChecking  = "checking_access"
	StateExporting = "exporting"
	StateDone      = "done"
	StateFailed    = "failed"
	StateReceipt   = "writing_receipt"
	StateComplete  = "complete"
	StateCancelled = "cancelled"
	// StateWaitingForFix: a misconfiguration stopped the dump; it resumes on the retry
	// update, without redoing finished tables, or fails before the next scheduled dump.
	StateWaitingForFix = "waiting_for_fix"
)

// parkGrace is how long before the account's next scheduled dump (or the workflow's own
// timeout) a parked dump gives up, so the schedule's overlap policy does not skip the next
// one and the dump ends as failed, with its cause, rather than timed out.
const parkGrace = 10 * time.Minute

// TableProgress is one table's line in the progress query.
type TableProgress struct {
	State     string `json:"state"`
	Files     int    `json:"files"`
	Rows      int64  `json:"rows"`
	Passes    int    `json:"passes"`
	LastError string `json:"last_error,omitempty"`
	// Snapshot is the BigQuery snapshot time of the table's latest pass.
	Snapshot time.Time `json:"snapshot,omitempty"`
	// Groups and GroupsDone: a table split into stream groups (too big for one worker within
	// one read session), and how many of them finished.
	Groups     int `json:"groups,omitempty"`
	GroupsDone int `json:"groups_done,omitempty"`
}

// Progress is what the progress query returns.
type Progress struct {
	Account    string                    `json:"account"`
	DumpFolder string                    `json:"dump_folder"`
	State      string                    `json:"state"`
	Tables     map[string]*TableProgress `json:"tables"`
	Reruns     int                       `json:"reruns"`
	Retries    int                       `json:"retries"`
	Parked     *ParkInfo                 `json:"parked,omitempty"`
}

// ExportAccount takes one complete dump of one account: check access, export every table in
// parallel, and only when all are complete write receipt.json.
func ExportAccount(ctx workflow.Context, in ExportInput) (ExportResult, error) {
	d, err := newDump(ctx, in)
	if err != nil {
		return ExportResult{}, err
	}
	res, err := d.run(ctx)
	d.finish(ctx, err)
	return res, err
}

// dump is the state of one ExportAccount run. Its methods are the steps; the update and
// signal handlers change it only between steps (workflow code runs one coroutine at a time).
type dump struct {
	in       ExportInput
	acc      config.Account
	started  time.Time
	folder   string
	deadline time.Time
	logger   interface {
		Info(string, ...interface{})
		Warn(string, ...interface{})
	}
	prog *Progress

	results   map[string]activities.TableResult
	reserved  map[string]int              // shard high-water mark per table, over every pass
	resume    map[string]*export.Progress // where a parked table stopped, on its session
	snapshots map[string]time.Time        // snapshot of each table's next or latest pass
	splits    map[string]*split           // tables split into stream groups, until done

	reruns         []string // accepted reruns not yet started, in account order
	retryRequested bool
	// receiptStarted: from the first receipt write on, the folder is the customer's; reruns
	// are refused.
	receiptStarted bool
}

func newDump(ctx workflow.Context, in ExportInput) (*dump, error) {
	acc := in.Account
	acc.ApplyDefaults()
	started := workflow.Now(ctx).UTC()
	d := &dump{
		in: in, acc: acc, started: started, folder: layout.DumpFolder(started),
		logger:    workflow.GetLogger(ctx),
		results:   map[string]activities.TableResult{},
		reserved:  map[string]int{},
		resume:    map[string]*export.Progress{},
		snapshots: map[string]time.Time{},
		splits:    map[string]*split{},
	}
	d.deadline = d.giveUpAt(ctx)
	d.prog = &Progress{Account: acc.ID, DumpFolder: d.folder, State: StateChecking, Tables: map[string]*TableProgress{}}
	for _, t := range acc.Tables {
		d.prog.Tables[t] = &TableProgress{State: StatePending}
		d.snapshots[t] = started
	}
	if err := workflow.SetQueryHandler(ctx, QueryProgress, func() (Progress, error) { return *d.prog, nil }); err != nil {
		return nil, err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateRerun, d.acceptRerun,
		workflow.UpdateHandlerOptions{Validator: d.validateRerun}); err != nil {
		return nil, err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateRetry, d.acceptRetry,
		workflow.UpdateHandlerOptions{Validator: d.validateRetry}); err != nil {
		return nil, err
	}
	d.serveSignals(ctx)
	if err := workflow.UpsertTypedSearchAttributes(ctx, AttrAccountID.ValueSet(acc.ID), AttrDumpFolder.ValueSet(d.folder)); err != nil {
		return nil, err
	}
	d.setState(ctx, StateChecking)
	return d, nil
}

// run is the dump from the access check to the receipt.
func (d *dump) run(ctx workflow.Context) (ExportResult, error) {
	for {
		err := d.checkAccess(ctx)
		if err == nil {
			break
		}
		if err := d.park(ctx, []tableFailure{{err: err}}); err != nil {
			return ExportResult{}, err
		}
	}
	pending := slices.Clone(d.acc.Tables)
	for {
		pending = d.withReruns(pending)
		if len(pending) > 0 {
			d.setState(ctx, StateExporting)
			if failed := d.exportTables(ctx, pending); len(failed) > 0 {
				if err := d.park(ctx, failed); err != nil {
					return ExportResult{}, err
				}
				pending = d.unfinished()
				continue
			}
			pending = nil
		}
		if len(d.reruns) > 0 {
			continue // reruns accepted while exporting run before the receipt
		}
		// From here on a rerun is refused: nothing yields between the check above and this.
		d.receiptStarted = true
		if err := d.writeReceipt(ctx); err != nil {
			if err := d.park(ctx, []tableFailure{{err: err}}); err != nil {
				return ExportResult{}, err
			}
			continue // every table is done: this writes the receipt again
		}
		return d.result(), nil
	}
}

// finish sets the dump's final state truthfully and holds the workflow until the dump's
// minute is over, on every exit path: dumps of an account run one at a time (the schedule's
// overlap policy), so no later dump can start in this minute and share this folder.
func (d *dump) finish(ctx workflow.Context, err error) {
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	switch {
	case err == nil:
		d.setState(dctx, StateComplete)
	case temporal.IsCanceledError(err) || errors.Is(ctx.Err(), workflow.ErrCanceled):
		d.setState(dctx, StateCancelled)
	default:
		d.setState(dctx, StateFailed)
	}
	if wait := d.started.Truncate(time.Minute).Add(time.Minute).Sub(workflow.Now(dctx)); wait > 0 {
		_ = workflow.NewTimer(dctx, wait).Get(dctx, nil)
	}
}

func (d *dump) setState(ctx workflow.Context, s string) {
	d.prog.State = s
	_ = workflow.UpsertTypedSearchAttributes(ctx, AttrExportState.ValueSet(s))
	workflow.SetCurrentDetails(ctx, d.prog.details())
}

// giveUpAt is when a parked dump stops waiting: parkGrace before the account's next
// scheduled dump, and never later than parkGrace before the workflow's own timeout, so a
// parked dump fails with its cause instead of timing out while it still shows
// waiting_for_fix.
func (d *dump) giveUpAt(ctx workflow.Context) time.Time {
	at := parkDeadline(d.started, scheduleTimes(d.in, d.acc))
	info := workflow.GetInfo(ctx)
	for _, limit := range []time.Duration{info.WorkflowExecutionTimeout, info.WorkflowRunTimeout} {
		if limit > 0 {
			if end := info.WorkflowStartTime.Add(limit - parkGrace); end.Before(at) {
				at = end
			}
		}
	}
	return at
}

// untilDeadline is how long an activity may keep retrying: until the dump gives up.
func (d *dump) untilDeadline(ctx workflow.Context) time.Duration {
	return max(d.deadline.Sub(workflow.Now(ctx)), time.Minute)
}

func (d *dump) checkAccess(ctx workflow.Context) error {
	var a *activities.Activities
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		// One attempt outlasts the STS client's own retries (about 2.5 minutes).
		StartToCloseTimeout: 4 * time.Minute,
		// The attempt heartbeats every few seconds: a worker lost mid-attempt is noticed
		// at once instead of at the start-to-close timeout.
		HeartbeatTimeout: 30 * time.Second,
		// At the fleet peak the attempt may wait for a worker's slot; an STS outage is
		// retried with backoff until the dump gives up. Misconfiguration fails at once.
		ScheduleToCloseTimeout: d.untilDeadline(ctx),
		Summary:                "assume role " + d.acc.RoleARN,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: 5 * time.Second, BackoffCoefficient: 2,
			MaximumInterval: time.Minute, NonRetryableErrorTypes: failure.NonRetryable()},
	})
	return workflow.ExecuteActivity(actx, a.CheckAccess, activities.CheckAccessInput{Account: d.acc}).Get(ctx, nil)
}

func (d *dump) writeReceipt(ctx workflow.Context) error {
	var a *activities.Activities
	d.setState(ctx, StateReceipt)
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    2 * time.Minute,
		HeartbeatTimeout:       30 * time.Second, // as for checkAccess
		ScheduleToCloseTimeout: d.untilDeadline(ctx),
		Summary:                "write receipt.json",
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: 5 * time.Second, BackoffCoefficient: 2,
			MaximumInterval: 2 * time.Minute, NonRetryableErrorTypes: failure.NonRetryable()},
	})
	in := activities.WriteReceiptInput{Account: d.acc, DumpFolder: d.folder, Started: d.started, Tables: d.results}
	return workflow.ExecuteActivity(actx, a.WriteReceipt, in).Get(ctx, nil)
}

// tableFailure is one failed table ("" for a dump-wide step).
type tableFailure struct {
	table string
	err   error
}

func (f tableFailure) kind() string {
	var appErr *temporal.ApplicationError
	if errors.As(f.err, &appErr) {
		return appErr.Type()
	}
	var te *temporal.TimeoutError
	if errors.As(f.err, &te) {
		return "TimedOut"
	}
	if temporal.IsCanceledError(f.err) {
		return "Cancelled"
	}
	return "DumpFailed"
}

// message is the cause and its fix, without the SDK's wrapping.
func (f tableFailure) message() string {
	var appErr *temporal.ApplicationError
	if errors.As(f.err, &appErr) {
		return appErr.Message()
	}
	return f.err.Error()
}

// park holds a dump stopped by misconfigurations until someone fixes them and asks for a
// retry, or until the deadline. It returns the error to fail the dump with, or nil to go on.
// Every failure counts: one that no fix can help (fatal, timed out, or the deadline passed)
// fails the dump.
func (d *dump) park(ctx workflow.Context, failed []tableFailure) error {
	first := failed[0]
	for _, f := range failed {
		if failure.ClassOf(f.kind()) != failure.Parkable {
			return d.failWith(f)
		}
	}
	if ctx.Err() != nil {
		return temporal.NewCanceledError()
	}
	if !workflow.Now(ctx).Before(d.deadline) {
		return d.failWith(first)
	}
	info := &ParkInfo{Type: first.kind(), Message: first.message(), Since: workflow.Now(ctx), Deadline: d.deadline}
	for _, f := range failed {
		info.Causes = append(info.Causes, ParkCause{Table: f.table, Type: f.kind(), Message: f.message()})
	}
	d.prog.Parked = info
	d.retryRequested = false
	d.setState(ctx, StateWaitingForFix)
	d.logger.Warn("dump waiting for a fix", "account", d.acc.ID, "type", info.Type, "tables", len(failed), "deadline", d.deadline)
	ok, err := workflow.AwaitWithTimeout(ctx, d.deadline.Sub(workflow.Now(ctx)), func() bool { return d.retryRequested })
	d.prog.Parked = nil
	if err != nil {
		return err // cancelled
	}
	if !ok {
		f := first
		f.err = fmt.Errorf("nobody fixed it before %s, ahead of the next scheduled dump: %w", d.deadline.Format(time.RFC3339), first.err)
		return d.failWith(f)
	}
	d.retryRequested = false
	d.prog.Retries++
	return nil
}

// failWith fails the dump with the cause's type (AssumeRoleDenied, PutObjectDenied, ...),
// so operators can filter failed runs by cause; the message leads with the cause and the fix.
func (d *dump) failWith(f tableFailure) error {
	if temporal.IsCanceledError(f.err) {
		return f.err
	}
	what := fmt.Sprintf("account %s dump %s", d.acc.ID, d.folder)
	if f.table != "" {
		what += " table " + f.table
	}
	return temporal.NewNonRetryableApplicationError(f.message()+" ("+what+")", f.kind(), f.err)
}

// exportTables exports tables with bounded parallelism and returns every failure. On a
// parkable failure the tables already running finish (they often fail the same way, and the
// park then lists them all) and no new one starts; on any other failure the rest are
// cancelled.
func (d *dump) exportTables(ctx workflow.Context, tables []string) []tableFailure {
	limit := d.in.MaxParallelTables
	if limit <= 0 {
		limit = DefaultMaxParallelTables
	}
	ctx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	sel := workflow.NewSelector(ctx)
	var failed []tableFailure
	stopped := false // a failure no fix can help cancelled the tables still running
	next, running := 0, 0
	for next < len(tables) || running > 0 {
		for running < limit && next < len(tables) && len(failed) == 0 {
			table := tables[next]
			next++
			running++
			var onDone func(workflow.Future)
			onDone = func(f workflow.Future) {
				running--
				next, err := d.tableDone(ctx, table, f)
				if next != nil { // split into stream groups: the table goes on there
					running++
					sel.AddFuture(next, onDone)
					return
				}
				switch {
				case err == nil:
				case stopped && temporal.IsCanceledError(err):
					// Cancelled by the failure below, not a cause of its own: the dump
					// fails with that failure, whichever table comes first in the account.
				default:
					failed = append(failed, tableFailure{table: table, err: err})
					if failure.ClassOf(failed[len(failed)-1].kind()) != failure.Parkable {
						stopped = true
						cancel() // the dump fails: stop the other tables rather than waste hours
					}
				}
			}
			sel.AddFuture(d.startTable(ctx, table), onDone)
		}
		if running == 0 {
			break
		}
		sel.Select(ctx)
	}
	// Account order, whatever order they failed in: the park lists them as the account does.
	slices.SortStableFunc(failed, func(a, b tableFailure) int {
		return slices.Index(d.acc.Tables, a.table) - slices.Index(d.acc.Tables, b.table)
	})
	return failed
}

func (d *dump) startTable(ctx workflow.Context, table string) workflow.Future {
	var a *activities.Activities
	p := d.prog.Tables[table]
	p.State, p.Passes, p.LastError, p.Snapshot = StateExporting, p.Passes+1, "", d.snapshots[table]
	p.Groups, p.GroupsDone = 0, 0
	workflow.SetCurrentDetails(ctx, d.prog.details())
	if s := d.splits[table]; s != nil {
		if s.usable(ctx, d.snapshots[table]) {
			// A parked split table goes on with its unfinished groups on the same session.
			return d.splitFuture(ctx, table, s)
		}
		d.reserved[table] = max(d.reserved[table], s.highWater())
		delete(d.splits, table)
	}
	return workflow.ExecuteActivity(d.exportOptions(ctx, "export "+table), a.ExportTable, d.tableInput(table))
}

// exportOptions are the options of a table export, or of one stream group of it.
func (d *dump) exportOptions(ctx workflow.Context, summary string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		// One table of a big account can take hours; BigQuery read sessions last six.
		StartToCloseTimeout: 6 * time.Hour,
		// A live attempt heartbeats every few seconds: a dead worker is noticed within a
		// minute and its successor resumes from the last shard.
		HeartbeatTimeout: time.Minute,
		// Transient faults retry with backoff until the dump gives up.
		ScheduleToCloseTimeout: d.untilDeadline(ctx),
		Summary:                summary,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: 10 * time.Second, BackoffCoefficient: 2,
			MaximumInterval: 5 * time.Minute, NonRetryableErrorTypes: failure.NonRetryable()},
	})
}

// tableInput is the next pass of a table: it must overwrite every shard index an earlier
// pass or attempt may have written, and it may split the table into stream groups.
func (d *dump) tableInput(table string) activities.ExportTableInput {
	return activities.ExportTableInput{Account: d.acc, Table: table, DumpFolder: d.folder, SnapshotTime: d.snapshots[table],
		MinShards: max(len(d.results[table].Files), d.reserved[table]), Resume: d.resume[table], StreamGroups: true}
}

// tableDone records a finished pass of a table, or what its failure tells of the shards it
// may have written and where it stopped. A table split into stream groups goes on in the
// returned future.
func (d *dump) tableDone(ctx workflow.Context, table string, f workflow.Future) (workflow.Future, error) {
	p := d.prog.Tables[table]
	var res activities.TableResult
	err := f.Get(ctx, &res)
	if err != nil {
		p.State, p.LastError = StateFailed, tableFailure{err: err}.message()
		var fd activities.FailureDetails
		if failureDetails(err, &fd) {
			d.reserved[table] = max(d.reserved[table], fd.Reserved)
			// A split table resumes its groups (see split), never a whole-table progress.
			if fd.Resume != nil && d.splits[table] == nil {
				d.reserved[table] = max(d.reserved[table], fd.Resume.Reserved)
				// Resume only at the snapshot the pass read: a rerun accepted meanwhile asks
				// for a fresh one, which needs a new read session.
				if p.Snapshot.Equal(d.snapshots[table]) {
					d.resume[table] = fd.Resume
				}
			}
		}
		workflow.SetCurrentDetails(ctx, d.prog.details())
		return nil, err
	}
	delete(d.resume, table)
	if res.Split != nil {
		d.reserved[table] = max(d.reserved[table], res.Split.MinShards)
		d.logger.Info("table split into stream groups", "account", d.acc.ID, "table", table, "groups", res.Split.Groups)
		return d.splitFuture(ctx, table, newSplit(*res.Split, p.Snapshot, 1, 0)), nil
	}
	delete(d.splits, table)
	d.results[table] = res
	d.reserved[table] = max(d.reserved[table], len(res.Files))
	p.State, p.Files, p.Rows = StateDone, len(res.Files), res.RowCount
	workflow.SetCurrentDetails(ctx, d.prog.details())
	return nil, nil
}

// failureDetails reads FailureDetails from a failed activity: from its application error, or
// from the last heartbeat of one that timed out.
func failureDetails(err error, fd *activities.FailureDetails) bool {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.HasDetails() && appErr.Details(fd) == nil {
		return true
	}
	var te *temporal.TimeoutError
	if errors.As(err, &te) && te.HasLastHeartbeatDetails() {
		var p export.Progress
		if te.LastHeartbeatDetails(&p) == nil {
			fd.Reserved = max(p.Reserved, len(p.Files)+1)
			if p.Session != nil {
				fd.Resume = &p
			}
			return true
		}
	}
	return false
}

// unfinished lists the account's tables that are not done, in account order.
func (d *dump) unfinished() []string {
	var out []string
	for _, t := range d.acc.Tables {
		if d.prog.Tables[t].State != StateDone {
			out = append(out, t)
			d.prog.Tables[t].State = StatePending
		}
	}
	return out
}

// withReruns adds the accepted reruns to the tables about to run, in account order.
func (d *dump) withReruns(pending []string) []string {
	want := map[string]bool{}
	for _, t := range pending {
		want[t] = true
	}
	for _, t := range d.reruns {
		want[t] = true
	}
	d.reruns = nil
	var out []string
	for _, t := range d.acc.Tables {
		if want[t] {
			out = append(out, t)
		}
	}
	return out
}

// MaxReruns bounds the reruns one dump accepts: each adds a pass of its tables to the
// workflow's history, which Temporal caps, and a dump rerun without end never delivers.
const MaxReruns = 20

// validateRerun refuses a rerun the dump cannot honour, with the reason.
func (d *dump) validateRerun(req RerunRequest) error {
	if d.receiptStarted {
		return fmt.Errorf("the dump is complete: start a new dump with `starter run %s` (dump %s has written, or is writing, its receipt; its folder no longer changes)", d.acc.ID, d.folder)
	}
	if d.prog.Reruns >= MaxReruns {
		return fmt.Errorf("dump %s has taken %d reruns, the most one dump takes (each adds to its Temporal history): start a new dump with `starter run %s` once it is done, or cancel it", d.folder, d.prog.Reruns, d.acc.ID)
	}
	var unknown []string
	for _, t := range req.Tables {
		if _, ok := d.prog.Tables[t]; !ok {
			unknown = append(unknown, t)
		}
	}
	if len(unknown) > 0 {
		return fmt.Errorf("dump %s has no table %s; its tables are %s", d.folder, strings.Join(unknown, ", "), strings.Join(d.acc.Tables, ", "))
	}
	return nil
}

// acceptRerun queues the tables for a pass at a fresh snapshot (that is why engineers rerun:
// upstream data was fixed) before the receipt.
func (d *dump) acceptRerun(ctx workflow.Context, req RerunRequest) (RerunResult, error) {
	if err := d.validateRerun(req); err != nil {
		return RerunResult{}, err
	}
	tables := req.Tables
	if len(tables) == 0 {
		tables = d.acc.Tables
	}
	now := workflow.Now(ctx).UTC()
	for _, t := range tables {
		d.snapshots[t] = now
		delete(d.resume, t) // a fresh snapshot needs a new read session (and a split, new groups)
		if !slices.Contains(d.reruns, t) {
			d.reruns = append(d.reruns, t)
		}
		if d.prog.Tables[t].State == StateDone {
			d.prog.Tables[t].State = StatePending
		}
	}
	d.prog.Reruns++
	workflow.SetCurrentDetails(ctx, d.prog.details())
	d.logger.Info("rerun accepted", "account", d.acc.ID, "tables", strings.Join(tables, ","))
	msg := fmt.Sprintf("dump %s will re-export %s at snapshot %s, then write its receipt", d.folder, strings.Join(tables, ", "), receipt.Timestamp(now))
	if d.prog.Parked != nil {
		msg += "; it is waiting for a fix first (see `starter status`)"
	}
	return RerunResult{Tables: slices.Clone(tables), Message: msg}, nil
}

// validateRetry refuses a retry when nothing waits for one.
func (d *dump) validateRetry(RetryRequest) error {
	if d.prog.Parked == nil {
		return fmt.Errorf("dump %s is not waiting for a fix (state %s): nothing to retry", d.folder, d.prog.State)
	}
	return nil
}

func (d *dump) acceptRetry(ctx workflow.Context, req RetryRequest) (RetryResult, error) {
	if err := d.validateRetry(req); err != nil {
		return RetryResult{}, err
	}
	d.retryRequested = true
	var tables []string
	for _, c := range d.prog.Parked.Causes {
		if c.Table != "" {
			tables = append(tables, c.Table)
		}
	}
	d.logger.Info("retry accepted", "account", d.acc.ID, "note", req.Note)
	msg := fmt.Sprintf("dump %s resumes", d.folder)
	if len(tables) > 0 {
		msg += " with " + strings.Join(tables, ", ") + ", from where they stopped"
	}
	return RetryResult{Tables: tables, Message: msg}, nil
}

// serveSignals keeps the rerun and retry signals of earlier releases working: they follow
// the same rules as the updates, but a refused one can only be logged.
func (d *dump) serveSignals(ctx workflow.Context) {
	reruns := workflow.GetSignalChannel(ctx, SignalRerun)
	retries := workflow.GetSignalChannel(ctx, SignalRetry)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			sel := workflow.NewSelector(ctx)
			sel.AddReceive(reruns, func(c workflow.ReceiveChannel, _ bool) {
				var req RerunRequest
				c.Receive(ctx, &req)
				if _, err := d.acceptRerun(ctx, req); err != nil {
					d.logger.Warn("rerun signal refused", "error", err)
				}
			})
			sel.AddReceive(retries, func(c workflow.ReceiveChannel, _ bool) {
				var req RetryRequest
				c.Receive(ctx, &req)
				if _, err := d.acceptRetry(ctx, req); err != nil {
					d.logger.Warn("retry signal refused", "error", err)
				}
			})
			sel.Select(ctx)
			if ctx.Err() != nil {
				return
			}
		}
	})
}

// scheduleTimes are the UTC times of day the account's dumps start.
func scheduleTimes(in ExportInput, acc config.Account) []string {
	switch {
	case len(in.ScheduleTimes) > 0:
		return in.ScheduleTimes
	case len(acc.ScheduleTimes) > 0:
		return acc.ScheduleTimes
	}
	return config.DefaultPlanTimes[acc.Plan]
}

// parkDeadline is parkGrace before the first scheduled time after started (at most a day
// away); with no usable time, 10 hours after started.
func parkDeadline(started time.Time, times []string) time.Time {
	var next time.Time
	for _, t := range times {
		hm, err := time.Parse("15:04", t)
		if err != nil {
			continue
		}
		day := started.UTC().Truncate(24 * time.Hour)
		at := day.Add(time.Duration(hm.Hour())*time.Hour + time.Duration(hm.Minute())*time.Minute)
		for !at.After(started.Add(parkGrace)) {
			at = at.Add(24 * time.Hour)
		}
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	if next.IsZero() {
		return started.Add(10 * time.Hour)
	}
	return next.Add(-parkGrace)
}

// result summarises the receipt the dump wrote.
func (d *dump) result() ExportResult {
	r := activities.BuildReceipt(d.acc.ID, d.started, d.results)
	res := ExportResult{DumpFolder: d.folder, ReceiptKey: layout.ReceiptKey(d.acc.Prefix), Timestamp: r.Timestamp, Tables: map[string]TableSummary{}}
	for name, t := range r.Tables {
		res.Tables[name] = TableSummary{Folder: t.Folder, TotalFileCount: t.TotalFileCount, RowCount: t.RowCount, SnapshotTime: t.SnapshotTime}
	}
	return res
}

// details renders the progress as the Markdown table the Web UI shows under "Current details".
func (p *Progress) details() string {
	var b strings.Builder
	fmt.Fprintf(&b, "**%s** dump `%s`: %s\n\n| table | state | files | rows |\n|---|---|---|---|\n", p.Account, p.DumpFolder, p.State)
	names := make([]string, 0, len(p.Tables))
	for n := range p.Tables {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t := p.Tables[n]
		state := t.State
		if t.Groups > 0 && t.State == StateExporting {
			state = fmt.Sprintf("%s (%d/%d stream groups)", t.State, t.GroupsDone, t.Groups)
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %d |\n", n, state, t.Files, t.Rows)
	}
	if p.Parked != nil {
		fmt.Fprintf(&b, "\nWaiting for a fix until %s: %s\n", p.Parked.Deadline.Format(time.RFC3339), p.Parked.Message)
	}
	return b.String()
}
