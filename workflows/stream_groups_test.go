package workflows

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"

	"github.com/dreamdata/destination-aws-s3/activities"
	"github.com/dreamdata/destination-aws-s3/internal/bqsource"
	"github.com/dreamdata/destination-aws-s3/internal/export"
	"github.com/dreamdata/destination-aws-s3/internal/failure"
	"github.com/dreamdata/destination-aws-s3/internal/layout"
	"github.com/dreamdata/destination-aws-s3/internal/receipt"
)

// splitPlan is a plan of events in groups, on a session that lives six hours from the dump.
func (s *exportSuite) splitPlan(groups, minShards int) *activities.SplitPlan {
	start := time.Date(2023, 3, 14, 4, 3, 7, 0, time.UTC)
	sess := &bqsource.Session{Name: fmt.Sprintf("sessions/%d-groups", groups), ArrowSchema: []byte("schema"), Opened: start, ExpireTime: start.Add(6 * time.Hour)}
	for i := range 2 * groups {
		sess.Streams = append(sess.Streams, fmt.Sprintf("%s/streams/%d", sess.Name, i))
	}
	return &activities.SplitPlan{Session: sess, Groups: groups, MinShards: minShards}
}

// groupShards are the shards stream group in.Group writes: count of them, 10 rows each.
func groupShards(in activities.ExportGroupInput, count int) activities.TableResult {
	res := activities.TableResult{Table: in.Table, Folder: layout.TableFolder(in.Account.Prefix, in.DumpFolder, in.Table),
		Schema: []receipt.Field{{Name: "id", Type: "INTEGER", Mode: "NULLABLE"}}, SnapshotTime: in.SnapshotTime}
	for k := range count {
		i := export.Interleave{Group: in.Group, Of: in.Groups}.Index(k)
		res.Files = append(res.Files, receipt.File{Key: layout.ShardKey(in.Account.Prefix, in.DumpFolder, in.Table, i, ".parquet.gz"), Rows: 10, Bytes: 100})
		res.RowCount += 10
	}
	return res
}

// fakePad answers PadShards with empty shards at the ranges' indexes.
func fakePad(_ context.Context, in activities.PadShardsInput) ([]export.Shards, error) {
	out := make([]export.Shards, len(in.Ranges))
	for i, r := range in.Ranges {
		for k := r.From; k < r.To; k++ {
			idx := export.Interleave{Group: r.Group, Of: in.Groups}.Index(k)
			out[i] = append(out[i], receipt.File{Key: layout.ShardKey(in.Account.Prefix, in.DumpFolder, in.Table, idx, ".parquet.gz"), Bytes: 50})
		}
	}
	return out, nil
}

// receiptOf captures the receipt the dump writes.
func (s *exportSuite) receiptOf() *receipt.Receipt {
	var a *activities.Activities
	var written receipt.Receipt
	s.env.OnActivity(a.WriteReceipt, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.WriteReceiptInput) error {
		written = activities.BuildReceipt(in.Account.ID, in.Started, in.Tables)
		return nil
	}).Once()
	return &written
}

// checkNumbering asserts the table's files are its shards 0..n-1 in order.
func (s *exportSuite) checkNumbering(t receipt.Table, table string, n int) {
	s.Require().Equal(n, t.TotalFileCount)
	s.Require().Len(t.Files, n)
	for i, f := range t.Files {
		s.Equal(layout.ShardKey("dd", "2023-03-14T04:03", table, i, ".parquet.gz"), f.Key, "file %d", i)
	}
}

// eventsSplitFirst mocks the dump: access, the receipt (captured), and ExportTable, whose
// first pass of events is split into 2 groups while the next reads the new session in one go.
// It returns the passes of events and the receipt.
func (s *exportSuite) eventsSplitFirst() (*[]activities.ExportTableInput, *receipt.Receipt) {
	var a *activities.Activities
	s.env.OnActivity(a.CheckAccess, mock.Anything, mock.Anything).Return(nil)
	written := s.receiptOf()
	passes, _ := s.eventsFirstPass(func(in activities.ExportTableInput) (activities.TableResult, error) {
		return activities.TableResult{Table: in.Table, Split: s.splitPlan(2, 0)}, nil
	})
	return passes, written
}

// A table too big for one session's life is split into stream groups; the groups' shards
// interleave, the shorter groups are padded, and the receipt numbers the table 0..n-1.
func (s *exportSuite) TestSplitTableIsNumberedWithoutGaps() {
	var a *activities.Activities
	s.env.OnActivity(a.CheckAccess, mock.Anything, mock.Anything).Return(nil)
	written := s.receiptOf()
	s.env.OnActivity(a.ExportTable, mock.Anything, mock.Anything).Return(func(ctx context.Context, in activities.ExportTableInput) (activities.TableResult, error) {
		s.True(in.StreamGroups, "this release runs stream groups")
		if in.Table == "events" {
			return activities.TableResult{Table: in.Table, Split: s.splitPlan(3, 0)}, nil
		}
		return s.fakeExport(ctx, in)
	})
	var mu sync.Mutex
	seen := map[int]bool{}
	s.env.OnActivity(a.ExportStreamGroup, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ExportGroupInput) (activities.TableResult, error) {
		mu.Lock()
		seen[in.Group] = true
		mu.Unlock()
		s.Equal(3, in.Groups)
		s.Equal("sessions/3-groups", in.Session.Name)
		return groupShards(in, []int{3, 1, 2}[in.Group]), nil
	}).Times(3)
	var pads activities.PadShardsInput
	s.env.OnActivity(a.PadShards, mock.Anything, mock.Anything).Return(func(ctx context.Context, in activities.PadShardsInput) ([]export.Shards, error) {
		pads = in
		return fakePad(ctx, in)
	}).Once()

	s.env.ExecuteWorkflow(ExportAccount, ExportInput{Account: testAccount()})
	s.Require().NoError(s.env.GetWorkflowError())
	s.Len(seen, 3)
	s.Equal([]activities.PadRange{{Group: 1, From: 1, To: 3}, {Group: 2, From: 2, To: 3}}, pads.Ranges)
	ev := written.Tables["events"]
	s.checkNumbering(ev, "events", 9)
	s.Equal(int64(60), ev.RowCount)
	s.Equal(int64(0), ev.Files[4].Rows, "index 4 is group 1's second shard: padding")
	s.Equal(int64(10), ev.Files[3].Rows, "index 3 is group 0's second shard")
	s.NotEmpty(ev.Schema)
}

// When a split pass runs out of its session, the other groups are cancelled, and the table
// starts again on a new session with twice the groups, covering every index the old groups
// may have written.
func (s *exportSuite) TestSplitSessionRunsOutStartsAgainWithMoreGroups() {
	var a *activities.Activities
	passes, written := s.eventsSplitFirst()
	s.env.OnActivity(a.ExportStreamGroup, mock.Anything, mock.Anything).Return(func(ctx context.Context, in activities.ExportGroupInput) (activities.TableResult, error) {
		if in.Group == 0 {
			return groupShards(in, 2), nil
		}
		// Group 1 wrote up to its 4th shard (table index 7) before its session ran out.
		return activities.TableResult{}, temporal.NewApplicationErrorWithOptions("session ran out", string(failure.KindSessionExpired),
			temporal.ApplicationErrorOptions{NonRetryable: true, Details: []any{activities.FailureDetails{Reserved: 4, SessionRanOut: true}}})
	}) // group 0 may be cancelled before it runs

	s.env.ExecuteWorkflow(ExportAccount, ExportInput{Account: testAccount()})
	s.Require().NoError(s.env.GetWorkflowError())
	s.Require().Len(*passes, 2)
	s.Equal(4, (*passes)[1].MinGroups, "twice the groups")
	s.GreaterOrEqual((*passes)[1].MinShards, 8, "every index group 1 may have written: 1 + 3×2")
	s.Nil((*passes)[1].Resume)
	s.checkNumbering(written.Tables["events"], "events", 8)
}

// A group that stops on a misconfiguration parks the dump; the retry runs that group again
// from where it stopped, on the same session, and never the groups that finished.
func (s *exportSuite) TestParkedSplitTableResumesOnlyItsFailedGroup() {
	var a *activities.Activities
	s.env.OnActivity(a.CheckAccess, mock.Anything, mock.Anything).Return(nil)
	written := s.receiptOf()
	s.env.OnActivity(a.ExportTable, mock.Anything, mock.Anything).Return(func(ctx context.Context, in activities.ExportTableInput) (activities.TableResult, error) {
		if in.Table == "events" {
			s.Nil(in.Resume)
			return activities.TableResult{Table: in.Table, Split: s.splitPlan(2, 0)}, nil
		}
		return s.fakeExport(ctx, in)
	})
	var mu sync.Mutex
	var calls []activities.ExportGroupInput
	s.env.OnActivity(a.ExportStreamGroup, mock.Anything, mock.Anything).Return(func(ctx context.Context, in activities.ExportGroupInput) (activities.TableResult, error) {
		mu.Lock()
		calls = append(calls, in)
		again := in.Resume != nil
		mu.Unlock()
		if in.Group == 1 && !again {
			stopped := export.Progress{Session: in.Session.Group(1, 2), Stream: 1, Offset: 40, Reserved: 9}
			return activities.TableResult{}, temporal.NewNonRetryableApplicationError("denied", string(failure.KindPutDenied), nil,
				activities.FailureDetails{Reserved: 9, Resume: &stopped})
		}
		return groupShards(in, 2), nil
	})
	s.env.OnActivity(a.PadShards, mock.Anything, mock.Anything).Return(fakePad).Maybe()
	s.env.RegisterDelayedCallback(func() { s.update(UpdateRetry, RetryRequest{Note: "policy fixed"}) }, 5*time.Minute)

	s.env.ExecuteWorkflow(ExportAccount, ExportInput{Account: testAccount()})
	s.Require().NoError(s.env.GetWorkflowError())
	s.Require().Len(calls, 3, "group 0 once, group 1 twice")
	last := calls[2]
	s.Equal(1, last.Group)
	s.Require().NotNil(last.Resume)
	s.Equal(int64(40), last.Resume.Offset)
	s.Equal(9, last.MinShards)
	// Group 1 reserved up to its 9th shard (index 17), so the table pads to 18 shards.
	s.checkNumbering(written.Tables["events"], "events", 18)
}

// A rerun of a parked split table reads a fresh snapshot: it starts over with ExportTable
// (a new session) instead of resuming the old groups, and covers every index they wrote.
func (s *exportSuite) TestRerunOfAParkedSplitTableStartsAfresh() {
	var a *activities.Activities
	passes, written := s.eventsSplitFirst()
	s.env.OnActivity(a.ExportStreamGroup, mock.Anything, mock.Anything).Return(func(ctx context.Context, in activities.ExportGroupInput) (activities.TableResult, error) {
		if in.Group == 1 {
			return activities.TableResult{}, temporal.NewNonRetryableApplicationError("denied", string(failure.KindPutDenied), nil, activities.FailureDetails{Reserved: 5})
		}
		return groupShards(in, 3), nil
	}).Times(2)
	s.env.RegisterDelayedCallback(func() { s.update(UpdateRerun, RerunRequest{Tables: []string{"events"}}) }, 2*time.Minute)
	s.env.RegisterDelayedCallback(func() { s.update(UpdateRetry, RetryRequest{}) }, 3*time.Minute)

	s.env.ExecuteWorkflow(ExportAccount, ExportInput{Account: testAccount()})
	s.Require().NoError(s.env.GetWorkflowError())
	s.Require().Len(*passes, 2)
	s.True((*passes)[1].SnapshotTime.After((*passes)[0].SnapshotTime), "the rerun reads a fresh snapshot")
	s.Nil((*passes)[1].Resume)
	s.GreaterOrEqual((*passes)[1].MinShards, 10, "group 1 may have written up to index 1 + 4×2 = 9; group 0 wrote 0, 2, 4")
	s.checkNumbering(written.Tables["events"], "events", (*passes)[1].MinShards)
}

// A table that never fits a session, even split, fails the dump with what to do, after a
// bounded number of sessions.
func (s *exportSuite) TestSplitThatNeverFitsFailsWithAClearMessage() {
	var a *activities.Activities
	s.env.OnActivity(a.CheckAccess, mock.Anything, mock.Anything).Return(nil)
	var mu sync.Mutex
	exports := 0
	s.env.OnActivity(a.ExportTable, mock.Anything, mock.Anything).Return(func(ctx context.Context, in activities.ExportTableInput) (activities.TableResult, error) {
		if in.Table != "events" {
			return s.fakeExport(ctx, in)
		}
		mu.Lock()
		exports++
		mu.Unlock()
		return activities.TableResult{Table: in.Table, Split: s.splitPlan(min(max(in.MinGroups, 2), 8), in.MinShards)}, nil
	})
	s.env.OnActivity(a.ExportStreamGroup, mock.Anything, mock.Anything).Return(func(ctx context.Context, in activities.ExportGroupInput) (activities.TableResult, error) {
		return activities.TableResult{}, temporal.NewApplicationErrorWithOptions("session ran out", string(failure.KindSessionExpired),
			temporal.ApplicationErrorOptions{NonRetryable: true, Details: []any{activities.FailureDetails{Reserved: 3, SessionRanOut: true}}})
	})
	s.env.ExecuteWorkflow(ExportAccount, ExportInput{Account: testAccount()})
	err := s.env.GetWorkflowError()
	s.Require().Error(err)
	s.Contains(err.Error(), "raise MAX_STREAM_GROUPS")
	s.Equal(maxSplitPasses, exports)
}

// When only the padding is left, a parked split table resumes with the padding even after
// its session expired: nothing is read again.
func (s *exportSuite) TestParkedPaddingResumesAfterTheSessionExpired() {
	var a *activities.Activities
	passes, written := s.eventsSplitFirst()
	s.env.OnActivity(a.ExportStreamGroup, mock.Anything, mock.Anything).Return(func(ctx context.Context, in activities.ExportGroupInput) (activities.TableResult, error) {
		return groupShards(in, []int{3, 1}[in.Group]), nil
	}).Times(2)
	pads := 0
	s.env.OnActivity(a.PadShards, mock.Anything, mock.Anything).Return(func(ctx context.Context, in activities.PadShardsInput) ([]export.Shards, error) {
		pads++
		if pads == 1 {
			return nil, temporal.NewNonRetryableApplicationError("denied", string(failure.KindPutDenied), nil)
		}
		return fakePad(ctx, in)
	})
	// The session lives 6 hours from the dump; the fix comes 7 hours later.
	s.env.RegisterDelayedCallback(func() { s.update(UpdateRetry, RetryRequest{}) }, 7*time.Hour)

	s.env.ExecuteWorkflow(ExportAccount, ExportInput{Account: testAccount()})
	s.Require().NoError(s.env.GetWorkflowError())
	s.Equal(2, pads)
	s.Len(*passes, 1, "the table is not read again")
	s.checkNumbering(written.Tables["events"], "events", 6)
}

// A session BigQuery lost early is not a sign the groups are too few: the table starts
// again on a new session with the same groups.
func (s *exportSuite) TestLostSessionStartsAgainWithTheSameGroups() {
	var a *activities.Activities
	passes, written := s.eventsSplitFirst()
	s.env.OnActivity(a.ExportStreamGroup, mock.Anything, mock.Anything).Return(func(ctx context.Context, in activities.ExportGroupInput) (activities.TableResult, error) {
		return activities.TableResult{}, temporal.NewApplicationErrorWithOptions("session gone", string(failure.KindSessionExpired),
			temporal.ApplicationErrorOptions{NonRetryable: true, Details: []any{activities.FailureDetails{Reserved: 2}}})
	})
	s.env.ExecuteWorkflow(ExportAccount, ExportInput{Account: testAccount()})
	s.Require().NoError(s.env.GetWorkflowError())
	s.Require().Len(*passes, 2)
	s.Equal(2, (*passes)[1].MinGroups, "the same groups")
	s.GreaterOrEqual((*passes)[1].MinShards, 3, "every index the first lost group may have written: 0 + 1×2 + 1")
	s.checkNumbering(written.Tables["events"], "events", (*passes)[1].MinShards)
}
