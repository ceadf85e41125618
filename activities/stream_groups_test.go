package activities

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/dreamdata/destination-aws-s3/internal/bqsource"
	"github.com/dreamdata/destination-aws-s3/internal/export"
	"github.com/dreamdata/destination-aws-s3/internal/failure"
	"github.com/dreamdata/destination-aws-s3/internal/layout"
)

func (h *harness) runGroup(in ExportGroupInput) (TableResult, error) {
	var a *Activities
	v, err := h.env.ExecuteActivity(a.ExportStreamGroup, in)
	if err != nil {
		return TableResult{}, err
	}
	var res TableResult
	return res, v.Get(&res)
}

func groupInput(plan *SplitPlan, g int) ExportGroupInput {
	in := input()
	return ExportGroupInput{Account: in.Account, Table: in.Table, DumpFolder: in.DumpFolder, SnapshotTime: in.SnapshotTime,
		Session: plan.Session, Group: g, Groups: plan.Groups}
}

func shardKey(i int) string {
	return layout.ShardKey("", "2023-03-14T04:03", "events", i, ".parquet.gz")
}

// A table BigQuery estimates bigger than one group's share is split: the session is opened
// again with streams for every group, and each group writes every Groups-th shard, so the
// groups together number the table 0..n-1.
func TestBigTableIsSplitIntoStreamGroups(t *testing.T) {
	src, b := &source{rows: 30, streams: 16, estBytes: 10 << 30}, &bucket{}
	a := newActivities(src, b)
	a.SplitBytes = 3 << 30
	in := input()
	in.StreamGroups = true
	res, err := newHarness(t, a).run(in)
	if err != nil {
		t.Fatal(err)
	}
	if res.Split == nil || res.Split.Groups != 4 || len(res.Split.Session.Streams) != 8 {
		t.Fatalf("split %+v, want 4 groups on 8 streams (10 GiB at 3 GiB a group, 2 streams each)", res.Split)
	}
	if got := src.opened.Load(); got != 2 {
		t.Errorf("%d sessions opened, want 2 (the first had too few streams)", got)
	}
	if len(b.objects) != 0 || len(res.Files) != 0 {
		t.Fatalf("a split table uploads nothing in ExportTable: %d objects", len(b.objects))
	}
	for g := range 4 {
		gin := groupInput(res.Split, g)
		if g == 3 {
			gin.MinShards = 70 // an earlier attempt reserved up to its 70th shard
		}
		got, err := newHarness(t, a).runGroup(gin)
		if err != nil {
			t.Fatalf("group %d: %v", g, err)
		}
		want := 60 // two streams of 30 one-row shards
		if g == 3 {
			want = 70
		}
		if len(got.Files) != want {
			t.Fatalf("group %d: %d files, want %d", g, len(got.Files), want)
		}
		for k, f := range got.Files {
			if f.Key != shardKey(g+4*k) {
				t.Fatalf("group %d shard %d: key %s, want table index %d", g, k, f.Key, g+4*k)
			}
		}
		if got.RowCount != 60 {
			t.Errorf("group %d: %d rows, want 60", g, got.RowCount)
		}
	}
	for i := range 240 {
		if _, ok := b.objects[shardKey(i)]; !ok {
			t.Fatalf("index %d missing: the groups leave a gap", i)
		}
	}
	if sessions := src.opened.Load(); sessions != 2 {
		t.Errorf("the groups opened sessions of their own: %d in all", sessions)
	}
}

// Without StreamGroups (a workflow of an earlier release), or under the threshold, the table
// is exported whole as before.
func TestTableIsNotSplitWhenSmallOrNotAllowed(t *testing.T) {
	for name, tc := range map[string]struct {
		est     int64
		allowed bool
	}{"small": {1 << 20, true}, "not allowed": {10 << 30, false}, "no estimate": {0, true}} {
		src, b := &source{rows: 20, streams: 16, estBytes: tc.est}, &bucket{}
		a := newActivities(src, b)
		a.SplitBytes = 3 << 30
		in := input()
		in.StreamGroups = tc.allowed
		res, err := newHarness(t, a).run(in)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if res.Split != nil || len(res.Files) != 40 {
			t.Errorf("%s: split %v, %d files; want the table whole (2 streams of 20)", name, res.Split, len(res.Files))
		}
	}
}

// A table whose session expired before it was uploaded is split on the next session, even
// without an estimate: one session was not long enough for it.
func TestExpiredSessionSplitsTheTable(t *testing.T) {
	src, b := &source{rows: 10, streams: 16}, &bucket{}
	a := newActivities(src, b)
	in := input()
	in.StreamGroups = true
	in.MinShards = 5
	res, err := newHarness(t, a).run(in)
	if err != nil || res.Split != nil {
		t.Fatalf("fresh table: %v, split %v", err, res.Split)
	}
	// An earlier attempt recorded progress on a session that expires within the margin.
	old := &bqsource.Session{Name: "sessions/old", Streams: []string{"st0"}, ArrowSchema: mustSession(t, src).ArrowSchema, ExpireTime: time.Now().Add(time.Minute)}
	in.Resume = &export.Progress{Session: old, Stream: 0, Offset: 3, Files: export.Shards{{Key: shardKey(0), Rows: 3}}, Reserved: 9}
	res, err = newHarness(t, a).run(in)
	if err != nil {
		t.Fatal(err)
	}
	if res.Split == nil || res.Split.Groups != 2 || res.Split.MinShards != 9 {
		t.Fatalf("split %+v, want 2 groups covering the 9 reserved shards", res.Split)
	}
}

func mustSession(t *testing.T, src *source) *bqsource.Session {
	s, err := src.Open(t.Context(), bqsource.TableRef{}, time.Time{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A group whose session is about to run out fails for good, as ReadSessionExpired, with its
// high-water mark: its streams cannot be read on another session.
func TestGroupOnAnExpiringSessionFailsForGood(t *testing.T) {
	src, b := &source{rows: 10, streams: 4}, &bucket{}
	a := newActivities(src, b)
	sess, _ := src.Open(t.Context(), bqsource.TableRef{}, time.Time{}, 4)
	sess.ExpireTime = time.Now().Add(10 * time.Minute) // inside the 30-minute stop margin
	gin := groupInput(&SplitPlan{Session: sess, Groups: 2}, 1)
	gin.MinShards = 6
	_, err := newHarness(t, a).runGroup(gin)
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != string(failure.KindSessionExpired) || !appErr.NonRetryable() {
		t.Fatalf("error %v, want a non-retryable ReadSessionExpired", err)
	}
	var fd FailureDetails
	if err := appErr.Details(&fd); err != nil || fd.Reserved != 6 || !fd.SessionRanOut {
		t.Errorf("details %+v (%v), want Reserved 6 and the session ran out", fd, err)
	}
	if len(b.objects) != 0 {
		t.Errorf("%d objects written on a session about to expire", len(b.objects))
	}
}

// PadShards writes empty shards with the table's columns at the holes of the groups.
func TestPadShardsFillsTheHoles(t *testing.T) {
	src, b := &source{}, &bucket{}
	a := newActivities(src, b)
	h := newHarness(t, a)
	in := input()
	pin := PadShardsInput{Account: in.Account, Table: in.Table, DumpFolder: in.DumpFolder, ArrowSchema: mustSession(t, src).ArrowSchema, Groups: 3,
		Ranges: []PadRange{{Group: 1, From: 2, To: 4}, {Group: 2, From: 3, To: 4}}}
	v, err := h.env.ExecuteActivity(a.PadShards, pin)
	if err != nil {
		t.Fatal(err)
	}
	var out []export.Shards
	if err := v.Get(&out); err != nil {
		t.Fatal(err)
	}
	want := [][]int{{7, 10}, {11}}
	for i, r := range want {
		if len(out[i]) != len(r) {
			t.Fatalf("range %d: %d shards, want %d", i, len(out[i]), len(r))
		}
		for k, idx := range r {
			if out[i][k].Key != shardKey(idx) || out[i][k].Rows != 0 || b.objects[shardKey(idx)] == 0 {
				t.Errorf("range %d shard %d: %+v, want an empty parquet file at index %d", i, k, out[i][k], idx)
			}
		}
	}
	if len(b.objects) != 3 {
		t.Errorf("%d objects, want 3: %v", len(b.objects), fmt.Sprint(b.objects))
	}
}

// A session BigQuery lost hours before its expiry is not too short for the group: the group
// says so, and the table starts again with the same groups rather than twice as many.
func TestGroupOnALostSessionSaysItWasLost(t *testing.T) {
	src := &source{rows: 10, streams: 4, readErr: failure.New(failure.KindSessionExpired, nil, "session gone")}
	a := newActivities(src, &bucket{})
	sess, _ := src.Open(t.Context(), bqsource.TableRef{}, time.Time{}, 4)
	_, err := newHarness(t, a).runGroup(groupInput(&SplitPlan{Session: sess, Groups: 2}, 0))
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != string(failure.KindSessionExpired) || !appErr.NonRetryable() {
		t.Fatalf("error %v, want a non-retryable ReadSessionExpired", err)
	}
	var fd FailureDetails
	if err := appErr.Details(&fd); err != nil || fd.SessionRanOut {
		t.Errorf("details %+v (%v), want a session lost early, not one that ran out", fd, err)
	}
}
