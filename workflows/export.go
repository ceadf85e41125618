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
)

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
	if err := workflow.ExecuteActivity(checkCtx, a.CheckAccess, activities.CheckAccessInput{Account: acc}).Get(ctx, nil); err != nil {
		setState(StateFailed)
		return ExportResult{}, dumpFailure(fmt.Sprintf("account %s: access check failed", acc.ID), err)
	}

	reruns := workflow.GetSignalChannel(ctx, SignalRerun)
	results := map[string]activities.TableResult{}
	pending := append([]string(nil), acc.Tables...)
	for {
		setState(StateExporting)
		if err := exportTables(ctx, in, acc, dump, started, pending, results, prog, reruns); err != nil {
			setState(StateFailed)
			return ExportResult{}, err
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
			setState(StateFailed)
			return ExportResult{}, dumpFailure(fmt.Sprintf("account %s: writing receipt", acc.ID), err)
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
// received meanwhile stay in the channel for the caller.
func exportTables(ctx workflow.Context, in ExportInput, acc config.Account, dump string, snapshot time.Time,
	tables []string, results map[string]activities.TableResult, prog *Progress, _ workflow.ReceiveChannel) error {
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
		minShards := len(results[table].Files)
		f := workflow.ExecuteActivity(actx, a.ExportTable, activities.ExportTableInput{
			Account: acc, Table: table, DumpFolder: dump, SnapshotTime: snapshot, MinShards: minShards})
		running++
		workflow.SetCurrentDetails(ctx, prog.details())
		sel.AddFuture(f, func(f workflow.Future) {
			running--
			var res activities.TableResult
			if err := f.Get(ctx, &res); err != nil {
				p.State, p.LastError = StateFailed, err.Error()
				failures = append(failures, table)
				if firstErr == nil {
					firstErr = err
				}
				// One table failing fails the dump; stop the others rather than waste hours.
				cancel()
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
