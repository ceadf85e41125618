// Package workflows holds the deterministic orchestration of a dump. Nothing here does I/O:
// every side effect is an activity.
package workflows

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/dreamdata/destination-aws-s3/activities"
	"github.com/dreamdata/destination-aws-s3/internal/config"
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

// RetryRequest is the payload of the retry signal, sent once a misconfiguration is fixed.
type RetryRequest struct {
	Note string `json:"note,omitempty"`
}

// ParkInfo says why a dump waits and until when.
type ParkInfo struct {
	Type     string    `json:"type"`
	Message  string    `json:"message"`
	Since    time.Time `json:"since"`
	Deadline time.Time `json:"deadline"`
}

// RerunRequest is the payload of the rerun signal. No tables means the whole dump.
type RerunRequest struct {
	Tables []string `json:"tables,omitempty"`
}

// ExportResult summarises a complete dump.
type ExportResult struct {
	DumpFolder string          `json:"dump_folder"`
	ReceiptKey string          `json:"receipt_key"`
	Receipt    receipt.Receipt `json:"receipt"`
}

// Table states, as the progress query and the ExportState search attribute show them.
const (
	StatePending   = "pending"
	StateChecking  = "checking_access"
	StateExporting = "exporting"
	StateDone      = "done"
	StateFailed    = "failed"
	StateReceipt   = "writing_receipt"
	StateComplete  = "complete"
	// StateWaitingForFix: a misconfiguration stopped the dump; it resumes on the retry
	// signal, without redoing finished tables, or fails before the next scheduled dump.
	StateWaitingForFix = "waiting_for_fix"
)

// parkGrace is how long before the account's next scheduled dump a parked dump gives up, so
// the schedule's overlap policy does not skip the next one.
const parkGrace = 10 * time.Minute

// TableProgress is one table's line in the progress query.
type TableProgress struct {
	State     string `json:"state"`
	Files     int    `json:"files"`
	Rows      int64  `json:"rows"`
	Passes    int    `json:"passes"`
	LastError string `json:"last_error,omitempty"`
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
	acc := in.Account
	acc.ApplyDefaults()
	started := workflow.Now(ctx).UTC()
	dump := layout.DumpFolder(started)
	logger := workflow.GetLogger(ctx)

	prog := &Progress{Account: acc.ID, DumpFolder: dump, State: StateChecking, Tables: map[string]*TableProgress{}}
	for _, t := range acc.Tables {
		prog.Tables[t] = &TableProgress{State: StatePending}
	}
	if err := workflow.SetQueryHandler(ctx, QueryProgress, func() (Progress, error) { return *prog, nil }); err != nil {
		return ExportResult{}, err
	}
	setState := func(s string) {
		prog.State = s
		_ = workflow.UpsertTypedSearchAttributes(ctx, AttrExportState.ValueSet(s))
		workflow.SetCurrentDetails(ctx, prog.details())
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, AttrAccountID.ValueSet(acc.ID), AttrDumpFolder.ValueSet(dump)); err != nil {
		return ExportResult{}, err
	}
	setState(StateChecking)

	var a *activities.Activities
	nonRetryable := activities.NonRetryableErrorTypes()
	checkCtx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Minute,
		Summary:             "assume role " + acc.RoleARN,
		// A few tries ride out an STS blip; misconfiguration fails at once (non-retryable).
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: 5 * time.Second, MaximumAttempts: 5, NonRetryableErrorTypes: nonRetryable},
	})
	retries := workflow.GetSignalChannel(ctx, SignalRetry)
	deadline := parkDeadline(started, scheduleTimes(in, acc))
	// park holds a dump stopped by a misconfiguration until someone fixes it and signals
	// retry, or until the deadline; it returns the error to fail with, or nil to go on.
	park := func(what string, err error) error {
		fail := dumpFailure(what, err)
		var appErr *temporal.ApplicationError
		if !errors.As(err, &appErr) || !activities.Parkable(appErr.Type()) || !workflow.Now(ctx).Before(deadline) {
			setState(StateFailed)
			return fail
		}
		prog.Parked = &ParkInfo{Type: appErr.Type(), Message: appErr.Message(), Since: workflow.Now(ctx), Deadline: deadline}
		setState(StateWaitingForFix)
		logger.Warn("dump waiting for a fix", "account", acc.ID, "type", appErr.Type(), "deadline", deadline)
		tctx, cancelTimer := workflow.WithCancel(ctx)
		defer cancelTimer()
		retried := false
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(retries, func(c workflow.ReceiveChannel, _ bool) {
			var req RetryRequest
			c.Receive(ctx, &req)
			retried = true
		})
		sel.AddFuture(workflow.NewTimer(tctx, deadline.Sub(workflow.Now(ctx))), func(workflow.Future) {})
		sel.Select(ctx)
		prog.Parked = nil
		if !retried {
			setState(StateFailed)
			return dumpFailure("nobody fixed it before the next scheduled dump: "+what, err)
		}
		prog.Retries++
		return nil
	}
	for {
		err := workflow.ExecuteActivity(checkCtx, a.CheckAccess, activities.CheckAccessInput{Account: acc}).Get(ctx, nil)
		if err == nil {
			break
		}
		if err := park(fmt.Sprintf("account %s: access check failed", acc.ID), err); err != nil {
			return ExportResult{}, err
		}
	}

	reruns := workflow.GetSignalChannel(ctx, SignalRerun)
	results := map[string]activities.TableResult{}
	written := map[string]int{} // most shards any pass of a table may have written
	pending := append([]string(nil), acc.Tables...)
	for {
		setState(StateExporting)
		if err := exportTables(ctx, in, acc, dump, started, pending, results, written, prog); err != nil {
			if err := park(fmt.Sprintf("account %s dump %s", acc.ID, dump), err); err != nil {
				return ExportResult{}, err
			}
			pending = unfinished(acc.Tables, prog)
			continue
		}
		// Reruns that arrived while exporting are served before the receipt is written.
		if pending = drainReruns(reruns, acc, prog, logger); len(pending) > 0 {
			continue
		}
		setState(StateReceipt)
		r := buildReceipt(acc, started, results)
		rctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: 2 * time.Minute,
			Summary:             "write receipt.json",
			RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 5 * time.Second, MaximumInterval: 2 * time.Minute, NonRetryableErrorTypes: nonRetryable},
		})
		err := workflow.ExecuteActivity(rctx, a.WriteReceipt, activities.WriteReceiptInput{Account: acc, DumpFolder: dump, Receipt: r}).Get(ctx, nil)
		if err != nil {
			if err := park(fmt.Sprintf("account %s: writing receipt", acc.ID), err); err != nil {
				return ExportResult{}, err
			}
			continue // exports nothing (every table is done) and writes the receipt again
		}
		// Two dumps must never share a folder: dumps of an account run one at a time (the
		// schedule's overlap policy), so holding this one until its minute is over is enough.
		if wait := started.Truncate(time.Minute).Add(time.Minute).Sub(workflow.Now(ctx)); wait > 0 {
			_ = workflow.NewTimer(ctx, wait).Get(ctx, nil)
		}
		if pending = drainReruns(reruns, acc, prog, logger); len(pending) > 0 {
			continue
		}
		setState(StateComplete)
		return ExportResult{DumpFolder: dump, ReceiptKey: layout.ReceiptKey(acc.Prefix), Receipt: r}, nil
	}
}

// exportTables exports tables with bounded parallelism, recording results. Rerun signals
// received meanwhile stay in their channel for the caller. On a misconfiguration the tables
// already running finish (they usually fail the same way) and no new one starts; on any other
// failure the others are cancelled.
func exportTables(ctx workflow.Context, in ExportInput, acc config.Account, dump string, snapshot time.Time,
	tables []string, results map[string]activities.TableResult, written map[string]int, prog *Progress) error {
	var a *activities.Activities
	limit := in.MaxParallelTables
	if limit <= 0 {
		limit = DefaultMaxParallelTables
	}
	ctx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	sel := workflow.NewSelector(ctx)
	var failures []string
	var firstErr error
	next, running := 0, 0
	start := func(table string) {
		p := prog.Tables[table]
		p.State, p.Passes, p.LastError = StateExporting, p.Passes+1, ""
		actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			// One table of a big account can take hours; BigQuery read sessions last six.
			StartToCloseTimeout: 6 * time.Hour,
			// Heartbeats come after every shard and every 20s: a dead worker is noticed within
			// a minute and its successor resumes from the last shard.
			HeartbeatTimeout: time.Minute,
			// Transient faults retry with backoff until the dump's time runs out.
			ScheduleToCloseTimeout: 10 * time.Hour,
			Summary:                "export " + table,
			RetryPolicy: &temporal.RetryPolicy{InitialInterval: 10 * time.Second, BackoffCoefficient: 2,
				MaximumInterval: 5 * time.Minute, NonRetryableErrorTypes: activities.NonRetryableErrorTypes()},
		})
		// A table exported again must overwrite every shard index an earlier pass wrote.
		minShards := max(len(results[table].Files), written[table])
		f := workflow.ExecuteActivity(actx, a.ExportTable, activities.ExportTableInput{
			Account: acc, Table: table, DumpFolder: dump, SnapshotTime: snapshot, MinShards: minShards})
		running++
		workflow.SetCurrentDetails(ctx, prog.details())
		sel.AddFuture(f, func(f workflow.Future) {
			running--
			var res activities.TableResult
			if err := f.Get(ctx, &res); err != nil {
				p.State, p.LastError = StateFailed, err.Error()
				var appErr *temporal.ApplicationError
				if errors.As(err, &appErr) {
					var d activities.FailureDetails
					if appErr.HasDetails() && appErr.Details(&d) == nil {
						written[table] = max(written[table], d.ShardsWritten)
					}
				}
				failures = append(failures, table)
				if firstErr == nil {
					firstErr = err
				}
				if appErr == nil || !activities.Parkable(appErr.Type()) {
					// The dump fails: stop the other tables rather than waste hours.
					cancel()
				}
				return
			}
			results[table] = res
			p.State, p.Files, p.Rows = StateDone, len(res.Files), res.RowCount
			workflow.SetCurrentDetails(ctx, prog.details())
		})
	}
	for next < len(tables) || running > 0 {
		for running < limit && next < len(tables) && len(failures) == 0 {
			start(tables[next])
			next++
		}
		if running == 0 {
			break
		}
		sel.Select(ctx)
	}
	if len(failures) > 0 {
		return dumpFailure(fmt.Sprintf("account %s dump %s: table %s failed", acc.ID, dump, strings.Join(failures, ", ")), firstErr)
	}
	return nil
}

// dumpFailure fails the dump with the type of the underlying cause (AssumeRoleDenied,
// PutObjectDenied, ...), so operators can filter failed runs by cause.
func dumpFailure(what string, err error) error {
	typ := "DumpFailed"
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		typ = appErr.Type()
	}
	return temporal.NewNonRetryableApplicationError(what+": "+err.Error(), typ, err)
}

// unfinished lists the account's tables that are not done, in account order.
func unfinished(tables []string, prog *Progress) []string {
	var out []string
	for _, t := range tables {
		if prog.Tables[t].State != StateDone {
			out = append(out, t)
			prog.Tables[t].State = StatePending
		}
	}
	return out
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

// drainReruns collects the rerun signals waiting in the channel into the tables to export again.
func drainReruns(ch workflow.ReceiveChannel, acc config.Account, prog *Progress, logger interface{ Info(string, ...interface{}) }) []string {
	want := map[string]bool{}
	for {
		var req RerunRequest
		if !ch.ReceiveAsync(&req) {
			break
		}
		prog.Reruns++
		tables := req.Tables
		if len(tables) == 0 {
			tables = acc.Tables
		}
		for _, t := range tables {
			if _, ok := prog.Tables[t]; ok {
				want[t] = true
			} else {
				logger.Info("rerun names a table this dump does not have; ignored", "table", t)
			}
		}
	}
	var out []string
	for _, t := range acc.Tables { // account order keeps the schedule deterministic
		if want[t] {
			out = append(out, t)
			prog.Tables[t].State = StatePending
		}
	}
	return out
}

func buildReceipt(acc config.Account, started time.Time, results map[string]activities.TableResult) receipt.Receipt {
	r := receipt.Receipt{
		Timestamp:     receipt.Timestamp(started),
		FormatVersion: receipt.FormatVersion,
		AccountID:     acc.ID,
		SnapshotTime:  receipt.Timestamp(started),
		Tables:        map[string]receipt.Table{},
	}
	for name, res := range results {
		r.Tables[name] = receipt.Table{Folder: res.Folder, TotalFileCount: len(res.Files), RowCount: res.RowCount, Schema: res.Schema, Files: res.Files}
	}
	return r
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
		fmt.Fprintf(&b, "| %s | %s | %d | %d |\n", n, t.State, t.Files, t.Rows)
	}
	return b.String()
}
