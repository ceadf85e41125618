// Package schedules keeps one Temporal Schedule per account in line with the accounts file.
//
// Every dump of an account starts from its schedule, manual runs included ("trigger"), so the
// schedule's overlap policy guarantees one dump at a time per account: the workflow relies on
// that to give every dump its own folder.
package schedules

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/dreamdata/destination-aws-s3/internal/config"
	"github.com/dreamdata/destination-aws-s3/workflows"
)

// Defaults of the schedule policies.
const (
	// DefaultCatchupWindow: a dump missed while the cluster was down runs if the cluster is
	// back within this window; older misses are skipped (the next dump is due soon anyway).
	DefaultCatchupWindow = time.Hour
	// fingerprintMemo holds a hash of the desired schedule, so sync can tell "unchanged"
	// without comparing every field the server may normalise.
	fingerprintMemo = "config_fingerprint"
)

// Options tune the schedules sync writes.
type Options struct {
	Overlap       enumspb.ScheduleOverlapPolicy // default SKIP
	CatchupWindow time.Duration                 // default DefaultCatchupWindow
	// Jitter spreads the start of thousands of accounts' dumps over this window.
	Jitter time.Duration
}

func (o Options) withDefaults() Options {
	if o.Overlap == enumspb.SCHEDULE_OVERLAP_POLICY_UNSPECIFIED {
		o.Overlap = enumspb.SCHEDULE_OVERLAP_POLICY_SKIP
	}
	if o.CatchupWindow == 0 {
		o.CatchupWindow = DefaultCatchupWindow
	}
	return o
}

// Outcome of syncing one schedule.
type Outcome string

// Outcomes of Sync.
const (
	Created   Outcome = "created"
	Updated   Outcome = "updated"
	Unchanged Outcome = "unchanged"
	Deleted   Outcome = "deleted"
)

// Result is one line of a sync report.
type Result struct {
	ScheduleID string
	Account    string
	Outcome    Outcome
	Times      []string
}

// Calendars turns "HH:MM" UTC times into calendar specs.
func Calendars(times []string) ([]client.ScheduleCalendarSpec, error) {
	var out []client.ScheduleCalendarSpec
	for _, t := range times {
		h, m, ok := strings.Cut(t, ":")
		hour, err1 := strconv.Atoi(h)
		minute, err2 := strconv.Atoi(m)
		if !ok || err1 != nil || err2 != nil || hour < 0 || hour > 23 || minute < 0 || minute > 59 {
			return nil, fmt.Errorf("schedule time %q is not HH:MM", t)
		}
		out = append(out, client.ScheduleCalendarSpec{
			Hour:       []client.ScheduleRange{{Start: hour}},
			Minute:     []client.ScheduleRange{{Start: minute}},
			Second:     []client.ScheduleRange{{Start: 0}},
			DayOfMonth: []client.ScheduleRange{{Start: 1, End: 31}},
			Month:      []client.ScheduleRange{{Start: 1, End: 12}},
			DayOfWeek:  []client.ScheduleRange{{Start: 0, End: 6}},
		})
	}
	return out, nil
}

type desired struct {
	account     config.Account
	times       []string
	input       workflows.ExportInput
	fingerprint string
	spec        client.ScheduleSpec
}

func desire(f *config.File, acc config.Account, o Options) (desired, error) {
	times := f.ScheduleTimes(acc)
	cals, err := Calendars(times)
	if err != nil {
		return desired{}, err
	}
	d := desired{account: acc, times: times, input: workflows.ExportInput{Account: acc, ScheduleTimes: times},
		spec: client.ScheduleSpec{Calendars: cals, TimeZoneName: "UTC", Jitter: o.Jitter}}
	h := sha256.New()
	_ = json.NewEncoder(h).Encode(struct {
		Input   workflows.ExportInput
		Times   []string
		Options Options
		Version int
	}{d.input, times, o, 2})
	d.fingerprint = hex.EncodeToString(h.Sum(nil))[:16]
	return d, nil
}

func (d desired) action() *client.ScheduleWorkflowAction {
	return &client.ScheduleWorkflowAction{
		ID:                    workflows.ScheduleID(d.account.ID),
		Workflow:              workflows.ExportWorkflowName,
		Args:                  []any{d.input},
		TaskQueue:             workflows.TaskQueue,
		Memo:                  map[string]any{fingerprintMemo: d.fingerprint},
		TypedSearchAttributes: temporal.NewSearchAttributes(workflows.AttrAccountID.ValueSet(d.account.ID)),
		StaticSummary:         fmt.Sprintf("S3 dump of account %s to s3://%s", d.account.ID, d.account.Bucket),
		// A dump may run, or wait parked for a fix, until the account's next dump is due;
		// the workflow gives up parkGrace before this, so it ends failed with its cause
		// rather than timed out.
		WorkflowExecutionTimeout: LongestGap(d.times),
	}
}

// LongestGap is the longest time between two consecutive dumps of a daily schedule (24 h
// for one time a day): the most a dump may take before the next is due.
func LongestGap(times []string) time.Duration {
	var mins []int
	for _, t := range times {
		hm, err := time.Parse("15:04", t)
		if err == nil {
			mins = append(mins, hm.Hour()*60+hm.Minute())
		}
	}
	if len(mins) == 0 {
		return 24 * time.Hour
	}
	slices.Sort(mins)
	longest := mins[0] + 24*60 - mins[len(mins)-1]
	for i := 1; i < len(mins); i++ {
		longest = max(longest, mins[i]-mins[i-1])
	}
	if longest == 0 {
		longest = 24 * 60
	}
	return time.Duration(longest) * time.Minute
}

// Sync creates or updates the schedule of every account in f, and deletes the schedules of
// accounts no longer in it. Running it twice changes nothing the second time.
func Sync(ctx context.Context, c client.Client, f *config.File, o Options) ([]Result, error) {
	o = o.withDefaults()
	sc := c.ScheduleClient()
	var results []Result
	want := map[string]bool{}
	for _, acc := range f.Accounts {
		d, err := desire(f, acc, o)
		if err != nil {
			return results, fmt.Errorf("account %s: %w", acc.ID, err)
		}
		id := workflows.ScheduleID(acc.ID)
		want[id] = true
		outcome, err := syncOne(ctx, sc, id, d, o)
		if err != nil {
			return results, fmt.Errorf("schedule %s: %w", id, err)
		}
		results = append(results, Result{ScheduleID: id, Account: acc.ID, Outcome: outcome, Times: d.times})
	}
	ids, err := ListIDs(ctx, c)
	if err != nil {
		return results, err
	}
	for _, id := range ids {
		if want[id] {
			continue
		}
		if err := sc.GetHandle(ctx, id).Delete(ctx); err != nil {
			return results, fmt.Errorf("delete schedule %s: %w", id, err)
		}
		results = append(results, Result{ScheduleID: id, Account: strings.TrimPrefix(id, workflows.ScheduleIDPrefix), Outcome: Deleted})
	}
	return results, nil
}

func syncOne(ctx context.Context, sc client.ScheduleClient, id string, d desired, o Options) (Outcome, error) {
	h := sc.GetHandle(ctx, id)
	desc, err := h.Describe(ctx)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		_, err := sc.Create(ctx, client.ScheduleOptions{
			ID:            id,
			Spec:          d.spec,
			Action:        d.action(),
			Overlap:       o.Overlap,
			CatchupWindow: o.CatchupWindow,
			Note:          "managed by starter schedules sync",
		})
		if err != nil {
			return "", err
		}
		return Created, nil
	}
	if err != nil {
		return "", err
	}
	if fingerprintOf(desc) == d.fingerprint {
		return Unchanged, nil
	}
	err = h.Update(ctx, client.ScheduleUpdateOptions{DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
		s := in.Description.Schedule
		s.Action = d.action()
		spec := d.spec
		s.Spec = &spec
		if s.Policy == nil {
			s.Policy = &client.SchedulePolicies{}
		}
		s.Policy.Overlap = o.Overlap
		s.Policy.CatchupWindow = o.CatchupWindow
		return &client.ScheduleUpdate{Schedule: &s}, nil
	}})
	if err != nil {
		return "", err
	}
	return Updated, nil
}

func fingerprintOf(desc *client.ScheduleDescription) string {
	a, ok := desc.Schedule.Action.(*client.ScheduleWorkflowAction)
	if !ok {
		return ""
	}
	switch v := a.Memo[fingerprintMemo].(type) {
	case string:
		return v
	case *commonpb.Payload:
		var s string
		if converter.GetDefaultDataConverter().FromPayload(v, &s) == nil {
			return s
		}
	}
	return ""
}

// ListIDs returns the ids of the schedules this service manages.
func ListIDs(ctx context.Context, c client.Client) ([]string, error) {
	it, err := c.ScheduleClient().List(ctx, client.ScheduleListOptions{PageSize: 500})
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	var ids []string
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("list schedules: %w", err)
		}
		if strings.HasPrefix(e.ID, workflows.ScheduleIDPrefix) {
			ids = append(ids, e.ID)
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// Trigger starts a dump of the account now, through its schedule (so the overlap policy
// still holds), and returns the id of the workflow it started.
func Trigger(ctx context.Context, c client.Client, account string) (string, error) {
	h, before, err := handle(ctx, c, account)
	if err != nil {
		return "", err
	}
	seen := map[string]bool{}
	for _, a := range before.Info.RecentActions {
		if a.StartWorkflowResult != nil {
			seen[a.StartWorkflowResult.WorkflowID] = true
		}
	}
	if len(before.Info.RunningWorkflows) > 0 {
		return "", fmt.Errorf("account %s already has a dump running (%s): follow it with `starter status %s`, or wait for it to finish", account, before.Info.RunningWorkflows[0].WorkflowID, account)
	}
	if err := h.Trigger(ctx, client.ScheduleTriggerOptions{Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP}); err != nil {
		return "", fmt.Errorf("trigger schedule: %w", err)
	}
	// The schedule starts the workflow asynchronously; it shows up in the description.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		d, err := h.Describe(ctx)
		if err != nil {
			return "", err
		}
		for _, a := range d.Info.RecentActions {
			if a.StartWorkflowResult != nil && !seen[a.StartWorkflowResult.WorkflowID] {
				return a.StartWorkflowResult.WorkflowID, nil
			}
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
	return "", fmt.Errorf("schedule %s was triggered but no workflow started within 30s", workflows.ScheduleID(account))
}

// CurrentRun returns the running dump of an account, or else its most recent one.
func CurrentRun(ctx context.Context, c client.Client, account string) (workflowID string, running bool, err error) {
	_, d, err := handle(ctx, c, account)
	if err != nil {
		return "", false, err
	}
	if len(d.Info.RunningWorkflows) > 0 {
		return d.Info.RunningWorkflows[0].WorkflowID, true, nil
	}
	if n := len(d.Info.RecentActions); n > 0 && d.Info.RecentActions[n-1].StartWorkflowResult != nil {
		return d.Info.RecentActions[n-1].StartWorkflowResult.WorkflowID, false, nil
	}
	return "", false, fmt.Errorf("account %s has no dump yet: start one with `starter run %s`", account, account)
}
