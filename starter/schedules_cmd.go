package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/dreamdata/destination-aws-s3/internal/config"
	"github.com/dreamdata/destination-aws-s3/internal/schedules"
	"github.com/dreamdata/destination-aws-s3/internal/settings"
)

const syncHelp = `starter schedules sync --accounts FILE [--overlap skip] [--catchup-window 1h] [--jitter 0]

Makes the Temporal schedules match the accounts file: creates the schedule of a new account,
updates one whose account or policies changed, deletes the schedules of accounts no longer in
the file, and leaves the rest alone. Running it twice changes nothing the second time. A
paused schedule stays paused (and keeps its note) when it is updated.

Each schedule starts the account's dump at its plan's UTC times (paid 04:00 and 15:00, free
04:00, or the account's schedule_times).

--overlap decides what happens when a dump is due while the previous one still runs:
  skip        (default) the new one is skipped; the next scheduled time takes over
  buffer_one  the new one waits and starts when the running one ends (at most one waits)
  buffer_all  every due dump waits its turn
allow_all, cancel_other and terminate_other are refused: they can run two dumps of one
account at once, and two dumps in the same minute would write into the same folder.

--catchup-window: when the Temporal cluster was down at a scheduled time, the missed dump
still runs if the cluster is back within this window; otherwise it is skipped and the next
scheduled dump delivers (minimum 10s).`

func (a *app) schedulesSync(ctx context.Context, args []string) error {
	c := a.newCommand("schedules sync", syncHelp, true)
	accounts := c.fs.String("accounts", settings.Env("ACCOUNTS_FILE", ""), "accounts file, YAML or JSON (env ACCOUNTS_FILE)")
	overlap := c.fs.String("overlap", "skip", "overlap policy: skip, buffer_one or buffer_all")
	catchup := c.fs.Duration("catchup-window", schedules.DefaultCatchupWindow, "how late a missed dump may still start after an outage (minimum 10s)")
	jitter := c.fs.Duration("jitter", 0, "spread each account's start at random over this window (e.g. 10m) so thousands of dumps do not start at once")
	if _, err := c.parse(args, false); err != nil {
		return err
	}
	opts, err := syncOptions(*overlap, *catchup, *jitter)
	if err != nil {
		return err
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
	results, err := schedules.Sync(ctx, cl, f, opts)
	fmt.Fprintf(a.out, "policies: overlap %s, catch-up window %s, jitter %s\n", schedules.OverlapName(opts.Overlap), opts.CatchupWindow, opts.Jitter)
	for _, r := range results {
		fmt.Fprintf(a.out, "%-9s %s  %s\n", r.Outcome, r.ScheduleID, strings.Join(r.Times, ","))
	}
	return err
}

// syncOptions turns the sync flags into schedule options.
func syncOptions(overlap string, catchup, jitter time.Duration) (schedules.Options, error) {
	p, err := schedules.ParseOverlap(overlap)
	if err != nil {
		return schedules.Options{}, usagef("schedules sync: --overlap: %v", err)
	}
	if err := schedules.ValidateCatchupWindow(catchup); err != nil {
		return schedules.Options{}, usagef("schedules sync: --catchup-window: %v", err)
	}
	if jitter < 0 || jitter > 6*time.Hour {
		return schedules.Options{}, usagef("schedules sync: --jitter %s must be between 0 and 6h (dumps run twice a day)", jitter)
	}
	return schedules.Options{Overlap: p, CatchupWindow: catchup, Jitter: jitter}, nil
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
limited to 31 days and must lie in the past.

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
