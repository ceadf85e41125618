package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/dreamdata/destination-aws-s3/internal/humanize"
	"github.com/dreamdata/destination-aws-s3/internal/schedules"
	"github.com/dreamdata/destination-aws-s3/internal/settings"
	"github.com/dreamdata/destination-aws-s3/workflows"
)

const runHelp = `starter run ACCOUNT [--wait] [--verbose]

Starts a dump of the account now, through its schedule (so one dump at a time still holds),
and prints its workflow id. Refused while a dump of the account is running.

With --wait it follows the dump: a line per table as it finishes (from the dump's "progress"
query, every 2s), then the dump's summary: per table the folder, file and row counts and
snapshot time (the receipt itself, with every file, is in the bucket). A dump takes at least
until the end of its minute, so every dump gets its own folder.

If the dump stops to wait for a fix (waiting_for_fix: a misconfiguration such as a denied
write), --wait does not wait for hours: it prints the cause and the fix and exits with
status 3. The dump keeps waiting: fix the cause, then "starter retry ACCOUNT" (or
"starter cancel ACCOUNT --reason TEXT"). A failed dump exits with status 1.`

func (a *app) run(ctx context.Context, args []string) error {
	return a.startDump(ctx, "run", runHelp, args, true)
}

// pollEvery is how often run --wait asks a dump for its progress.
var pollEvery = 2 * time.Second

// startDump is run and schedules trigger.
func (a *app) startDump(ctx context.Context, name, help string, args []string, canWait bool) error {
	c := a.newCommand(name, help, true)
	wait, verbose := new(bool), new(bool)
	if canWait {
		wait = c.fs.Bool("wait", false, "follow the dump: a line per finished table, then its summary; stop (exit 3) if it waits for a fix")
		verbose = c.fs.Bool("verbose", false, "with --wait: print errors whole, with the SDK's and AWS's details")
	}
	queue := c.fs.String("task-queue", settings.Env("TASK_QUEUE", workflows.TaskQueue), "task queue the workers poll (env TASK_QUEUE); a warning if the schedule uses another")
	account, err := c.parse(args, true)
	if err != nil {
		return err
	}
	cl, err := c.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	if in, err := schedules.Describe(ctx, cl, account); err == nil && in.TaskQueue != "" && in.TaskQueue != *queue {
		fmt.Fprintf(a.errOut, "warning: the schedule of %s starts dumps on task queue %q, not %q: a worker must poll %q (or run `starter schedules sync --task-queue %s`)\n",
			account, in.TaskQueue, *queue, in.TaskQueue, *queue)
	}
	id, err := schedules.Trigger(ctx, cl, account)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.out, "started dump %s\n", id)
	if !*wait {
		fmt.Fprintf(a.out, "follow it with `starter status %s`\n", account)
		return nil
	}
	return a.follow(ctx, cl, account, id, *verbose)
}

// follow waits for a dump, printing each table as it finishes; it stops when the dump parks.
func (a *app) follow(ctx context.Context, cl client.Client, account, id string, verbose bool) error {
	type outcome struct {
		res workflows.ExportResult
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		var o outcome
		o.err = cl.GetWorkflow(ctx, id, "").Get(ctx, &o.res)
		done <- o
	}()
	printed := map[string]int{} // table -> passes already reported done
	report := func(p workflows.Progress) {
		n := 0 // tables reported done, this one included
		for _, t := range printed {
			if t > 0 {
				n++
			}
		}
		for _, name := range sortedKeys(p.Tables) {
			t := p.Tables[name]
			if t.State != workflows.StateDone || printed[name] >= t.Passes {
				continue
			}
			if printed[name] == 0 {
				n++
			}
			printed[name] = t.Passes
			pass := ""
			if t.Passes > 1 {
				pass = fmt.Sprintf(", pass %d", t.Passes)
			}
			fmt.Fprintf(a.out, "table %s done: %s, %s rows%s (%d/%d tables)\n", name, plural(t.Files, "file"), humanize.Count(t.Rows), pass, n, len(p.Tables))
		}
	}
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	var failingSince time.Time
	warned := false
	for {
		select {
		case o := <-done:
			if o.err != nil {
				return fmt.Errorf("dump %s failed: %s", id, message(o.err.Error(), verbose))
			}
			for _, name := range sortedKeys(o.res.Tables) {
				if printed[name] == 0 {
					t := o.res.Tables[name]
					fmt.Fprintf(a.out, "table %s done: %s, %s rows\n", name, plural(t.TotalFileCount, "file"), humanize.Count(t.RowCount))
				}
			}
			out, _ := json.MarshalIndent(o.res, "", "  ")
			fmt.Fprintf(a.out, "dump %s complete: s3 key %s\n%s\n", id, o.res.ReceiptKey, out)
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		p, err := queryProgress(ctx, cl, id, 5*time.Second)
		if err != nil {
			// Not answered yet (no workflow task has run), or no worker polls the queue.
			if failingSince.IsZero() {
				failingSince = time.Now()
			}
			if !warned && time.Since(failingSince) > 30*time.Second {
				warned = true
				fmt.Fprintf(a.errOut, "the dump has not answered the progress query for 30s: is a worker polling its task queue? (%s)\n", shortMessage(err.Error()))
			}
			continue
		}
		failingSince = time.Time{}
		report(p)
		if p.State == workflows.StateWaitingForFix && p.Parked != nil {
			writeParked(a.out, p, verbose)
			fmt.Fprintf(a.out, "stopped waiting: the dump %s waits for a fix (exit status 3); `starter status %s` shows it\n", id, account)
			return exitError{3}
		}
	}
}

// queryProgress asks a dump for its progress.
func queryProgress(ctx context.Context, cl client.Client, id string, timeout time.Duration) (workflows.Progress, error) {
	qctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var p workflows.Progress
	v, err := cl.QueryWorkflow(qctx, id, "", workflows.QueryProgress)
	if err != nil {
		return p, err
	}
	err = v.Get(&p)
	return p, err
}

const statusHelp = `starter status ACCOUNT [--json] [--verbose]

Shows the progress of the account's running dump, or else of its last one: per table its
state, files and rows exported so far and passes, and the totals of the dump. A dump waiting
for a fix leads with its cause and the fix, on one line (--verbose prints the whole error,
with the Temporal SDK's and AWS's details). It asks the dump itself (the "progress" query),
so a worker must be running.

ROWS is what has been exported so far: for a table being exported, the rows of the shards it
has uploaded (from its last heartbeat) out of BigQuery's estimate of the table's rows, with a
percentage, when BigQuery gave one. DONE is the share of tables complete.`

func (a *app) status(ctx context.Context, args []string) error {
	c := a.newCommand("status", statusHelp, true)
	asJSON := c.fs.Bool("json", false, "print the progress as JSON")
	verbose := c.fs.Bool("verbose", false, "print errors whole, with the SDK's and AWS's details")
	account, err := c.parse(args, true)
	if err != nil {
		return err
	}
	cl, err := c.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	id, running, err := schedules.CurrentRun(ctx, cl, account)
	if err != nil {
		return err
	}
	p, err := queryProgress(ctx, cl, id, 30*time.Second)
	if err != nil {
		return fmt.Errorf("query the progress of %s: %s (a worker must be running to answer; `starter runs %s` shows the dumps without one)", id, message(err.Error(), *verbose), account)
	}
	if *asJSON {
		return writeJSON(a.out, p)
	}
	var live map[string]liveTable
	if running {
		live = liveProgress(ctx, cl, id)
	}
	return writeProgress(a.out, id, running, p, live, *verbose)
}

const rerunHelp = `starter rerun ACCOUNT [--tables a,b]

Asks the account's running dump to export again the whole dump, or the chosen tables, at a
fresh BigQuery snapshot (upstream data was fixed), before it writes its receipt (the "rerun"
Temporal update). The dump answers at once: with the tables it will re-export, or with why
it refuses (an unknown table; a dump that has written, or is writing, its receipt: its
folder never changes again, so start a new dump with "starter run ACCOUNT").`

func (a *app) rerun(ctx context.Context, args []string) error {
	c := a.newCommand("rerun", rerunHelp, true)
	tables := c.fs.String("tables", "", "comma-separated tables; empty means every table")
	account, err := c.parse(args, true)
	if err != nil {
		return err
	}
	cl, id, err := c.runningDump(ctx, account, "nothing to rerun")
	if err != nil {
		return err
	}
	defer cl.Close()
	req := workflows.RerunRequest{}
	if *tables != "" {
		for _, t := range strings.Split(*tables, ",") {
			if t = strings.TrimSpace(t); t != "" {
				req.Tables = append(req.Tables, t)
			}
		}
	}
	var res workflows.RerunResult
	if err := update(ctx, cl, id, workflows.UpdateRerun, req, &res); err != nil {
		return fmt.Errorf("rerun refused by %s: %w", id, err)
	}
	fmt.Fprintf(a.out, "rerun accepted by %s: %s\n", id, res.Message)
	return nil
}

// update sends a Temporal update to a dump and waits for its answer: an accepted update's
// result, or the validator's refusal as the error.
func update(ctx context.Context, cl client.Client, id, name string, arg, result any) error {
	uctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	h, err := cl.UpdateWorkflow(uctx, client.UpdateWorkflowOptions{WorkflowID: id, UpdateName: name,
		Args: []any{arg}, WaitForStage: client.WorkflowUpdateStageCompleted})
	if err != nil {
		return plainUpdateError(err)
	}
	if err := h.Get(uctx, result); err != nil {
		return plainUpdateError(err)
	}
	return nil
}

// plainUpdateError keeps the workflow's own words: the SDK wraps a validator's refusal in an
// application error whose message is the refusal.
func plainUpdateError(err error) error {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return errors.New(appErr.Message())
	}
	return err
}

// runningDump dials Temporal and finds the account's running dump; the caller closes the
// client. Without a running dump the error says why that matters (nothing) and what to do.
func (c *command) runningDump(ctx context.Context, account, nothing string) (client.Client, string, error) {
	cl, err := c.dial()
	if err != nil {
		return nil, "", err
	}
	id, running, err := schedules.CurrentRun(ctx, cl, account)
	if err == nil && !running {
		err = fmt.Errorf("account %s has no running dump (last: %s): %s; start a new dump with `starter run %s`", account, id, nothing, account)
	}
	if err != nil {
		cl.Close()
		return nil, "", err
	}
	return cl, id, nil
}

func orAll(t []string) string {
	if len(t) == 0 {
		return "all tables"
	}
	return strings.Join(t, ", ")
}

const retryHelp = `starter retry ACCOUNT [--note TEXT]

Resumes the account's dump that waits for a fix (state waiting_for_fix: a misconfiguration
such as a denied role or write stopped it, see "starter status ACCOUNT"). Fix the cause
first, and check it with "starter validate ACCOUNT --accounts FILE"; the dump then goes on
without redoing finished tables. If it is still broken, the dump waits again. A dump keeps
the account settings it started with: after changing the accounts file, start a new dump
instead (or let the parked one fail at its deadline).`

func (a *app) retry(ctx context.Context, args []string) error {
	c := a.newCommand("retry", retryHelp, true)
	note := c.fs.String("note", "", "what was fixed (kept in the dump's history)")
	account, err := c.parse(args, true)
	if err != nil {
		return err
	}
	cl, id, err := c.runningDump(ctx, account, "nothing waits for a fix")
	if err != nil {
		return err
	}
	defer cl.Close()
	p, err := queryProgress(ctx, cl, id, 30*time.Second)
	if err != nil {
		return fmt.Errorf("query the progress of %s: %s (a worker must be running)", id, shortMessage(err.Error()))
	}
	var res workflows.RetryResult
	if err := update(ctx, cl, id, workflows.UpdateRetry, workflows.RetryRequest{Note: *note}, &res); err != nil {
		return fmt.Errorf("%w; `starter status %s` shows its progress", err, account)
	}
	fmt.Fprintf(a.out, "retry accepted by %s (it waited for: %s): %s\n", id, parkedType(p), res.Message)
	fmt.Fprintf(a.out, "follow it with `starter status %s`\n", account)
	return nil
}

func parkedType(p workflows.Progress) string {
	if p.Parked == nil {
		return "a fix"
	}
	return p.Parked.Type
}

const runsHelp = `starter runs ACCOUNT [--limit 10] [--status S] [--json]

Lists the account's recent dumps, newest first, from Temporal visibility (the query
AccountId = 'ACCOUNT' on the AccountId search attribute): workflow id, status, start and
close time (UTC), and the DumpFolder and ExportState search attributes. It finds dumps
started by the schedule, by "run", "trigger" or "backfill". Visibility lags by a moment: a
dump started a second ago may not show yet.`

func (a *app) runs(ctx context.Context, args []string) error {
	c := a.newCommand("runs", runsHelp, true)
	limit := c.fs.Int("limit", 10, "how many dumps to show (1-1000)")
	status := c.fs.String("status", "", "only dumps in this status: "+strings.Join(schedules.StatusNames, ", "))
	asJSON := c.fs.Bool("json", false, "print the dumps as JSON")
	account, err := c.parse(args, true)
	if err != nil {
		return err
	}
	if *limit < 1 || *limit > 1000 {
		return usagef("runs: --limit %d must be between 1 and 1000", *limit)
	}
	if _, err := schedules.RunsQuery(account, *status); err != nil {
		return usagef("runs: --status: %v", err)
	}
	cl, err := c.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	runs, err := schedules.Runs(ctx, cl, account, *status, *limit)
	if err != nil {
		return err
	}
	if *asJSON {
		if runs == nil {
			runs = []schedules.Run{}
		}
		return writeJSON(a.out, runs)
	}
	if len(runs) == 0 {
		if *status != "" {
			fmt.Fprintf(a.out, "no %s dumps of account %s found\n", strings.ToLower(*status), account)
			return nil
		}
		fmt.Fprintf(a.out, "no dumps of account %s found (is the account id right? `starter schedules list` shows the scheduled accounts)\n", account)
		return nil
	}
	return writeRunsTable(a.out, runs)
}
