package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/dreamdata/destination-aws-s3/internal/config"
	"github.com/dreamdata/destination-aws-s3/internal/schedules"
	"github.com/dreamdata/destination-aws-s3/internal/settings"
	"github.com/dreamdata/destination-aws-s3/workflows"
)

const syncHelp = `starter schedules sync --accounts FILE [--dry-run] [--prune] [--jitter 10m] [--spread 0] ...

Makes the Temporal schedules match the accounts file: creates the schedule of a new account,
updates one whose account or settings changed, and leaves the rest alone. Running it twice
changes nothing the second time. A paused schedule stays paused (and keeps its note) when it
is updated. Progress goes to stderr; one line per schedule and the totals to stdout.

Schedules of accounts absent from the file are NOT deleted unless --prune is given: they are
listed as "kept". Check what a sync would do first with --dry-run, which changes nothing
(a wrong file with --prune deletes the schedules of every account it lacks).

Each schedule starts the account's dump at its plan's UTC times (paid 04:00 and 15:00, free
04:00, or the account's schedule_times), moved by the account's --spread offset, each start
delayed at random by up to --jitter. The dump's folder is the time it really starts.

--jitter (default 10m): Temporal delays each scheduled start by a random amount below it,
  so the fleet's dumps do not all start in the same second; capped per account at half the
  shortest gap between its dump times. 0 turns it off.
--spread (default 0, e.g. 30m): moves all of an account's dump times by a fixed offset below
  the window, from a hash of the account id (whole minutes): one account always dumps at the
  same minute (04:17 and 15:17, say), and the fleet spreads evenly over the window.

--overlap decides what happens when a dump is due while the previous one still runs:
  skip        (default) the new one is skipped; the next scheduled time takes over
  buffer_one  the new one waits and starts when the running one ends (at most one waits)
  buffer_all  every due dump waits its turn
allow_all, cancel_other and terminate_other are refused: they can run two dumps of one
account at once, and two dumps in the same minute would write into the same folder.

--catchup-window: when the Temporal cluster was down at a scheduled time, the missed dump
still runs if the cluster is back within this window; otherwise it is skipped and the next
scheduled dump delivers (minimum 10s).

--task-queue: where the scheduled dumps run; the workers must poll the same queue (the
worker's --task-queue, env TASK_QUEUE).`

// syncFlags are the schedule settings of a sync, as typed.
type syncFlags struct {
	overlap                 string
	catchup, jitter, spread time.Duration
	taskQueue               string
}

func (a *app) schedulesSync(ctx context.Context, args []string) error {
	c := a.newCommand("schedules sync", syncHelp, true)
	accounts := c.fs.String("accounts", settings.Env("ACCOUNTS_FILE", ""), "accounts file, YAML or JSON (env ACCOUNTS_FILE)")
	var sf syncFlags
	c.fs.StringVar(&sf.overlap, "overlap", "skip", "overlap policy: skip, buffer_one or buffer_all")
	c.fs.DurationVar(&sf.catchup, "catchup-window", schedules.DefaultCatchupWindow, "how late a missed dump may still start after an outage (minimum 10s)")
	c.fs.DurationVar(&sf.jitter, "jitter", c.envDuration("SCHEDULE_JITTER", schedules.DefaultJitter), "delay each scheduled start at random by up to this (0 to 6h; env SCHEDULE_JITTER)")
	c.fs.DurationVar(&sf.spread, "spread", c.envDuration("SCHEDULE_SPREAD", 0), "move each account's dump times by a fixed per-account offset below this window (0 to 6h; env SCHEDULE_SPREAD)")
	c.fs.StringVar(&sf.taskQueue, "task-queue", settings.Env("TASK_QUEUE", workflows.TaskQueue), "task queue the scheduled dumps run on (env TASK_QUEUE)")
	dryRun := c.fs.Bool("dry-run", false, "print what the sync would do, change nothing")
	prune := c.fs.Bool("prune", false, "delete the schedules of accounts absent from the file")
	concurrency := c.fs.Int("concurrency", schedules.DefaultConcurrency, "schedule calls in flight at once (1-128)")
	if _, err := c.parse(args, false); err != nil {
		return err
	}
	opts, err := syncOptions(sf)
	if err != nil {
		return err
	}
	if *concurrency < 1 || *concurrency > 128 {
		return usagef("schedules sync: --concurrency %d must be between 1 and 128", *concurrency)
	}
	if *accounts == "" {
		return usagef("schedules sync: --accounts FILE is required (or set ACCOUNTS_FILE)")
	}
	f, err := config.Load(*accounts)
	if err != nil {
		return err
	}
	cl, err := c.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	prog := newProgress(a.errOut, "sync")
	rep, err := schedules.Reconcile(ctx, cl, f, opts, schedules.SyncOptions{
		DryRun: *dryRun, Prune: *prune, Concurrency: *concurrency, Progress: prog.update})
	prog.finish()
	writeSyncReport(a.out, opts, rep)
	return err
}

// syncOptions turns the sync flags into schedule options.
func syncOptions(f syncFlags) (schedules.Options, error) {
	p, err := schedules.ParseOverlap(f.overlap)
	if err != nil {
		return schedules.Options{}, usagef("schedules sync: --overlap: %v", err)
	}
	if err := schedules.ValidateCatchupWindow(f.catchup); err != nil {
		return schedules.Options{}, usagef("schedules sync: --catchup-window: %v", err)
	}
	if err := schedules.ValidateWindow(f.jitter); err != nil {
		return schedules.Options{}, usagef("schedules sync: --jitter %v", err)
	}
	if err := schedules.ValidateWindow(f.spread); err != nil {
		return schedules.Options{}, usagef("schedules sync: --spread %v", err)
	}
	if strings.TrimSpace(f.taskQueue) == "" {
		return schedules.Options{}, usagef("schedules sync: --task-queue must not be empty")
	}
	return schedules.Options{Overlap: p, CatchupWindow: f.catchup, Jitter: f.jitter, Spread: f.spread, TaskQueue: f.taskQueue}, nil
}

// planWords are a dry run's words for the outcomes.
var planWords = map[schedules.Outcome]string{
	schedules.Created: "create", schedules.Updated: "update", schedules.Unchanged: "unchanged",
	schedules.Deleted: "delete", schedules.Kept: "kept", schedules.Failed: "failed",
}

// writeSyncReport prints one line per schedule and the totals.
func writeSyncReport(w io.Writer, o schedules.Options, rep schedules.Report) {
	fmt.Fprintf(w, "policies: overlap %s, catch-up window %s, jitter %s, spread %s, task queue %s\n",
		schedules.OverlapName(o.Overlap), o.CatchupWindow, o.Jitter, o.Spread, o.TaskQueue)
	if rep.DryRun {
		fmt.Fprintln(w, "dry run: the plan below changes nothing")
	}
	for _, r := range rep.Results {
		word := string(r.Outcome)
		if rep.DryRun {
			word = planWords[r.Outcome]
		}
		switch r.Outcome {
		case schedules.Kept:
			fmt.Fprintf(w, "%-9s %s  (absent from the file; --prune deletes)\n", word, r.ScheduleID)
		case schedules.Deleted:
			fmt.Fprintf(w, "%-9s %s  (absent from the file)\n", word, r.ScheduleID)
		case schedules.Failed:
			fmt.Fprintf(w, "%-9s %s  %v\n", word, r.ScheduleID, r.Err)
		default:
			fmt.Fprintf(w, "%-9s %s  %s\n", word, r.ScheduleID, strings.Join(r.Times, ","))
		}
	}
	var parts []string
	for _, o := range schedules.Outcomes {
		n := rep.Count(o)
		if n == 0 && (o == schedules.Failed || (o == schedules.Kept && rep.Prune) || (o == schedules.Deleted && !rep.Prune)) {
			continue
		}
		word := string(o)
		if rep.DryRun {
			word = planWords[o]
		}
		parts = append(parts, fmt.Sprintf("%s %d", word, n))
	}
	head := "total"
	if rep.DryRun {
		head = "plan (dry run, nothing changed)"
	}
	fmt.Fprintf(w, "%s: %s: %s\n", head, plural(len(rep.Results), "schedule"), strings.Join(parts, ", "))
	if k := rep.Count(schedules.Kept); k > 0 {
		fmt.Fprintf(w, "kept %s of accounts absent from the file; check with --dry-run --prune, then delete with --prune\n", plural(k, "schedule"))
	}
}

const listHelp = `starter schedules list [--json]

Lists every schedule this service manages (ids s3-export-<account>), described directly by
the Temporal server: whether it is paused and the note saying why, its UTC times of day,
overlap policy, the next runs (UTC) and whether a dump is running now.`

func (a *app) schedulesList(ctx context.Context, args []string) error {
	c := a.newCommand("schedules list", listHelp, true)
	asJSON := c.fs.Bool("json", false, "print every detail as JSON")
	if _, err := c.parse(args, false); err != nil {
		return err
	}
	cl, err := c.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	infos, err := schedules.List(ctx, cl)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(a.out, infos)
	}
	if len(infos) == 0 {
		fmt.Fprintln(a.out, "no schedules: create them with `starter schedules sync --accounts FILE`")
		return nil
	}
	return writeScheduleTable(a.out, infos)
}

const pauseHelp = `starter schedules pause ACCOUNT --note TEXT

Pauses the account's schedule: no dump starts at the scheduled times until it is unpaused.
A dump already running continues (see "starter status ACCOUNT"). The note is required: it
tells the next operator why (it shows in "schedules list" and in the Temporal Web UI).
Scheduled times missed while paused are not caught up; use "schedules backfill" for that.`

const unpauseHelp = `starter schedules unpause ACCOUNT [--note TEXT]

Resumes the account's schedule from its next scheduled time. The note replaces the pause
note. Dumps missed while paused are not taken; "schedules backfill" takes them.`

func (a *app) schedulesPause(ctx context.Context, args []string, pause bool) error {
	name, help, def := "schedules pause", pauseHelp, ""
	if !pause {
		name, help, def = "schedules unpause", unpauseHelp, "unpaused via starter"
	}
	c := a.newCommand(name, help, true)
	note := c.fs.String("note", def, "why (shown with the schedule)")
	account, err := c.parse(args, true)
	if err != nil {
		return err
	}
	if strings.TrimSpace(*note) == "" {
		return usagef("%s: --note TEXT is required: say why the schedule is paused, e.g. --note \"customer rotating their role, ticket 123\"", name)
	}
	cl, err := c.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	var in schedules.Info
	if pause {
		in, err = schedules.Pause(ctx, cl, account, *note)
	} else {
		in, err = schedules.Unpause(ctx, cl, account, *note)
	}
	if err != nil {
		return err
	}
	state := "unpaused"
	if in.Paused {
		state = "paused"
	}
	fmt.Fprintf(a.out, "%s %s (note: %q)\n", state, in.ScheduleID, in.Note)
	if !in.Paused && len(in.NextRuns) > 0 {
		fmt.Fprintf(a.out, "next run: %s\n", utc(in.NextRuns[0]))
	}
	if len(in.Running) > 0 {
		fmt.Fprintf(a.out, "a dump is running and continues: %s (starter status %s)\n", in.Running[0], account)
	}
	return nil
}

const triggerHelp = `starter schedules trigger ACCOUNT

Starts a dump of the account now, through its schedule (so one dump at a time still holds),
and prints its workflow id without waiting. Refused while a dump of the account is running.
Same as "starter run ACCOUNT".`

func (a *app) schedulesTrigger(ctx context.Context, args []string) error {
	return a.startDump(ctx, "schedules trigger", triggerHelp, args, false)
}

const backfillHelp = `starter schedules backfill ACCOUNT --from RFC3339 --to RFC3339

Takes now the dumps the account's schedule would have taken between --from and --to (both
included), e.g. after a pause or an outage longer than the catch-up window. The schedule's
overlap policy applies: with skip (the default) the first dump starts and the others are
skipped while it runs; with buffer_one one more follows; with buffer_all all run in turn.

Every backfilled dump exports the data as it is NOW into a folder named after the time it
starts: backfill replaces missed deliveries, it does not reproduce old data. Ranges are
limited to 31 days and must lie in the past. With the schedule's jitter, a scheduled time
counts at its jittered time, so the range is widened by the jitter (never up to the next
scheduled time): a range of 03:59 to 04:01 takes the 04:00 dump.

Example: starter schedules backfill acme --from 2024-05-01T00:00:00Z --to 2024-05-01T23:59:59Z`

func (a *app) schedulesBackfill(ctx context.Context, args []string) error {
	c := a.newCommand("schedules backfill", backfillHelp, true)
	fromS := c.fs.String("from", "", "start of the period, RFC 3339 (e.g. 2024-05-01T00:00:00Z)")
	toS := c.fs.String("to", "", "end of the period, RFC 3339")
	account, err := c.parse(args, true)
	if err != nil {
		return err
	}
	from, to, err := backfillRange(*fromS, *toS, a.now())
	if err != nil {
		return err
	}
	cl, err := c.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	res, err := schedules.Backfill(ctx, cl, account, from, to)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.out, "backfill of %s from %s to %s (overlap %s)\n", res.ScheduleID, utc(from), utc(to), res.Overlap)
	if res.Times != nil {
		var ts []string
		for _, t := range res.Times {
			ts = append(ts, utc(t))
		}
		fmt.Fprintf(a.out, "scheduled times in the period: %s\n", strings.Join(ts, ", "))
		if len(res.Times) > 1 && res.Overlap == "skip" {
			fmt.Fprintln(a.out, "overlap skip: the first starts now, the others are skipped while it runs")
		}
	}
	if len(res.Started) == 0 {
		fmt.Fprintf(a.out, "no dump has started yet; follow with `starter runs %s`\n", account)
	}
	for _, s := range res.Started {
		fmt.Fprintf(a.out, "started dump %s (for %s)\n", s.WorkflowID, utc(s.ScheduledAt))
	}
	return nil
}

// backfillRange parses and checks the backfill flags.
func backfillRange(fromS, toS string, now time.Time) (time.Time, time.Time, error) {
	if fromS == "" || toS == "" {
		return time.Time{}, time.Time{}, usagef("schedules backfill: --from and --to are both required, in RFC 3339 (e.g. --from 2024-05-01T00:00:00Z --to 2024-05-01T23:59:59Z)")
	}
	from, err := time.Parse(time.RFC3339, fromS)
	if err != nil {
		return time.Time{}, time.Time{}, usagef("schedules backfill: --from %q is not RFC 3339 (e.g. 2024-05-01T00:00:00Z)", fromS)
	}
	to, err := time.Parse(time.RFC3339, toS)
	if err != nil {
		return time.Time{}, time.Time{}, usagef("schedules backfill: --to %q is not RFC 3339 (e.g. 2024-05-01T23:59:59Z)", toS)
	}
	if err := schedules.ValidateBackfillRange(from, to, now); err != nil {
		return time.Time{}, time.Time{}, usagef("schedules backfill: %v", err)
	}
	return from, to, nil
}

func writeJSON(w interface{ Write([]byte) (int, error) }, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
