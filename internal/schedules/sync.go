package schedules

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/dreamdata/destination-aws-s3/internal/config"
	"github.com/dreamdata/destination-aws-s3/workflows"
)

// Defaults of the schedule policies.
const (
	// DefaultCatchupWindow: a dump missed while the cluster was down runs if the cluster is
	// back within this window; older misses are skipped (the next dump is due soon anyway).
	DefaultCatchupWindow = time.Hour
	// DefaultJitter is the jitter window "starter schedules sync" writes unless told
	// otherwise: each scheduled start is delayed by a random amount below it, so the fleet's
	// 04:00 dumps do not all start in the same second. (The zero Options write none.)
	DefaultJitter = 10 * time.Minute
	// MaxWindow bounds the jitter and the spread: dumps run up to twice a day.
	MaxWindow = 6 * time.Hour
	// DefaultConcurrency is how many schedule RPCs a sync has in flight at once.
	DefaultConcurrency = 24
	// fingerprintMemo holds a hash of the desired schedule, so sync can tell "unchanged"
	// without comparing every field the server may normalise.
	fingerprintMemo = "config_fingerprint"
	// fingerprintVersion changes whenever what a schedule is made of changes, so the next
	// sync rewrites every schedule once. 3: the task queue, the per-account offset (spread)
	// and the capped jitter.
	fingerprintVersion = 3
	// maxSyncErrors stops a sync that keeps failing (a server down, a namespace missing)
	// instead of reporting the same error for every account.
	maxSyncErrors = 20
)

// Options are what every schedule is made of, besides its account.
type Options struct {
	Overlap       enumspb.ScheduleOverlapPolicy // default SKIP
	CatchupWindow time.Duration                 // default DefaultCatchupWindow
	// Jitter delays each scheduled start by a random amount below it (Temporal's schedule
	// jitter), so thousands of accounts' dumps do not start at once. It is capped per account
	// at half the shortest gap between the account's dump times. Zero: none.
	Jitter time.Duration
	// Spread moves every dump time of an account by a fixed offset below it, derived from a
	// hash of the account id (whole minutes): one account always dumps at the same minute,
	// and a fleet spreads evenly over the window. Zero: none.
	Spread time.Duration
	// TaskQueue is where the scheduled dumps run; default workflows.TaskQueue.
	TaskQueue string
}

func (o Options) withDefaults() Options {
	if o.Overlap == enumspb.SCHEDULE_OVERLAP_POLICY_UNSPECIFIED {
		o.Overlap = enumspb.SCHEDULE_OVERLAP_POLICY_SKIP
	}
	if o.CatchupWindow == 0 {
		o.CatchupWindow = DefaultCatchupWindow
	}
	if o.TaskQueue == "" {
		o.TaskQueue = workflows.TaskQueue
	}
	return o
}

// ValidateWindow checks a jitter or spread window.
func ValidateWindow(d time.Duration) error {
	if d < 0 || d > MaxWindow {
		return fmt.Errorf("%s must be between 0 and %s (dumps run up to twice a day)", d, MaxWindow)
	}
	return nil
}

// Offset is the account's fixed offset within a spread window: a hash of the account id
// taken modulo the window's whole minutes, so it never changes for an account (and stays
// below the window). A window under two minutes gives 0.
func Offset(account string, window time.Duration) time.Duration {
	minutes := uint32(window / time.Minute)
	if minutes < 2 {
		return 0
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(account))
	return time.Duration(h.Sum32()%minutes) * time.Minute
}

// ShiftTimes moves "HH:MM" UTC times by off, wrapping around midnight.
func ShiftTimes(times []string, off time.Duration) ([]string, error) {
	out := make([]string, 0, len(times))
	for _, t := range times {
		hm, err := time.Parse("15:04", t)
		if err != nil {
			return nil, fmt.Errorf("schedule time %q is not HH:MM", t)
		}
		m := (hm.Hour()*60 + hm.Minute() + int(off/time.Minute)) % (24 * 60)
		out = append(out, fmt.Sprintf("%02d:%02d", m/60, m%60))
	}
	return out, nil
}

// ShortestGap is the shortest time between two consecutive dumps of a daily schedule (24 h
// for one time a day).
func ShortestGap(times []string) time.Duration {
	var mins []int
	for _, t := range times {
		if hm, err := time.Parse("15:04", t); err == nil {
			mins = append(mins, hm.Hour()*60+hm.Minute())
		}
	}
	if len(mins) < 2 {
		return 24 * time.Hour
	}
	slices.Sort(mins)
	mins = slices.Compact(mins)
	shortest := mins[0] + 24*60 - mins[len(mins)-1]
	for i := 1; i < len(mins); i++ {
		shortest = min(shortest, mins[i]-mins[i-1])
	}
	return time.Duration(shortest) * time.Minute
}

// Outcome of syncing one schedule. A dry run reports what it would do with the same words.
type Outcome string

// Outcomes of Reconcile.
const (
	Created   Outcome = "created"
	Updated   Outcome = "updated"
	Unchanged Outcome = "unchanged"
	Deleted   Outcome = "deleted"
	// Kept is a schedule whose account is absent from the file, left alone (no Prune).
	Kept Outcome = "kept"
	// Failed carries the error in Result.Err.
	Failed Outcome = "failed"
)

// Outcomes in report order.
var Outcomes = []Outcome{Created, Updated, Unchanged, Deleted, Kept, Failed}

// Result is one line of a sync report.
type Result struct {
	ScheduleID string
	Account    string
	Outcome    Outcome
	// Times are the account's dump times (UTC), the spread offset included.
	Times []string
	// Offset is the account's spread offset; Jitter its jitter after the cap.
	Offset, Jitter time.Duration
	Err            error
}

// SyncOptions say how a sync runs (not what the schedules are: that is Options).
type SyncOptions struct {
	// DryRun computes the plan and changes nothing.
	DryRun bool
	// Prune deletes the schedules of accounts absent from the file; without it they are
	// kept and reported as Kept.
	Prune bool
	// Concurrency is how many schedule RPCs are in flight at once; default
	// DefaultConcurrency.
	Concurrency int
	// Progress, when set, is called after each schedule with how many of total are done.
	// It is called from several goroutines.
	Progress func(done, total int)
}

// Report is what a sync did, or would do (DryRun).
type Report struct {
	Results []Result
	DryRun  bool
	Prune   bool
}

// Count is how many results have the outcome.
func (r Report) Count(o Outcome) int {
	n := 0
	for _, x := range r.Results {
		if x.Outcome == o {
			n++
		}
	}
	return n
}

type desired struct {
	account     config.Account
	id          string
	times       []string
	offset      time.Duration
	jitter      time.Duration
	input       workflows.ExportInput
	fingerprint string
	spec        client.ScheduleSpec
	o           Options
}

func desire(f *config.File, acc config.Account, o Options) (desired, error) {
	off := Offset(acc.ID, o.Spread)
	times, err := ShiftTimes(f.ScheduleTimes(acc), off)
	if err != nil {
		return desired{}, err
	}
	cals, err := Calendars(times)
	if err != nil {
		return desired{}, err
	}
	jitter := min(o.Jitter, ShortestGap(times)/2)
	d := desired{account: acc, id: workflows.ScheduleID(acc.ID), times: times, offset: off, jitter: jitter, o: o,
		// The dump's park deadline is computed from these times: with the offset included,
		// a parked dump gives up before the account's real next dump.
		input: workflows.ExportInput{Account: acc, ScheduleTimes: times},
		spec:  client.ScheduleSpec{Calendars: cals, TimeZoneName: "UTC", Jitter: jitter}}
	h := sha256.New()
	_ = json.NewEncoder(h).Encode(struct {
		Input         workflows.ExportInput
		Times         []string
		Overlap       enumspb.ScheduleOverlapPolicy
		CatchupWindow time.Duration
		Jitter        time.Duration
		TaskQueue     string
		Version       int
	}{d.input, times, o.Overlap, o.CatchupWindow, jitter, o.TaskQueue, fingerprintVersion})
	d.fingerprint = hex.EncodeToString(h.Sum(nil))[:16]
	for i := range d.spec.Calendars {
		d.spec.Calendars[i].Comment = commentPrefix + d.fingerprint
	}
	return d, nil
}

func (d desired) action() *client.ScheduleWorkflowAction {
	return &client.ScheduleWorkflowAction{
		ID:                    d.id,
		Workflow:              workflows.ExportWorkflowName,
		Args:                  []any{d.input},
		TaskQueue:             d.o.TaskQueue,
		Memo:                  map[string]any{fingerprintMemo: d.fingerprint},
		TypedSearchAttributes: temporal.NewSearchAttributes(workflows.AttrAccountID.ValueSet(d.account.ID)),
		StaticSummary:         fmt.Sprintf("S3 dump of account %s to s3://%s", d.account.ID, d.account.Bucket),
		// A dump may run, or wait parked for a fix, until the account's next dump is due;
		// the workflow gives up parkGrace before this, so it ends failed with its cause
		// rather than timed out.
		WorkflowExecutionTimeout: LongestGap(d.times),
	}
}

func (d desired) result(o Outcome, err error) Result {
	return Result{ScheduleID: d.id, Account: d.account.ID, Outcome: o, Times: d.times, Offset: d.offset, Jitter: d.jitter, Err: err}
}

// Reconcile makes the schedules match the accounts file: it creates the schedule of a new
// account, updates one whose account or options changed, leaves the others alone, and for
// the schedules of accounts absent from the file deletes them (Prune) or reports them as
// kept. Running it twice changes nothing the second time. It lists the existing schedules
// once and keeps s.Concurrency RPCs in flight. A failing schedule does not stop the others
// (after maxSyncErrors failures the sync stops); the error sums up the failures.
func Reconcile(ctx context.Context, c client.Client, f *config.File, o Options, s SyncOptions) (Report, error) {
	o = o.withDefaults()
	rep := Report{DryRun: s.DryRun, Prune: s.Prune}
	if err := ValidateWindow(o.Jitter); err != nil {
		return rep, fmt.Errorf("jitter %w", err)
	}
	if err := ValidateWindow(o.Spread); err != nil {
		return rep, fmt.Errorf("spread %w", err)
	}
	want := make([]desired, 0, len(f.Accounts))
	wanted := map[string]bool{}
	for _, acc := range f.Accounts {
		d, err := desire(f, acc, o)
		if err != nil {
			return rep, fmt.Errorf("account %s: %w", acc.ID, err)
		}
		if wanted[d.id] {
			return rep, fmt.Errorf("account %s is in the accounts file twice", acc.ID)
		}
		wanted[d.id] = true
		want = append(want, d)
	}
	listed, err := listManaged(ctx, c)
	if err != nil {
		return rep, err
	}
	var absent []string
	for id := range listed {
		if !wanted[id] {
			absent = append(absent, id)
		}
	}
	slices.Sort(absent)

	total := len(want) + len(absent)
	results := make([]Result, total)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var done, failed atomic.Int64
	conc := s.Concurrency
	if conc <= 0 {
		conc = DefaultConcurrency
	}
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	run := func(i int, f func() Result) {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r := f()
			results[i] = r
			if r.Outcome == Failed && failed.Add(1) >= maxSyncErrors {
				cancel()
			}
			n := done.Add(1)
			if s.Progress != nil {
				s.Progress(int(n), total)
			}
		}()
	}
	sc := c.ScheduleClient()
	for i, d := range want {
		if ctx.Err() != nil {
			break
		}
		run(i, func() Result {
			fp, ok := listed[d.id]
			o, err := syncOne(ctx, sc, d, fp, ok, s.DryRun)
			if err != nil {
				return d.result(Failed, fmt.Errorf("schedule %s: %w", d.id, err))
			}
			return d.result(o, nil)
		})
	}
	for j, id := range absent {
		if ctx.Err() != nil {
			break
		}
		run(len(want)+j, func() Result {
			r := Result{ScheduleID: id, Account: strings.TrimPrefix(id, workflows.ScheduleIDPrefix), Outcome: Kept}
			if !s.Prune {
				return r
			}
			r.Outcome = Deleted
			if s.DryRun {
				return r
			}
			err := sc.GetHandle(ctx, id).Delete(ctx)
			var notFound *serviceerror.NotFound
			if err != nil && !errors.As(err, &notFound) {
				r.Outcome, r.Err = Failed, fmt.Errorf("delete schedule %s: %w", id, err)
			}
			return r
		})
	}
	wg.Wait()
	var errs []error
	for _, r := range results {
		if r.Outcome == "" {
			continue // not started: the sync stopped
		}
		rep.Results = append(rep.Results, r)
		if r.Err != nil && len(errs) < 3 {
			errs = append(errs, r.Err)
		}
	}
	if n := failed.Load(); n > 0 {
		stopped := ""
		if int(done.Load()) < total {
			stopped = fmt.Sprintf(", and it stopped after %d failures with %d of %d schedules not tried", maxSyncErrors, total-int(done.Load()), total)
		}
		return rep, fmt.Errorf("%d schedules failed to sync%s; first: %w", n, stopped, errors.Join(errs...))
	}
	if err := context.Cause(ctx); err != nil && int(done.Load()) < total {
		return rep, err
	}
	return rep, nil
}

// syncOne brings one schedule in line. listed is the fingerprint the schedule list shows
// (from visibility, which may lag), and whether it was listed at all: a listed schedule with
// the desired fingerprint is unchanged without another call; Create and Update check again.
func syncOne(ctx context.Context, sc client.ScheduleClient, d desired, listedFP string, listed, dryRun bool) (Outcome, error) {
	if listed && listedFP == d.fingerprint {
		return Unchanged, nil
	}
	var notFound *serviceerror.NotFound
	create := func() (Outcome, error) {
		if dryRun {
			return Created, nil
		}
		_, err := sc.Create(ctx, client.ScheduleOptions{
			ID:            d.id,
			Spec:          d.spec,
			Action:        d.action(),
			Overlap:       d.o.Overlap,
			CatchupWindow: d.o.CatchupWindow,
			Note:          "managed by starter schedules sync",
		})
		return Created, err
	}
	if !listed {
		o, err := create()
		if err == nil || !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
			return o, err
		}
		// Created meanwhile, or not yet visible in the list: update it instead.
	}
	h := sc.GetHandle(ctx, d.id)
	if dryRun {
		desc, err := h.Describe(ctx)
		switch {
		case errors.As(err, &notFound):
			return Created, nil
		case err != nil:
			return "", err
		case fingerprintOf(desc) == d.fingerprint:
			return Unchanged, nil
		}
		return Updated, nil
	}
	outcome := Updated
	err := h.Update(ctx, client.ScheduleUpdateOptions{DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
		if fingerprintOf(&in.Description) == d.fingerprint {
			outcome = Unchanged
			return nil, temporal.ErrSkipScheduleUpdate
		}
		s := in.Description.Schedule
		s.Action = d.action()
		spec := d.spec
		s.Spec = &spec
		if s.Policy == nil {
			s.Policy = &client.SchedulePolicies{}
		}
		s.Policy.Overlap = d.o.Overlap
		s.Policy.CatchupWindow = d.o.CatchupWindow
		return &client.ScheduleUpdate{Schedule: &s}, nil
	}})
	if errors.As(err, &notFound) {
		return create() // deleted since it was listed
	}
	if err != nil {
		return "", err
	}
	return outcome, nil
}

// commentPrefix starts the comment of every calendar sync writes; the fingerprint follows.
// Schedule lists carry the spec, so a sync tells an unchanged schedule from the list alone.
const commentPrefix = "managed by starter schedules sync, config "

// listedFingerprint is the fingerprint in a listed schedule's calendar comments.
func listedFingerprint(spec *client.ScheduleSpec) string {
	if spec == nil || len(spec.Calendars) == 0 {
		return ""
	}
	fp, ok := strings.CutPrefix(spec.Calendars[0].Comment, commentPrefix)
	if !ok {
		return ""
	}
	for _, c := range spec.Calendars[1:] {
		if c.Comment != spec.Calendars[0].Comment {
			return ""
		}
	}
	return fp
}

// listManaged lists the schedules this service manages (once, paging through visibility),
// with the fingerprint each one's spec carries.
func listManaged(ctx context.Context, c client.Client) (map[string]string, error) {
	it, err := c.ScheduleClient().List(ctx, client.ScheduleListOptions{PageSize: 1000})
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	out := map[string]string{}
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("list schedules: %w", err)
		}
		if strings.HasPrefix(e.ID, workflows.ScheduleIDPrefix) {
			out[e.ID] = listedFingerprint(e.Spec)
		}
	}
	return out, nil
}
