package schedules

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dreamdata/destination-aws-s3/internal/config"
	"github.com/dreamdata/destination-aws-s3/workflows"
)

func TestOffsetIsStableAndSpreads(t *testing.T) {
	if Offset("acme", 0) != 0 || Offset("acme", time.Minute) != 0 {
		t.Error("no window, no offset")
	}
	if Offset("acme", 30*time.Minute) != Offset("acme", 30*time.Minute) {
		t.Error("an account's offset must not change between syncs")
	}
	perMinute := map[time.Duration]int{}
	for i := range 3000 {
		off := Offset(fmt.Sprintf("account-%d", i), 30*time.Minute)
		if off < 0 || off >= 30*time.Minute || off%time.Minute != 0 {
			t.Fatalf("offset %s is not a whole minute within the window", off)
		}
		perMinute[off]++
	}
	// 3000 accounts over 30 minutes: about 100 a minute, none empty, none crowded.
	if len(perMinute) != 30 {
		t.Errorf("only %d of 30 minutes used", len(perMinute))
	}
	for m, n := range perMinute {
		if n < 50 || n > 160 {
			t.Errorf("minute %s has %d accounts, want about 100", m, n)
		}
	}
}

func TestShiftTimes(t *testing.T) {
	got, err := ShiftTimes([]string{"04:00", "15:00", "23:50"}, 17*time.Minute)
	if err != nil || !slices.Equal(got, []string{"04:17", "15:17", "00:07"}) {
		t.Errorf("%v %v", got, err)
	}
	if _, err := ShiftTimes([]string{"4pm"}, 0); err == nil {
		t.Error("a malformed time must be refused")
	}
}

func TestShortestGap(t *testing.T) {
	for _, c := range []struct {
		times []string
		want  time.Duration
	}{
		{[]string{"04:00"}, 24 * time.Hour},
		{[]string{"04:00", "15:00"}, 11 * time.Hour},
		{[]string{"23:30", "00:10"}, 40 * time.Minute},
		{nil, 24 * time.Hour},
	} {
		if got := ShortestGap(c.times); got != c.want {
			t.Errorf("%v: %s, want %s", c.times, got, c.want)
		}
	}
}

func testFile() *config.File {
	f := &config.File{Accounts: []config.Account{{ID: "acme", Bucket: "acme-data", RoleARN: "arn:aws:iam::123456789012:role/x"}}}
	f.Accounts[0].ApplyDefaults()
	return f
}

func TestDesireAppliesSpreadJitterAndTaskQueue(t *testing.T) {
	f := testFile()
	acc := f.Accounts[0]
	o := Options{Jitter: 10 * time.Minute, Spread: 30 * time.Minute}.withDefaults()
	d, err := desire(f, acc, o)
	if err != nil {
		t.Fatal(err)
	}
	off := Offset("acme", 30*time.Minute)
	want, _ := ShiftTimes([]string{"04:00", "15:00"}, off)
	if !slices.Equal(d.times, want) || !slices.Equal(d.input.ScheduleTimes, want) || d.offset != off {
		t.Errorf("times %v input %v offset %s, want %v (offset %s): the dump's park deadline needs the shifted times", d.times, d.input.ScheduleTimes, d.offset, want, off)
	}
	if d.spec.Jitter != 10*time.Minute || d.action().TaskQueue != workflows.TaskQueue {
		t.Errorf("jitter %s queue %s", d.spec.Jitter, d.action().TaskQueue)
	}
	if got := calendarTimes(d.spec.Calendars); !slices.Equal(got, sortedCopy(want)) {
		t.Errorf("calendars %v, want %v", got, want)
	}

	// Same inputs, same fingerprint; a changed queue or jitter changes it.
	again, _ := desire(f, acc, o)
	if again.fingerprint != d.fingerprint {
		t.Error("fingerprint is not stable")
	}
	o2 := o
	o2.TaskQueue = "other"
	q, _ := desire(f, acc, o2)
	if q.fingerprint == d.fingerprint || q.action().TaskQueue != "other" {
		t.Error("the task queue must reach the schedule and its fingerprint")
	}
	o3 := o
	o3.Jitter = 0
	if j, _ := desire(f, acc, o3); j.fingerprint == d.fingerprint {
		t.Error("the jitter must change the fingerprint")
	}

	// Jitter is capped at half the shortest gap between the account's dump times.
	acc.ScheduleTimes = []string{"04:00", "04:30"}
	o4 := o
	o4.Jitter = time.Hour
	c, err := desire(f, acc, o4)
	if err != nil || c.spec.Jitter != 15*time.Minute {
		t.Errorf("capped jitter %s %v, want 15m", c.spec.Jitter, err)
	}
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

func TestValidateWindow(t *testing.T) {
	if ValidateWindow(0) != nil || ValidateWindow(6*time.Hour) != nil {
		t.Error("valid windows refused")
	}
	if ValidateWindow(-time.Minute) == nil || ValidateWindow(7*time.Hour) == nil {
		t.Error("invalid windows accepted")
	}
}

func TestReportCount(t *testing.T) {
	r := Report{Results: []Result{{Outcome: Created}, {Outcome: Created}, {Outcome: Kept}}}
	if r.Count(Created) != 2 || r.Count(Kept) != 1 || r.Count(Deleted) != 0 {
		t.Error(r)
	}
}
