// Package schedules keeps one Temporal Schedule per account in line with the accounts file.
//
// Every dump of an account starts from its schedule, manual runs included ("trigger"), so the
// schedule's overlap policy guarantees one dump at a time per account: the workflow relies on
// that to give every dump its own folder.
package schedules

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/dreamdata/destination-aws-s3/workflows"
)

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
