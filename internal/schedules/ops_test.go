package schedules

import (
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
)

func TestParseOverlap(t *testing.T) {
	ok := map[string]enumspb.ScheduleOverlapPolicy{
		"skip":                               enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		"SKIP":                               enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		"buffer_one":                         enumspb.SCHEDULE_OVERLAP_POLICY_BUFFER_ONE,
		"buffer-one":                         enumspb.SCHEDULE_OVERLAP_POLICY_BUFFER_ONE,
		"BufferOne":                          enumspb.SCHEDULE_OVERLAP_POLICY_BUFFER_ONE,
		"buffer_all":                         enumspb.SCHEDULE_OVERLAP_POLICY_BUFFER_ALL,
		"SCHEDULE_OVERLAP_POLICY_BUFFER_ALL": enumspb.SCHEDULE_OVERLAP_POLICY_BUFFER_ALL,
	}
	for in, want := range ok {
		got, err := ParseOverlap(in)
		if err != nil || got != want {
			t.Errorf("%q: %v %v", in, got, err)
		}
		if name := OverlapName(got); ParseOverlapMust(t, name) != got {
			t.Errorf("%q does not round-trip through %q", in, name)
		}
	}
	for _, in := range []string{"allow_all", "AllowAll", "cancel_other", "terminate_other"} {
		_, err := ParseOverlap(in)
		if err == nil || !strings.Contains(err.Error(), "same folder") || !strings.Contains(err.Error(), "skip, buffer_one, buffer_all") {
			t.Errorf("%q must be refused with the reason and the safe choices: %v", in, err)
		}
	}
	if _, err := ParseOverlap("sometimes"); err == nil || !strings.Contains(err.Error(), "unknown overlap policy") {
		t.Errorf("unknown: %v", err)
	}
	if OverlapName(enumspb.SCHEDULE_OVERLAP_POLICY_UNSPECIFIED) != "skip" {
		t.Error("unspecified is the server's default, skip")
	}
}

func ParseOverlapMust(t *testing.T, s string) enumspb.ScheduleOverlapPolicy {
	t.Helper()
	p, err := ParseOverlap(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestValidateCatchupWindow(t *testing.T) {
	if ValidateCatchupWindow(time.Hour) != nil || ValidateCatchupWindow(10*time.Second) != nil {
		t.Error("valid windows refused")
	}
	if err := ValidateCatchupWindow(5 * time.Second); err == nil || !strings.Contains(err.Error(), "minimum") {
		t.Errorf("5s: %v", err)
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestScheduledTimes(t *testing.T) {
	cals, err := Calendars([]string{"04:00", "15:00"})
	if err != nil {
		t.Fatal(err)
	}
	spec := &client.ScheduleSpec{Calendars: cals, TimeZoneName: "UTC"}
	cases := []struct {
		from, to string
		want     []string
	}{
		{"2024-05-01T00:00:00Z", "2024-05-02T00:00:00Z", []string{"2024-05-01T04:00:00Z", "2024-05-01T15:00:00Z"}},
		{"2024-05-01T04:00:00Z", "2024-05-01T15:00:00Z", []string{"2024-05-01T04:00:00Z", "2024-05-01T15:00:00Z"}}, // both ends included
		{"2024-05-01T04:00:01Z", "2024-05-01T14:59:59Z", nil},
		{"2024-05-01T05:00:00+02:00", "2024-05-01T07:00:00+02:00", []string{"2024-05-01T04:00:00Z"}}, // offsets are honoured; times are UTC
		{"2024-02-28T12:00:00Z", "2024-03-01T05:00:00Z", []string{"2024-02-28T15:00:00Z", "2024-02-29T04:00:00Z", "2024-02-29T15:00:00Z", "2024-03-01T04:00:00Z"}},
	}
	for _, tc := range cases {
		got, ok := ScheduledTimes(spec, mustTime(t, tc.from), mustTime(t, tc.to))
		if !ok {
			t.Fatalf("%s..%s: spec not understood", tc.from, tc.to)
		}
		var s []string
		for _, g := range got {
			s = append(s, g.Format(time.RFC3339))
		}
		if strings.Join(s, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%s..%s: %v, want %v", tc.from, tc.to, s, tc.want)
		}
	}
	if _, ok := ScheduledTimes(&client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: time.Hour}}}, time.Now(), time.Now()); ok {
		t.Error("interval specs are not daily calendars")
	}
	if _, ok := ScheduledTimes(&client.ScheduleSpec{Calendars: []client.ScheduleCalendarSpec{{Hour: []client.ScheduleRange{{Start: 4}}, DayOfWeek: []client.ScheduleRange{{Start: 1, End: 5}}}}}, time.Now(), time.Now()); ok {
		t.Error("a weekday-only calendar is not daily")
	}
	if got := calendarTimes(cals); strings.Join(got, ",") != "04:00,15:00" {
		t.Errorf("calendar times %v", got)
	}
}

func TestValidateBackfillRange(t *testing.T) {
	now := mustTime(t, "2024-05-10T12:00:00Z")
	good := []string{"2024-05-09T00:00:00Z", "2024-05-10T00:00:00Z"}
	if err := ValidateBackfillRange(mustTime(t, good[0]), mustTime(t, good[1]), now); err != nil {
		t.Error(err)
	}
	bad := map[string][2]time.Time{
		"missing":      {{}, mustTime(t, good[1])},
		"reversed":     {mustTime(t, good[1]), mustTime(t, good[0])},
		"future":       {mustTime(t, good[0]), mustTime(t, "2024-05-11T00:00:00Z")},
		"over a month": {mustTime(t, "2024-03-01T00:00:00Z"), mustTime(t, good[1])},
	}
	for name, r := range bad {
		if err := ValidateBackfillRange(r[0], r[1], now); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestRunsQuery(t *testing.T) {
	q, err := RunsQuery("acme", "")
	if err != nil || q != "WorkflowType = 'ExportAccount' AND AccountId = 'acme'" {
		t.Errorf("%q %v", q, err)
	}
	q, err = RunsQuery("acme", "failed")
	if err != nil || !strings.HasSuffix(q, " AND ExecutionStatus = 'Failed'") {
		t.Errorf("%q %v", q, err)
	}
	q, _ = RunsQuery("acme", "timed_out")
	if !strings.HasSuffix(q, "'TimedOut'") {
		t.Errorf("%q", q)
	}
	if _, err := RunsQuery("x' OR AccountId != '", ""); err == nil {
		t.Error("an account id with a quote must be refused")
	}
	if _, err := RunsQuery("acme", "exploded"); err == nil || !strings.Contains(err.Error(), "running, completed, failed") {
		t.Errorf("unknown status: %v", err)
	}
}

func TestNoScheduleError(t *testing.T) {
	e := &NoScheduleError{Account: "acm", Scheduled: []string{"acme", "globex"}}
	for _, s := range []string{`"acm"`, "acme, globex", "starter schedules sync --accounts FILE"} {
		if !strings.Contains(e.Error(), s) {
			t.Errorf("%q lacks %q", e.Error(), s)
		}
	}
	many := &NoScheduleError{Account: "x"}
	for i := 0; i < 25; i++ {
		many.Scheduled = append(many.Scheduled, "a")
	}
	if !strings.Contains(many.Error(), "and 5 more") {
		t.Errorf("%q", many.Error())
	}
	if !strings.Contains((&NoScheduleError{Account: "x"}).Error(), "none yet") {
		t.Error("no schedules at all")
	}
}

func TestLongestGap(t *testing.T) {
	cases := map[string]struct {
		times []string
		want  time.Duration
	}{
		"paid":     {[]string{"04:00", "15:00"}, 13 * time.Hour},
		"free":     {[]string{"04:00"}, 24 * time.Hour},
		"unsorted": {[]string{"15:00", "04:00", "10:00"}, 13 * time.Hour},
		"none":     {nil, 24 * time.Hour},
		"near":     {[]string{"23:30", "00:10"}, 23*time.Hour + 20*time.Minute},
	}
	for name, c := range cases {
		if got := LongestGap(c.times); got != c.want {
			t.Errorf("%s: LongestGap(%v) = %s, want %s", name, c.times, got, c.want)
		}
	}
}

func TestBackfillEnd(t *testing.T) {
	cals, err := Calendars([]string{"04:00", "15:00"})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2024, 5, 9, 4, 0, 0, 0, time.UTC)
	noJitter := &client.ScheduleSpec{Calendars: cals, TimeZoneName: "UTC"}
	if got := BackfillEnd(noJitter, at.Add(time.Minute)); !got.Equal(at.Add(time.Minute)) {
		t.Errorf("without jitter the range stays: %s", got)
	}
	jit := &client.ScheduleSpec{Calendars: cals, TimeZoneName: "UTC", Jitter: 10 * time.Minute}
	if got := BackfillEnd(jit, at.Add(time.Minute)); !got.Equal(at.Add(11 * time.Minute)) {
		t.Errorf("04:01 with 10m jitter: %s, want 04:11", got)
	}
	// The next scheduled time is not pulled in: a range ending at 03:55 stops before 04:00.
	if got := BackfillEnd(jit, at.Add(-5*time.Minute)); !got.Equal(at.Add(-time.Second)) {
		t.Errorf("03:55 with 10m jitter: %s, want 03:59:59", got)
	}
	if got := BackfillEnd(nil, at); !got.Equal(at) {
		t.Errorf("nil spec: %s", got)
	}
}
