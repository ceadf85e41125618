package schedules

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/dreamdata/destination-aws-s3/internal/config"
	"github.com/dreamdata/destination-aws-s3/workflows"
)

// MinCatchupWindow is the shortest catch-up window the Temporal server honours.
const MinCatchupWindow = 10 * time.Second

// MaxBackfillRange bounds a backfill: every backfilled dump exports the data as it is now
// (into a folder named after the time it runs), so long ranges only repeat the same data.
const MaxBackfillRange = 31 * 24 * time.Hour

var overlapByName = map[string]enumspb.ScheduleOverlapPolicy{
	"skip":            enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
	"buffer_one":      enumspb.SCHEDULE_OVERLAP_POLICY_BUFFER_ONE,
	"buffer_all":      enumspb.SCHEDULE_OVERLAP_POLICY_BUFFER_ALL,
	"cancel_other":    enumspb.SCHEDULE_OVERLAP_POLICY_CANCEL_OTHER,
	"terminate_other": enumspb.SCHEDULE_OVERLAP_POLICY_TERMINATE_OTHER,
	"allow_all":       enumspb.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL,
}

// SafeOverlapPolicies are the overlap policies that keep one dump of an account at a time.
var SafeOverlapPolicies = []string{"skip", "buffer_one", "buffer_all"}

// ParseOverlap reads an overlap policy as operators type it (skip, buffer_one, BufferOne,
// buffer-one, ...). It refuses the policies that can run two dumps of an account at once:
// the workflow gives every dump its own folder only because dumps of an account never
// overlap (allow_all runs them side by side; cancel_other and terminate_other start the new
// dump while the old one's activities may still be uploading, and both can land in the same
// minute's folder).
func ParseOverlap(s string) (enumspb.ScheduleOverlapPolicy, error) {
	n := strings.ToLower(strings.NewReplacer("-", "_", " ", "_").Replace(strings.TrimSpace(s)))
	n = strings.TrimPrefix(n, "schedule_overlap_policy_")
	switch n { // the Temporal CLI's CamelCase spellings
	case "bufferone":
		n = "buffer_one"
	case "bufferall":
		n = "buffer_all"
	case "cancelother":
		n = "cancel_other"
	case "terminateother":
		n = "terminate_other"
	case "allowall":
		n = "allow_all"
	}
	p, ok := overlapByName[n]
	if !ok {
		return 0, fmt.Errorf("unknown overlap policy %q: use one of %s", s, strings.Join(SafeOverlapPolicies, ", "))
	}
	for _, safe := range SafeOverlapPolicies {
		if n == safe {
			return p, nil
		}
	}
	return 0, fmt.Errorf("overlap policy %q is refused: it can run two dumps of one account at the same time, and two dumps "+
		"started in the same minute would write into the same folder (the exporter relies on one dump at a time per "+
		"account); use one of %s", s, strings.Join(SafeOverlapPolicies, ", "))
}

// OverlapName is the short name of a policy (skip, buffer_one, ...).
func OverlapName(p enumspb.ScheduleOverlapPolicy) string {
	for n, v := range overlapByName {
		if v == p {
			return n
		}
	}
	if p == enumspb.SCHEDULE_OVERLAP_POLICY_UNSPECIFIED {
		return "skip"
	}
	return strings.ToLower(p.String())
}

// ValidateCatchupWindow checks a catch-up window.
func ValidateCatchupWindow(d time.Duration) error {
	if d < MinCatchupWindow {
		return fmt.Errorf("catch-up window %s is too short: Temporal's minimum is %s (the default is %s)", d, MinCatchupWindow, DefaultCatchupWindow)
	}
	return nil
}

// NoScheduleError says an account has no schedule, and which accounts have one.
type NoScheduleError struct {
	Account   string
	Scheduled []string
}

func (e *NoScheduleError) Error() string {
	known := "none yet"
	if n := len(e.Scheduled); n > 0 {
		shown := e.Scheduled
		if n > 20 {
			shown = shown[:20]
		}
		known = strings.Join(shown, ", ")
		if n > 20 {
			known += fmt.Sprintf(" and %d more", n-20)
		}
	}
	return fmt.Sprintf("account %q has no schedule (accounts with a schedule: %s): check the account id, or add the account to the accounts file and run `starter schedules sync --accounts FILE`", e.Account, known)
}

// handle describes an account's schedule, turning "not found" into a NoScheduleError.
func handle(ctx context.Context, c client.Client, account string) (client.ScheduleHandle, *client.ScheduleDescription, error) {
	if err := config.ValidateAccountID(account); err != nil {
		return nil, nil, fmt.Errorf("account: %w", err)
	}
	h := c.ScheduleClient().GetHandle(ctx, workflows.ScheduleID(account))
	d, err := h.Describe(ctx)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		e := &NoScheduleError{Account: account}
		if ids, lerr := ListIDs(ctx, c); lerr == nil {
			for _, id := range ids {
				e.Scheduled = append(e.Scheduled, strings.TrimPrefix(id, workflows.ScheduleIDPrefix))
			}
		}
		return nil, nil, e
	}
	if err != nil {
		return nil, nil, fmt.Errorf("describe schedule %s: %w", workflows.ScheduleID(account), err)
	}
	return h, d, nil
}

// Info is what an operator wants to know about one schedule.
type Info struct {
	ScheduleID    string   `json:"schedule_id"`
	Account       string   `json:"account"`
	Paused        bool     `json:"paused"`
	Note          string   `json:"note"`
	TimesUTC      []string `json:"times_utc"`
	Overlap       string   `json:"overlap"`
	CatchupWindow string   `json:"catchup_window"`
	Jitter        string   `json:"jitter,omitempty"`
	// TaskQueue is where the schedule starts the account's dumps.
	TaskQueue string      `json:"task_queue,omitempty"`
	NextRuns  []time.Time `json:"next_runs"`
	// Running are the ids of the account's dumps the schedule has running now.
	Running []string `json:"running,omitempty"`
	// LastRun is the most recent dump the schedule started.
	LastRun *Action `json:"last_run,omitempty"`
}

// Action is a dump a schedule started.
type Action struct {
	WorkflowID  string    `json:"workflow_id"`
	ScheduledAt time.Time `json:"scheduled_at"`
	StartedAt   time.Time `json:"started_at"`
}

func infoFrom(id string, d *client.ScheduleDescription) Info {
	in := Info{ScheduleID: id, Account: strings.TrimPrefix(id, workflows.ScheduleIDPrefix), Overlap: OverlapName(0)}
	if s := d.Schedule.State; s != nil {
		in.Paused, in.Note = s.Paused, s.Note
	}
	if p := d.Schedule.Policy; p != nil {
		in.Overlap = OverlapName(p.Overlap)
		in.CatchupWindow = p.CatchupWindow.String()
	}
	if sp := d.Schedule.Spec; sp != nil {
		in.TimesUTC = calendarTimes(sp.Calendars)
		if sp.Jitter > 0 {
			in.Jitter = sp.Jitter.String()
		}
	}
	if a, ok := d.Schedule.Action.(*client.ScheduleWorkflowAction); ok {
		in.TaskQueue = a.TaskQueue
	}
	for _, t := range d.Info.NextActionTimes {
		in.NextRuns = append(in.NextRuns, t.UTC())
	}
	for _, w := range d.Info.RunningWorkflows {
		in.Running = append(in.Running, w.WorkflowID)
	}
	if n := len(d.Info.RecentActions); n > 0 {
		a := d.Info.RecentActions[n-1]
		if a.StartWorkflowResult != nil {
			in.LastRun = &Action{WorkflowID: a.StartWorkflowResult.WorkflowID, ScheduledAt: a.ScheduleTime.UTC(), StartedAt: a.ActualTime.UTC()}
		}
	}
	return in
}

func calendarTimes(cals []client.ScheduleCalendarSpec) []string {
	var out []string
	for _, c := range cals {
		if len(c.Hour) == 1 && len(c.Minute) == 1 && c.Hour[0].End <= c.Hour[0].Start && c.Minute[0].End <= c.Minute[0].Start {
			out = append(out, fmt.Sprintf("%02d:%02d", c.Hour[0].Start, c.Minute[0].Start))
		} else {
			out = append(out, "custom")
		}
	}
	sort.Strings(out)
	return out
}

// Describe returns the schedule of an account.
func Describe(ctx context.Context, c client.Client, account string) (Info, error) {
	_, d, err := handle(ctx, c, account)
	if err != nil {
		return Info{}, err
	}
	return infoFrom(workflows.ScheduleID(account), d), nil
}

// List describes every schedule this service manages, ordered by account. Each schedule is
// described directly (not from the list's visibility copy), so a pause shows at once.
func List(ctx context.Context, c client.Client) ([]Info, error) {
	ids, err := ListIDs(ctx, c)
	if err != nil {
		return nil, err
	}
	out := make([]*Info, len(ids))
	errs := make([]error, len(ids))
	sem := make(chan struct{}, 8) // bounded: thousands of accounts must not open thousands of calls
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			d, err := c.ScheduleClient().GetHandle(ctx, id).Describe(ctx)
			var notFound *serviceerror.NotFound
			switch {
			case errors.As(err, &notFound): // deleted since it was listed
			case err != nil:
				errs[i] = fmt.Errorf("describe schedule %s: %w", id, err)
			default:
				in := infoFrom(id, d)
				out[i] = &in
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var infos []Info
	for _, in := range out {
		if in != nil {
			infos = append(infos, *in)
		}
	}
	return infos, nil
}

// Pause stops the schedule of an account from starting dumps; a running dump continues.
// The note says why, for the next operator.
func Pause(ctx context.Context, c client.Client, account, note string) (Info, error) {
	h, _, err := handle(ctx, c, account)
	if err != nil {
		return Info{}, err
	}
	if err := h.Pause(ctx, client.SchedulePauseOptions{Note: note}); err != nil {
		return Info{}, fmt.Errorf("pause schedule %s: %w", h.GetID(), err)
	}
	return Describe(ctx, c, account)
}

// Unpause resumes the schedule of an account. Times missed while paused are not caught up;
// backfill them if the customer needs those dumps.
func Unpause(ctx context.Context, c client.Client, account, note string) (Info, error) {
	h, _, err := handle(ctx, c, account)
	if err != nil {
		return Info{}, err
	}
	if err := h.Unpause(ctx, client.ScheduleUnpauseOptions{Note: note}); err != nil {
		return Info{}, fmt.Errorf("unpause schedule %s: %w", h.GetID(), err)
	}
	return Describe(ctx, c, account)
}

// ScheduledTimes lists the times a spec of daily UTC calendars (the kind Sync writes) fires in
// [from, to], both included, as a Temporal backfill evaluates them. ok is false for specs of
// another kind.
func ScheduledTimes(spec *client.ScheduleSpec, from, to time.Time) (times []time.Time, ok bool) {
	if spec == nil || len(spec.Intervals) > 0 || len(spec.CronExpressions) > 0 || len(spec.Skip) > 0 ||
		(spec.TimeZoneName != "" && spec.TimeZoneName != "UTC") {
		return nil, false
	}
	type hm struct{ h, m, s int }
	var daily []hm
	full := func(r []client.ScheduleRange, lo, hi int) bool {
		return len(r) == 0 || (len(r) == 1 && r[0].Start <= lo && r[0].End >= hi && r[0].Step <= 1)
	}
	single := func(r []client.ScheduleRange) (int, bool) {
		if len(r) == 0 {
			return 0, true
		}
		if len(r) == 1 && r[0].End <= r[0].Start {
			return r[0].Start, true
		}
		return 0, false
	}
	for _, c := range spec.Calendars {
		h, ok1 := single(c.Hour)
		m, ok2 := single(c.Minute)
		s, ok3 := single(c.Second)
		if !ok1 || !ok2 || !ok3 || !full(c.DayOfMonth, 1, 31) || !full(c.Month, 1, 12) || !full(c.DayOfWeek, 0, 6) || len(c.Year) > 0 {
			return nil, false
		}
		daily = append(daily, hm{h, m, s})
	}
	from, to = from.UTC(), to.UTC()
	for day := time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, time.UTC); !day.After(to); day = day.AddDate(0, 0, 1) {
		for _, t := range daily {
			at := day.Add(time.Duration(t.h)*time.Hour + time.Duration(t.m)*time.Minute + time.Duration(t.s)*time.Second)
			if !at.Before(from) && !at.After(to) {
				times = append(times, at)
			}
		}
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	return times, true
}

// BackfillEnd is the end of the range to ask the server to backfill so that every scheduled
// time in [from, to] is taken. The server matches a scheduled time by its jittered time, so
// with jitter a scheduled time near the end of the range (04:00, jittered to 04:07) would be
// missed by a range ending at 04:01: the end moves by the jitter, but stays before the next
// scheduled time after to (sync caps the jitter at half the gap between dumps, so the
// jittered times of the range still fit).
func BackfillEnd(spec *client.ScheduleSpec, to time.Time) time.Time {
	if spec == nil || spec.Jitter <= 0 {
		return to
	}
	end := to.Add(spec.Jitter)
	if next, ok := ScheduledTimes(spec, to.Add(time.Second), end); ok && len(next) > 0 {
		end = next[0].Add(-time.Second)
	} else if !ok {
		return to // a spec of another kind: leave the range as asked
	}
	if end.Before(to) {
		return to
	}
	return end
}

// BackfillResult says what a backfill asked for and what it started.
type BackfillResult struct {
	ScheduleID string      `json:"schedule_id"`
	Overlap    string      `json:"overlap"`
	Times      []time.Time `json:"scheduled_times"`
	// Started are the dumps that had started when Backfill returned.
	Started []Action `json:"started"`
}

// ValidateBackfillRange checks a backfill range before anything is asked of the server.
func ValidateBackfillRange(from, to, now time.Time) error {
	switch {
	case from.IsZero() || to.IsZero():
		return errors.New("backfill needs both --from and --to (RFC 3339, e.g. 2024-05-01T03:00:00Z)")
	case !from.Before(to):
		return fmt.Errorf("--from %s is not before --to %s", from.Format(time.RFC3339), to.Format(time.RFC3339))
	case to.After(now):
		return fmt.Errorf("--to %s is in the future: backfill takes the dumps of a past period (the schedule takes future ones by itself; `starter schedules trigger` runs one now)", to.Format(time.RFC3339))
	case to.Sub(from) > MaxBackfillRange:
		return fmt.Errorf("the range %s .. %s is longer than %s: every backfilled dump exports the data as it is now, so a long range only repeats it; narrow the range", from.Format(time.RFC3339), to.Format(time.RFC3339), MaxBackfillRange)
	}
	return nil
}

// Backfill takes, now, the dumps the account's schedule would have taken between from and to
// (both included), under the schedule's own overlap policy: with skip, the first starts and
// the rest are skipped while it runs; with buffer_one one more waits; with buffer_all they run
// one after another. Each dump exports the data as it is now, into a folder named after the
// time it starts: backfill replaces missed deliveries, it does not reproduce old data.
func Backfill(ctx context.Context, c client.Client, account string, from, to time.Time) (BackfillResult, error) {
	if err := ValidateBackfillRange(from, to, time.Now()); err != nil {
		return BackfillResult{}, err
	}
	h, d, err := handle(ctx, c, account)
	if err != nil {
		return BackfillResult{}, err
	}
	overlap := enumspb.SCHEDULE_OVERLAP_POLICY_SKIP
	if d.Schedule.Policy != nil && d.Schedule.Policy.Overlap != enumspb.SCHEDULE_OVERLAP_POLICY_UNSPECIFIED {
		overlap = d.Schedule.Policy.Overlap
	}
	res := BackfillResult{ScheduleID: h.GetID(), Overlap: OverlapName(overlap)}
	times, known := ScheduledTimes(d.Schedule.Spec, from, to)
	if known && len(times) == 0 {
		return res, fmt.Errorf("the schedule of %s has no run between %s and %s (it runs at %s UTC): widen the range",
			account, from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339), strings.Join(calendarTimes(d.Schedule.Spec.Calendars), ", "))
	}
	res.Times = times
	if len(d.Info.RunningWorkflows) > 0 && overlap == enumspb.SCHEDULE_OVERLAP_POLICY_SKIP {
		return res, fmt.Errorf("account %s has a dump running (%s) and its overlap policy is skip, so the backfill would be skipped: wait for the dump to finish",
			account, d.Info.RunningWorkflows[0].WorkflowID)
	}
	seen := map[string]bool{}
	for _, a := range d.Info.RecentActions {
		if a.StartWorkflowResult != nil {
			seen[a.StartWorkflowResult.WorkflowID] = true
		}
	}
	end := BackfillEnd(d.Schedule.Spec, to)
	if err := h.Backfill(ctx, client.ScheduleBackfillOptions{Backfill: []client.ScheduleBackfill{{Start: from, End: end, Overlap: overlap}}}); err != nil {
		return res, fmt.Errorf("backfill schedule %s: %w", h.GetID(), err)
	}
	// The schedule starts backfilled dumps asynchronously; report those that show up soon.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		d, err := h.Describe(ctx)
		if err != nil {
			return res, err
		}
		res.Started = res.Started[:0]
		for _, a := range d.Info.RecentActions {
			if a.StartWorkflowResult != nil && !seen[a.StartWorkflowResult.WorkflowID] {
				res.Started = append(res.Started, Action{WorkflowID: a.StartWorkflowResult.WorkflowID, ScheduledAt: a.ScheduleTime.UTC(), StartedAt: a.ActualTime.UTC()})
			}
		}
		if len(res.Started) > 0 {
			return res, nil
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
	return res, nil
}
