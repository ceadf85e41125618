package workflows

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"github.com/stretchr/testify/suite"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/dreamdata/destination-aws-s3/activities"
	"github.com/dreamdata/destination-aws-s3/internal/config"
	"github.com/dreamdata/destination-aws-s3/internal/failure"
	"github.com/dreamdata/destination-aws-s3/internal/layout"
	"github.com/dreamdata/destination-aws-s3/internal/receipt"
)

type exportSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env *testsuite.TestWorkflowEnvironment

	mu    sync.Mutex
	calls []string // activity calls in completion order
}

func TestExportWorkflow(t *testing.T) { suite.Run(t, new(exportSuite)) }

func (s *exportSuite) SetupTest() {
	s.env = s.NewTestWorkflowEnvironment()
	s.env.RegisterWorkflow(ExportAccount)
	s.env.RegisterActivity(&activities.Activities{})
	s.calls = nil
	s.env.SetStartTime(time.Date(2023, 3, 14, 4, 3, 7, 963883000, time.UTC))
}

func (s *exportSuite) AfterTest(_, _ string) { s.env.AssertExpectations(s.T()) }

func (s *exportSuite) record(c string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, c)
}

func testAccount() config.Account {
	a := config.Account{ID: "acme", Bucket: "acme-data", RoleARN: "arn:aws:iam::123456789012:role/r", Prefix: "dd",
		BigQuery: config.BigQuerySource{Project: "p", Dataset: "d"}}
	a.ApplyDefaults()
	return a
}

// fakeExport answers ExportTable with files derived from the table name.
func (s *exportSuite) fakeExport(ctx context.Context, in activities.ExportTableInput) (activities.TableResult, error) {
	s.record("export:" + in.Table)
	n := max(len(in.Table)%3+1, in.MinShards)
	res := activities.TableResult{Table: in.Table, Folder: layout.TableFolder(in.Account.Prefix, in.DumpFolder, in.Table)}
	for i := 0; i < n; i++ {
		res.Files = append(res.Files, receipt.File{Key: layout.ShardKey(in.Account.Prefix, in.DumpFolder, in.Table, i, ".parquet.gz"), Rows: 10})
		res.RowCount += 10
	}
	return res, nil
}

func (s *exportSuite) TestCompleteDumpWritesReceiptLast() {
	var a *activities.Activities
	s.env.OnActivity(a.CheckAccess, mock.Anything, mock.Anything).Return(func(context.Context, activities.CheckAccessInput) error {
		s.record("check")
		return nil
	}).Once()
	s.env.OnActivity(a.ExportTable, mock.Anything, mock.Anything).Return(s.fakeExport).Times(6)
	var written receipt.Receipt
	s.env.OnActivity(a.WriteReceipt, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.WriteReceiptInput) error {
		s.record("receipt")
		written = activities.BuildReceipt(in.Account.ID, in.Started, in.Tables)
		return nil
	}).Once()

	s.env.ExecuteWorkflow(ExportAccount, ExportInput{Account: testAccount()})
	s.True(s.env.IsWorkflowCompleted())
	s.NoError(s.env.GetWorkflowError())

	s.Equal("check", s.calls[0])
	s.Equal("receipt", s.calls[len(s.calls)-1], "the receipt must be the last write")
	s.Len(s.calls, 8)

	s.Equal("2023-03-14T04:03:07.963883Z", written.Timestamp)
	s.Len(written.Tables, 6)
	for _, t := range config.DefaultTables {
		got := written.Tables[t]
		s.Equal("dd/2023-03-14T04:03/"+t, got.Folder)
		s.Equal(len(t)%3+1, got.TotalFileCount)
		s.Len(got.Files, got.TotalFileCount)
	}
	var res ExportResult
	s.NoError(s.env.GetWorkflowResult(&res))
	s.Equal("2023-03-14T04:03", res.DumpFolder)
	s.Equal("dd/receipt.json", res.ReceiptKey)
}

func (s *exportSuite) TestParallelismIsBounded() {
	var a *activities.Activities
	var mu sync.Mutex
	running, peak := 0, 0
	s.env.OnActivity(a.CheckAccess, mock.Anything, mock.Anything).Return(nil)
	s.env.OnActivity(a.ExportTable, mock.Anything, mock.Anything).Return(func(ctx context.Context, in activities.ExportTableInput) (activities.TableResult, error) {
		mu.Lock()
		running++
		peak = max(peak, running)
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		running--
		mu.Unlock()
		return s.fakeExport(ctx, in)
	})
	s.env.OnActivity(a.WriteReceipt, mock.Anything, mock.Anything).Return(nil)
	s.env.ExecuteWorkflow(ExportAccount, ExportInput{Account: testAccount(), MaxParallelTables: 2})
	s.NoError(s.env.GetWorkflowError())
	s.LessOrEqual(peak, 2)
}

func (s *exportSuite) TestAccessDeniedParksThenFailsBeforeNextDump() {
	var a *activities.Activities
	s.env.OnActivity(a.CheckAccess, mock.Anything, mock.Anything).Return(
		temporal.NewNonRetryableApplicationError("assuming the customer's role was denied", string(failure.KindAssumeRoleDenied), nil)).Once()
	var parked Progress
	s.env.RegisterDelayedCallback(func() {
		v, err := s.env.QueryWorkflow(QueryProgress)
		s.NoError(err)
		s.NoError(v.Get(&parked))
	}, time.Hour)
	s.env.ExecuteWorkflow(ExportAccount, ExportInput{Account: testAccount()})
	err := s.env.GetWorkflowError()
	s.Error(err)
	var appErr *temporal.ApplicationError
	s.True(errors.As(err, &appErr))
	s.Equal(string(failure.KindAssumeRoleDenied), appErr.Type())
	s.Contains(err.Error(), "ahead of the next scheduled dump")

	s.Equal(StateWaitingForFix, parked.State)
	s.Require().NotNil(parked.Parked)
	s.Equal(string(failure.KindAssumeRoleDenied), parked.Parked.Type)
	s.Contains(parked.Parked.Message, "role was denied")
	// Started 04:03; the next dump is at 15:00; the parked dump gives up 10 minutes before.
	s.Equal(time.Date(2023, 3, 14, 14, 50, 0, 0, time.UTC), parked.Parked.Deadline.UTC())
	s.Equal(time.Date(2023, 3, 14, 14, 50, 0, 0, time.UTC), s.env.Now().UTC().Truncate(time.Minute))
}

func (s *exportSuite) TestParkedDumpResumesOnRetryWithoutRedoingFinishedTables() {
	var a *activities.Activities
	s.env.OnActivity(a.CheckAccess, mock.Anything, mock.Anything).Return(nil)
	var mu sync.Mutex
	passes := map[string][]activities.ExportTableInput{}
	fixed := false
	s.env.OnActivity(a.ExportTable, mock.Anything, mock.Anything).Return(func(ctx context.Context, in activities.ExportTableInput) (activities.TableResult, error) {
		mu.Lock()
		passes[in.Table] = append(passes[in.Table], in)
		ok := fixed
		mu.Unlock()
		if in.Table == "events" && !ok {
			return activities.TableResult{}, temporal.NewNonRetryableApplicationError("writing s3://b/k was denied: the role's permission policy must allow s3:PutObject",
				string(failure.KindPutDenied), nil, activities.FailureDetails{Reserved: 7})
		}
		return s.fakeExport(ctx, in)
	})
	s.env.OnActivity(a.WriteReceipt, mock.Anything, mock.Anything).Return(nil).Once()
	var parked Progress
	s.env.RegisterDelayedCallback(func() {
		v, err := s.env.QueryWorkflow(QueryProgress)
		s.NoError(err)
		s.NoError(v.Get(&parked))
		mu.Lock()
		fixed = true
		mu.Unlock()
		s.env.SignalWorkflow(SignalRetry, RetryRequest{Note: "policy fixed"})
	}, 30*time.Minute)
	s.env.ExecuteWorkflow(ExportAccount, ExportInput{Account: testAccount()})
	s.NoError(s.env.GetWorkflowError())

	s.Equal(StateWaitingForFix, parked.State)
	s.Equal(StateFailed, parked.Tables["events"].State)
	s.Contains(parked.Tables["events"].LastError, "s3:PutObject")
	for _, t := range config.DefaultTables {
		if t == "events" {
			s.Require().Len(passes[t], 2, "events is exported again after the fix")
			s.Equal(7, passes[t][1].MinShards, "the second pass overwrites every index the failed one wrote")
			continue
		}
		s.Len(passes[t], 1, "finished table %s must not be exported again", t)
	}
}

func (s *exportSuite) TestUnexpectedFailureFailsAtOnce() {
	var a *activities.Activities
	s.env.OnActivity(a.CheckAccess, mock.Anything, mock.Anything).Return(nil)
	s.env.OnActivity(a.ExportTable, mock.Anything, mock.Anything).Return(func(ctx context.Context, in activities.ExportTableInput) (activities.TableResult, error) {
		if in.Table == "events" {
			return activities.TableResult{}, temporal.NewNonRetryableApplicationError("bug", "SomethingElse", nil)
		}
		return s.fakeExport(ctx, in)
	})
	s.env.ExecuteWorkflow(ExportAccount, ExportInput{Account: testAccount()})
	err := s.env.GetWorkflowError()
	s.Error(err)
	s.Contains(err.Error(), "events")
	var appErr *temporal.ApplicationError
	s.True(errors.As(err, &appErr))
	s.Equal("SomethingElse", appErr.Type(), "the dump fails with the cause's type")
	s.Less(s.env.Now().Sub(time.Date(2023, 3, 14, 4, 3, 7, 0, time.UTC)), time.Minute, "no parking for a non-configuration failure")
	// WriteReceipt has no expectation: the mock fails the test if it is called.
}

func TestParkDeadline(t *testing.T) {
	at := func(h, m int) time.Time { return time.Date(2023, 3, 14, h, m, 0, 0, time.UTC) }
	cases := []struct {
		started time.Time
		times   []string
		want    time.Time
	}{
		{at(4, 3), []string{"04:00", "15:00"}, at(14, 50)},
		{at(15, 1), []string{"04:00", "15:00"}, at(3, 50).Add(24 * time.Hour)},
		{at(4, 3), []string{"04:00"}, at(3, 50).Add(24 * time.Hour)},
		{at(3, 55), []string{"04:00"}, at(3, 50).Add(24 * time.Hour)}, // a manual run just before: next day's
		{at(4, 3), nil, at(14, 3)},
	}
	for _, c := range cases {
		if got := parkDeadline(c.started, c.times); !got.Equal(c.want) {
			t.Errorf("parkDeadline(%s, %v) = %s, want %s", c.started, c.times, got, c.want)
		}
	}
}

func (s *exportSuite) TestRerunSignalReexportsTableAndPadsShards() {
	var a *activities.Activities
	s.env.OnActivity(a.CheckAccess, mock.Anything, mock.Anything).Return(nil)
	var mu sync.Mutex
	eventsPasses := []activities.ExportTableInput{}
	s.env.OnActivity(a.ExportTable, mock.Anything, mock.Anything).Return(func(ctx context.Context, in activities.ExportTableInput) (activities.TableResult, error) {
		if in.Table == "events" {
			mu.Lock()
			eventsPasses = append(eventsPasses, in)
			mu.Unlock()
		}
		return s.fakeExport(ctx, in)
	}).After(10 * time.Minute)
	receipts := 0
	s.env.OnActivity(a.WriteReceipt, mock.Anything, mock.Anything).Return(func(context.Context, activities.WriteReceiptInput) error {
		receipts++
		return nil
	})
	s.env.RegisterDelayedCallback(func() {
		s.env.SignalWorkflow(SignalRerun, RerunRequest{Tables: []string{"events"}})
	}, time.Minute)
	s.env.ExecuteWorkflow(ExportAccount, ExportInput{Account: testAccount()})
	s.NoError(s.env.GetWorkflowError())
	s.Require().Len(eventsPasses, 2, "events must be exported again")
	s.Equal(0, eventsPasses[0].MinShards)
	s.Equal(len("events")%3+1, eventsPasses[1].MinShards, "the rerun must cover every shard index of the first pass")
	s.Equal(eventsPasses[0].DumpFolder, eventsPasses[1].DumpFolder, "a rerun writes into the same dump")
	s.GreaterOrEqual(receipts, 1)
}

func (s *exportSuite) TestProgressQuery() {
	var a *activities.Activities
	s.env.OnActivity(a.CheckAccess, mock.Anything, mock.Anything).Return(nil)
	s.env.OnActivity(a.ExportTable, mock.Anything, mock.Anything).Return(s.fakeExport)
	s.env.OnActivity(a.WriteReceipt, mock.Anything, mock.Anything).Return(nil)
	s.env.RegisterDelayedCallback(func() {
		v, err := s.env.QueryWorkflow(QueryProgress)
		s.NoError(err)
		var p Progress
		s.NoError(v.Get(&p))
		s.Equal("acme", p.Account)
		s.Equal("2023-03-14T04:03", p.DumpFolder)
		s.Len(p.Tables, 6)
	}, 10*time.Millisecond)
	s.env.ExecuteWorkflow(ExportAccount, ExportInput{Account: testAccount()})
	s.NoError(s.env.GetWorkflowError())
	v, err := s.env.QueryWorkflow(QueryProgress)
	s.NoError(err)
	var p Progress
	s.NoError(v.Get(&p))
	s.Equal(StateComplete, p.State)
	for name, t := range p.Tables {
		s.Equal(StateDone, t.State, name)
		s.Equal(int64(10*(len(name)%3+1)), t.Rows, name)
	}
}

func TestDetailsTable(t *testing.T) {
	p := &Progress{Account: "acme", DumpFolder: "2023-03-14T04:03", State: StateExporting,
		Tables: map[string]*TableProgress{"b": {State: StateDone, Files: 2, Rows: 5}, "a": {State: StatePending}}}
	d := p.details()
	require.Contains(t, d, "| a | pending | 0 | 0 |\n| b | done | 2 | 5 |")
	require.Contains(t, d, fmt.Sprintf("**%s**", "acme"))
}
