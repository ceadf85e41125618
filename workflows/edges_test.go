package workflows

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/stretchr/testify/mock"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/dreamdata/destination-aws-s3/activities"
	"github.com/dreamdata/destination-aws-s3/internal/bqsource"
	"github.com/dreamdata/destination-aws-s3/internal/export"
	"github.com/dreamdata/destination-aws-s3/internal/failure"
	"github.com/dreamdata/destination-aws-s3/internal/layout"
	"github.com/dreamdata/destination-aws-s3/internal/receipt"
)

// updateOutcome records what an update answered.
type updateOutcome struct {
	rejected error
	result   interface{}
	err      error
	done     bool
}

func (s *exportSuite) update(name string, arg interface{}) *updateOutcome {
	out := &updateOutcome{}
	s.env.UpdateWorkflow(name, name+"-"+time.Now().String(), &testsuite.TestUpdateCallback{
		OnAccept:   func() {},
		OnReject:   func(err error) { out.rejected = err; out.done = true },
		OnComplete: func(r interface{}, err error) { out.result, out.err, out.done = r, err, true },
	}, arg)
	return out
}

func (s *exportSuite) okAccessAndReceipt() {
	var a *activities.Activities
	s.env.OnActivity(a.CheckAccess, mock.Anything, mock.Anything).Return(nil)
	s.env.OnActivity(a.WriteReceipt, mock.Anything, mock.Anything).Return(nil)
}

// A rerun update during the minute hold after the receipt is refused: the receipt's folder
// must never change once published.
func (s *exportSuite) TestRerunAfterReceiptIsRejected() {
	s.okAccessAndReceipt()
	var a *activities.Activities
	s.env.OnActivity(a.ExportTable, mock.Anything, mock.Anything).Return(s.fakeExport).Times(6)
	var late *updateOutcome
	// Started 04:03:07; the dump completes at once and holds until 04:04.
	s.env.RegisterDelayedCallback(func() { late = s.update(UpdateRerun, RerunRequest{Tables: []string{"companies"}}) }, 30*time.Second)
	s.env.ExecuteWorkflow(ExportAccount, ExportInput{Account: testAccount()})
	s.NoError(s.env.GetWorkflowError())
	s.Require().NotNil(late)
	s.Require().Error(late.rejected, "a rerun after the receipt must be rejected")
	s.Contains(late.rejected.Error(), "the dump is complete: start a new dump with `starter run")
}

// Unknown tables are rejected, listing the valid ones; an accepted rerun answers with what
// will run, and runs at a fresh snapshot, before the receipt.
func (s *exportSuite) TestRerunUpdateValidatesAndAnswers() {
	s.okAccessAndReceipt()
	var a *activities.Activities
	var mu sync.Mutex
	var passes []activities.ExportTableInput
	s.env.OnActivity(a.ExportTable, mock.Anything, mock.Anything).Return(func(ctx context.Context, in activities.ExportTableInput) (activities.TableResult, error) {
		if in.Table == "companies" {
			mu.Lock()
			passes = append(passes, in)
			mu.Unlock()
		}
		return s.fakeExport(ctx, in)
	}).After(10 * time.Minute)
	var bad, good *updateOutcome
	s.env.RegisterDelayedCallback(func() {
		bad = s.update(UpdateRerun, RerunRequest{Tables: []string{"companies", "nosuchtable"}})
		good = s.update(UpdateRerun, RerunRequest{Tables: []string{"companies"}})
	}, time.Minute)
	s.env.ExecuteWorkflow(ExportAccount, ExportInput{Account: testAccount()})
	s.NoError(s.env.GetWorkflowError())

	s.Require().Error(bad.rejected)
	s.Contains(bad.rejected.Error(), "no table nosuchtable")
	s.Contains(bad.rejected.Error(), "companies, contacts, events, revenue, revenue_attribution, paid_ads")
	s.Require().NoError(good.rejected)
	s.Require().NoError(good.err)
	var res RerunResult
	s.Require().NotNil(good.result)
	res = good.result.(RerunResult)
	s.Equal([]string{"companies"}, res.Tables)
	s.Contains(res.Message, "re-export companies")

	s.Require().Len(passes, 2)
	s.True(passes[1].SnapshotTime.After(passes[0].SnapshotTime), "a rerun reads a fresh snapshot")
	s.Equal(len("companies")%3+1, passes[1].MinShards)
}

// Reruns are bounded: past MaxReruns the update is refused with the way out, and the dump
// still completes.
func (s *exportSuite) TestRerunsAreBounded() {
	s.okAccessAndReceipt()
	var a *activities.Activities
	s.env.OnActivity(a.ExportTable, mock.Anything, mock.Anything).Return(s.fakeExport).After(10 * time.Minute)
	var outcomes []*updateOutcome
	s.env.RegisterDelayedCallback(func() {
		for range MaxReruns + 1 {
			outcomes = append(outcomes, s.update(UpdateRerun, RerunRequest{Tables: []string{"companies"}}))
		}
	}, time.Minute)
	s.env.ExecuteWorkflow(ExportAccount, ExportInput{Account: testAccount()})
	s.NoError(s.env.GetWorkflowError())
	s.Require().Len(outcomes, MaxReruns+1)
	for _, o := range outcomes[:MaxReruns] {
		s.NoError(o.rejected)
	}
	last := outcomes[MaxReruns].rejected
	s.Require().Error(last)
	s.Contains(last.Error(), "the most one dump takes")
	s.Contains(last.Error(), "starter run acme")
}

// The receipt records each table's snapshot time: a rerun table's is later than the dump's.
func (s *exportSuite) TestReceiptRecordsSnapshotPerTable() {
	var a *activities.Activities
	s.env.OnActivity(a.CheckAccess, mock.Anything, mock.Anything).Return(nil)
	s.env.OnActivity(a.ExportTable, mock.Anything, mock.Anything).Return(func(ctx context.Context, in activities.ExportTableInput) (activities.TableResult, error) {
		res, err := s.fakeExport(ctx, in)
		res.SnapshotTime = in.SnapshotTime
		return res, err
	}).After(10 * time.Minute)
	var got activities.WriteReceiptInput
	s.env.OnActivity(a.WriteReceipt, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.WriteReceiptInput) error {
		got = in
		return nil
	})
	s.env.RegisterDelayedCallback(func() { s.update(UpdateRerun, RerunRequest{Tables: []string{"events"}}) }, time.Minute)
	s.env.ExecuteWorkflow(ExportAccount, ExportInput{Account: testAccount()})
	s.NoError(s.env.GetWorkflowError())
	gotReceipt := activities.BuildReceipt(got.Account.ID, got.Started, got.Tables)
	s.Equal("2023-03-14T04:03:07.963883Z", gotReceipt.Tables["companies"].SnapshotTime)
	s.NotEqual(gotReceipt.Tables["companies"].SnapshotTime, gotReceipt.Tables["events"].SnapshotTime)
	s.Greater(gotReceipt.Tables["events"].SnapshotTime, gotReceipt.Tables["companies"].SnapshotTime)
}

// A retry is rejected when nothing is parked, and a retry signal sent then must not release
// a later park.
func (s *exportSuite) TestRetryWhileNotParked() {
	var a *activities.Activities
	s.env.OnActivity(a.CheckAccess, mock.Anything, mock.Anything).Return(nil)
	s.env.OnActivity(a.WriteReceipt, mock.Anything, mock.Anything).Return(nil)
	var mu sync.Mutex
	eventsCalls := 0
	s.env.OnActivity(a.ExportTable, mock.Anything, mock.Anything).Return(func(ctx context.Context, in activities.ExportTableInput) (activities.TableResult, error) {
		if in.Table == "events" {
			mu.Lock()
			eventsCalls++
			n := eventsCalls
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
			if n == 1 {
				return activities.TableResult{}, temporal.NewNonRetryableApplicationError("denied", string(failure.KindPutDenied), nil)
			}
		}
		return s.fakeExport(ctx, in)
	})
	var early *updateOutcome
	s.env.RegisterDelayedCallback(func() {
		early = s.update(UpdateRetry, RetryRequest{})
		s.env.SignalWorkflow(SignalRetry, RetryRequest{Note: "too early"})
	}, time.Millisecond)
	var parked Progress
	s.env.RegisterDelayedCallback(func() {
		v, err := s.env.QueryWorkflow(QueryProgress)
		s.NoError(err)
		s.NoError(v.Get(&parked))
		s.update(UpdateRetry, RetryRequest{Note: "fixed"})
	}, 2*time.Hour)
	s.env.ExecuteWorkflow(ExportAccount, ExportInput{Account: testAccount()})
	s.NoError(s.env.GetWorkflowError())
	s.Require().NotNil(early)
	s.Require().Error(early.rejected)
	s.Contains(early.rejected.Error(), "not waiting for a fix")
	s.Equal(StateWaitingForFix, parked.State, "the early retry signal must not have released the park")
}

// Every failed table counts: a fatal failure beside a parkable one fails the dump; two
// parkable ones park with both causes listed.
func (s *exportSuite) TestParkConsidersEveryFailedTable() {
	var a *activities.Activities
	s.env.OnActivity(a.CheckAccess, mock.Anything, mock.Anything).Return(nil)
	s.env.OnActivity(a.ExportTable, mock.Anything, mock.Anything).Return(func(ctx context.Context, in activities.ExportTableInput) (activities.TableResult, error) {
		switch in.Table {
		case "companies":
			return activities.TableResult{}, temporal.NewNonRetryableApplicationError("denied", string(failure.KindPutDenied), nil)
		case "contacts":
			time.Sleep(10 * time.Millisecond)
			return activities.TableResult{}, temporal.NewNonRetryableApplicationError("cannot encode", string(failure.KindUnsupportedSchema), nil)
		}
		return s.fakeExport(ctx, in)
	})
	s.env.ExecuteWorkflow(ExportAccount, ExportInput{Account: testAccount()})
	err := s.env.GetWorkflowError()
	var appErr *temporal.ApplicationError
	s.Require().True(errors.As(err, &appErr), "%v", err)
	s.Equal(string(failure.KindUnsupportedSchema), appErr.Type(), "the fatal failure decides, whichever came first")
	s.Less(s.env.Now().Sub(time.Date(2023, 3, 14, 4, 3, 7, 0, time.UTC)), 2*time.Minute, "no parking")
}

func (s *exportSuite) TestParkListsEveryParkableCause() {
	var a *activities.Activities
	s.env.OnActivity(a.CheckAccess, mock.Anything, mock.Anything).Return(nil)
	s.env.OnActivity(a.ExportTable, mock.Anything, mock.Anything).Return(func(ctx context.Context, in activities.ExportTableInput) (activities.TableResult, error) {
		switch in.Table {
		case "companies":
			return activities.TableResult{}, temporal.NewNonRetryableApplicationError("denied", string(failure.KindPutDenied), nil)
		case "contacts":
			return activities.TableResult{}, temporal.NewNonRetryableApplicationError("no table", string(failure.KindTableNotFound), nil)
		}
		return s.fakeExport(ctx, in)
	})
	var parked Progress
	s.env.RegisterDelayedCallback(func() {
		v, _ := s.env.QueryWorkflow(QueryProgress)
		s.NoError(v.Get(&parked))
	}, time.Hour)
	s.env.ExecuteWorkflow(ExportAccount, ExportInput{Account: testAccount()})
	s.Error(s.env.GetWorkflowError())
	s.Require().NotNil(parked.Parked)
	s.Len(parked.Parked.Causes, 2)
	s.Equal(string(failure.KindPutDenied), parked.Parked.Causes[0].Type)
	s.Equal("contacts", parked.Parked.Causes[1].Table)
}

// A parked dump gives up before the workflow's own timeout, so it ends failed with its
// cause, not timed out while still showing waiting_for_fix.
func (s *exportSuite) TestParkDeadlineCappedByWorkflowTimeout() {
	var a *activities.Activities
	s.env.OnActivity(a.CheckAccess, mock.Anything, mock.Anything).Return(
		temporal.NewNonRetryableApplicationError("denied", string(failure.KindAssumeRoleDenied), nil))
	s.env.SetWorkflowRunTimeout(3 * time.Hour)
	acc := testAccount()
	acc.Plan = "free" // next dump a day later
	s.env.ExecuteWorkflow(ExportAccount, ExportInput{Account: acc})
	err := s.env.GetWorkflowError()
	var appErr *temporal.ApplicationError
	s.Require().True(errors.As(err, &appErr), "%v", err)
	s.Equal(string(failure.KindAssumeRoleDenied), appErr.Type())
	s.Less(s.env.Now().Sub(time.Date(2023, 3, 14, 4, 3, 7, 0, time.UTC)), 3*time.Hour)
}

// Every end of a dump sets ExportState truthfully, and holds until its minute is over.
func (s *exportSuite) TestFailedDumpStateAndMinuteHold() {
	var a *activities.Activities
	s.env.OnActivity(a.CheckAccess, mock.Anything, mock.Anything).Return(
		temporal.NewNonRetryableApplicationError("bad", string(failure.KindInvalidAccount), nil))
	s.env.ExecuteWorkflow(ExportAccount, ExportInput{Account: testAccount()})
	s.Error(s.env.GetWorkflowError())
	s.GreaterOrEqual(s.env.Now().UTC(), time.Date(2023, 3, 14, 4, 4, 0, 0, time.UTC), "held until the minute is over")
	v, err := s.env.QueryWorkflow(QueryProgress)
	s.NoError(err)
	var p Progress
	s.NoError(v.Get(&p))
	s.Equal(StateFailed, p.State)
}

func (s *exportSuite) TestCancelledDumpSaysCancelled() {
	var a *activities.Activities
	s.env.OnActivity(a.CheckAccess, mock.Anything, mock.Anything).Return(nil)
	s.env.OnActivity(a.ExportTable, mock.Anything, mock.Anything).Return(func(ctx context.Context, in activities.ExportTableInput) (activities.TableResult, error) {
		if in.Table == "companies" {
			return activities.TableResult{}, temporal.NewNonRetryableApplicationError("denied", string(failure.KindPutDenied), nil)
		}
		return s.fakeExport(ctx, in)
	})
	s.env.RegisterDelayedCallback(func() { s.env.CancelWorkflow() }, time.Hour)
	s.env.ExecuteWorkflow(ExportAccount, ExportInput{Account: testAccount()})
	s.True(temporal.IsCanceledError(s.env.GetWorkflowError()), "%v", s.env.GetWorkflowError())
	v, err := s.env.QueryWorkflow(QueryProgress)
	s.NoError(err)
	var p Progress
	s.NoError(v.Get(&p))
	s.Equal(StateCancelled, p.State)
}

// The shard high-water mark survives every failure path: failure details of a parked
// attempt, and the last heartbeat of a timed-out one; a parked table resumes on its session.
func (s *exportSuite) TestHighWaterAndResumeSurviveFailures() {
	resume := &export.Progress{Session: &bqsource.Session{Name: "sessions/s1", Streams: []string{"st0"}}, Stream: 0, Offset: 500, Reserved: 23}
	passes, _ := s.eventsParkFirst(failure.KindKMSDenied, activities.FailureDetails{Reserved: 23, Resume: resume})
	s.env.RegisterDelayedCallback(func() { s.update(UpdateRetry, RetryRequest{}) }, time.Hour)
	s.env.ExecuteWorkflow(ExportAccount, ExportInput{Account: testAccount()})
	s.NoError(s.env.GetWorkflowError())
	s.Require().Len(*passes, 2)
	s.Equal(23, (*passes)[1].MinShards)
	s.Require().NotNil((*passes)[1].Resume, "a parked table resumes on its read session")
	s.Equal("sessions/s1", (*passes)[1].Resume.Session.Name)
	s.Equal(int64(500), (*passes)[1].Resume.Offset)
}

// eventsParkFirst mocks the dump's activities: the first pass of events fails with a
// parkable kind carrying details, every other export succeeds. It returns the passes of
// events as they come, and the ExportTable mock (to delay it with After).
func (s *exportSuite) eventsParkFirst(kind failure.Kind, details activities.FailureDetails) (*[]activities.ExportTableInput, *testsuite.MockCallWrapper) {
	var a *activities.Activities
	s.env.OnActivity(a.CheckAccess, mock.Anything, mock.Anything).Return(nil)
	s.env.OnActivity(a.WriteReceipt, mock.Anything, mock.Anything).Return(nil)
	return s.eventsFirstPass(func(activities.ExportTableInput) (activities.TableResult, error) {
		return activities.TableResult{}, temporal.NewNonRetryableApplicationError(string(kind), string(kind), nil, details)
	})
}

// eventsFirstPass mocks ExportTable: the first pass of events answers with first, every
// other export succeeds. It returns the passes of events as they come, and the mock.
func (s *exportSuite) eventsFirstPass(first func(activities.ExportTableInput) (activities.TableResult, error)) (*[]activities.ExportTableInput, *testsuite.MockCallWrapper) {
	var a *activities.Activities
	var mu sync.Mutex
	passes := &[]activities.ExportTableInput{}
	call := s.env.OnActivity(a.ExportTable, mock.Anything, mock.Anything).Return(func(ctx context.Context, in activities.ExportTableInput) (activities.TableResult, error) {
		if in.Table != "events" {
			return s.fakeExport(ctx, in)
		}
		mu.Lock()
		*passes = append(*passes, in)
		n := len(*passes)
		mu.Unlock()
		if n == 1 {
			return first(in)
		}
		return s.fakeExport(ctx, in)
	})
	return passes, call
}

func (s *exportSuite) TestTimedOutTableKeepsHighWaterFromHeartbeat() {
	err := temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE, nil, export.Progress{Reserved: 41})
	var fd activities.FailureDetails
	s.True(failureDetails(err, &fd))
	s.Equal(41, fd.Reserved)
}

// A table of 20,000 shards keeps every payload of the dump (the table's result, the receipt
// activity's input, the workflow's result) below Temporal's 512 KiB warning.
func (s *exportSuite) TestTwentyThousandShardsStayWithinPayloadLimits() {
	var a *activities.Activities
	s.env.OnActivity(a.CheckAccess, mock.Anything, mock.Anything).Return(nil)
	var events activities.TableResult
	s.env.OnActivity(a.ExportTable, mock.Anything, mock.Anything).Return(func(ctx context.Context, in activities.ExportTableInput) (activities.TableResult, error) {
		if in.Table != "events" {
			return s.fakeExport(ctx, in)
		}
		res := activities.TableResult{Table: in.Table, Folder: layout.TableFolder(in.Account.Prefix, in.DumpFolder, in.Table)}
		for i := range 20_000 {
			res.Files = append(res.Files, receipt.File{Key: layout.ShardKey(in.Account.Prefix, in.DumpFolder, in.Table, i, ".parquet.gz"),
				Rows: 1_000_000 + int64(i%977), Bytes: 268_435_456 + int64(i%7919)*1024, CRC32C: "WUn3sg=="})
			res.RowCount += res.Files[i].Rows
		}
		events = res
		return res, nil
	})
	var receiptIn activities.WriteReceiptInput
	s.env.OnActivity(a.WriteReceipt, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.WriteReceiptInput) error {
		receiptIn = in
		return nil
	})
	s.env.ExecuteWorkflow(ExportAccount, ExportInput{Account: testAccount()})
	s.NoError(s.env.GetWorkflowError())
	var res ExportResult
	s.NoError(s.env.GetWorkflowResult(&res))
	s.Equal(20_000, res.Tables["events"].TotalFileCount)

	dc := converter.GetDefaultDataConverter()
	for name, v := range map[string]any{"ExportTable result": events, "WriteReceipt input": receiptIn, "workflow result": res} {
		p, err := dc.ToPayload(v)
		s.Require().NoError(err)
		size := len(p.GetData())
		s.T().Logf("%s: %d bytes", name, size)
		s.Less(size, 512<<10, "%s is over Temporal's 512 KiB payload warning", name)
	}
	r := activities.BuildReceipt(receiptIn.Account.ID, receiptIn.Started, receiptIn.Tables)
	s.Len(r.Tables["events"].Files, 20_000)
	s.Equal(layout.ShardKey("dd", "2023-03-14T04:03", "events", 19_999, ".parquet.gz"), r.Tables["events"].Files[19_999].Key)
}

// A rerun accepted while a pass of the table runs, which then parks, must not resume the old
// pass's read session: the rerun asked for a fresh snapshot.
func (s *exportSuite) TestRerunDuringParkedPassGetsFreshSession() {
	old := &export.Progress{Session: &bqsource.Session{Name: "sessions/old", Streams: []string{"st0"}}, Reserved: 9}
	passes, call := s.eventsParkFirst(failure.KindPutDenied, activities.FailureDetails{Reserved: 9, Resume: old})
	call.After(10 * time.Minute)
	s.env.RegisterDelayedCallback(func() { s.update(UpdateRerun, RerunRequest{Tables: []string{"events"}}) }, time.Minute)
	s.env.RegisterDelayedCallback(func() { s.update(UpdateRetry, RetryRequest{}) }, time.Hour)
	s.env.ExecuteWorkflow(ExportAccount, ExportInput{Account: testAccount()})
	s.NoError(s.env.GetWorkflowError())
	s.Require().GreaterOrEqual(len(*passes), 2)
	s.Nil((*passes)[1].Resume, "the old session must not be resumed at the rerun's snapshot")
	s.True((*passes)[1].SnapshotTime.After((*passes)[0].SnapshotTime))
	s.Equal(9, (*passes)[1].MinShards)
}
