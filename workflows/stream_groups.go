package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/dreamdata/destination-aws-s3/activities"
	"github.com/dreamdata/destination-aws-s3/internal/export"
	"github.com/dreamdata/destination-aws-s3/internal/failure"
)

// maxSplitPasses bounds the sessions a split table runs out of in a row: each starts the
// table again with twice the groups. maxSessionLosses bounds the sessions BigQuery loses
// early (the same groups start again on a new one).
const (
	maxSplitPasses   = 4
	maxSessionLosses = 5
)

// split is the state of a table split into stream groups (activities.SplitPlan): what each
// group did on the plan's session. It survives a park, so a retry goes on with the groups
// that did not finish, on the same session while it lives.
type split struct {
	plan     activities.SplitPlan
	snapshot time.Time
	done     map[int]activities.TableResult
	reserved map[int]int              // each group's own shard high-water mark
	resume   map[int]*export.Progress // where a parked group stopped
	passes   int                      // sessions this table ran out of in a row, plus this one
	losses   int                      // sessions BigQuery lost early before this one
	ranOut   bool                     // a group found this session too short for it
}

func newSplit(plan activities.SplitPlan, snapshot time.Time, passes, losses int) *split {
	return &split{plan: plan, snapshot: snapshot, done: map[int]activities.TableResult{}, reserved: map[int]int{},
		resume: map[int]*export.Progress{}, passes: passes, losses: losses}
}

// highWater is the table's shard high-water mark over the plan's groups: no index at or past
// it was written by any of them.
func (s *split) highWater() int {
	hw := s.plan.MinShards
	n := s.plan.Groups
	for g := range n {
		local := max(s.reserved[g], len(s.done[g].Files))
		if local > 0 {
			hw = max(hw, export.Interleave{Group: g, Of: n}.Index(local-1)+1)
		}
	}
	return hw
}

// usable says whether a parked split can go on: same snapshot, and its session far enough
// from its expiry that its groups would not start the table again at once (or every group
// done).
func (s *split) usable(ctx workflow.Context, snapshot time.Time) bool {
	if !s.snapshot.Equal(snapshot) {
		return false
	}
	if len(s.done) == s.plan.Groups {
		return true // only the padding is left, which reads nothing
	}
	exp := s.plan.Session.ExpireTime
	_, restart := activities.SessionMargins(s.plan.Session)
	return exp.IsZero() || workflow.Now(ctx).Before(exp.Add(-restart))
}

// runSplit exports a split table: its groups in parallel, then the padding; a pass whose
// session runs out starts again on a new session with twice the groups. The result is the
// table's, numbered without gaps, as if one activity had exported it.
func (d *dump) runSplit(ctx workflow.Context, table string, s *split) (activities.TableResult, error) {
	for {
		d.splits[table] = s
		res, err := d.runGroups(ctx, table, s)
		d.reserved[table] = max(d.reserved[table], s.highWater())
		if err == nil {
			return res, nil
		}
		if (tableFailure{err: err}).kind() != string(failure.KindSessionExpired) || ctx.Err() != nil {
			return activities.TableResult{}, err
		}
		delete(d.splits, table)
		in := d.tableInput(table)
		in.Resume = nil
		passes, losses := s.passes, s.losses
		switch {
		case s.ranOut && s.passes >= maxSplitPasses:
			return activities.TableResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
				"table %s was split into %d stream groups on %d read sessions in turn and never finished within one session's life: raise MAX_STREAM_GROUPS, or add workers so every group gets a slot at once",
				table, s.plan.Groups, s.passes), string(failure.KindSessionExpired), nil, activities.FailureDetails{Reserved: d.reserved[table]})
		case s.ranOut:
			d.logger.Warn("stream groups ran out of their read session; splitting again on a new session", "account", d.acc.ID, "table", table, "groups", s.plan.Groups)
			in.MinGroups = 2 * s.plan.Groups
			passes++
		case s.losses >= maxSessionLosses:
			return activities.TableResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
				"BigQuery lost the read session of table %s %d times before its stream groups were done: check BigQuery's status and retry the dump with `starter run`",
				table, s.losses+1), string(failure.KindSessionExpired), nil, activities.FailureDetails{Reserved: d.reserved[table]})
		default:
			// BigQuery lost the session early: the same groups, on a new session.
			d.logger.Warn("BigQuery lost the stream groups' read session; starting again on a new session", "account", d.acc.ID, "table", table, "groups", s.plan.Groups)
			in.MinGroups = s.plan.Groups
			losses++
		}
		var next activities.TableResult
		if err := workflow.ExecuteActivity(d.exportOptions(ctx, "export "+table), (*activities.Activities).ExportTable, in).Get(ctx, &next); err != nil {
			return activities.TableResult{}, err
		}
		if next.Split == nil {
			return next, nil
		}
		s = newSplit(*next.Split, d.snapshots[table], passes, losses)
	}
}

// runGroups runs the plan's unfinished groups at once and, when all are done, pads them.
// A group that fails with a fix to wait for lets the others finish (the park lists the
// table once); a session that ran out, or a fatal failure, cancels the rest.
func (d *dump) runGroups(ctx workflow.Context, table string, s *split) (activities.TableResult, error) {
	n := s.plan.Groups
	prog := d.prog.Tables[table]
	prog.Groups, prog.GroupsDone = n, len(s.done)
	workflow.SetCurrentDetails(ctx, d.prog.details())
	gctx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	sel := workflow.NewSelector(ctx)
	var first error
	running := 0
	for g := range n {
		if _, ok := s.done[g]; ok {
			continue
		}
		in := activities.ExportGroupInput{Account: d.acc, Table: table, DumpFolder: d.folder, SnapshotTime: s.snapshot,
			Session: s.plan.Session, Group: g, Groups: n, MinShards: s.reserved[g], Resume: s.resume[g]}
		// A cancelled group (the session ran out) is waited for, so none still writes when the
		// table starts again on a new session.
		opts := workflow.WithWaitForCancellation(d.exportOptions(gctx, fmt.Sprintf("export %s, stream group %d of %d", table, g+1, n)), true)
		running++
		sel.AddFuture(workflow.ExecuteActivity(opts, (*activities.Activities).ExportStreamGroup, in), func(f workflow.Future) {
			running--
			var res activities.TableResult
			err := f.Get(ctx, &res)
			if err == nil {
				s.done[g] = res
				delete(s.resume, g)
				prog.GroupsDone = len(s.done)
				workflow.SetCurrentDetails(ctx, d.prog.details())
				return
			}
			var fd activities.FailureDetails
			if failureDetails(err, &fd) {
				s.ranOut = s.ranOut || fd.SessionRanOut
				s.reserved[g] = max(s.reserved[g], fd.Reserved)
				if fd.Resume != nil {
					s.reserved[g] = max(s.reserved[g], fd.Resume.Reserved)
					s.resume[g] = fd.Resume
				}
			}
			if temporal.IsCanceledError(err) && first != nil {
				return // cancelled because of the first failure
			}
			if first == nil {
				first = groupError(err, g, n, d.reserved[table])
			}
			if failure.ClassOf(tableFailure{err: err}.kind()) != failure.Parkable {
				cancel()
			}
		})
	}
	for running > 0 {
		sel.Select(ctx)
	}
	if first != nil {
		return activities.TableResult{}, first
	}
	return d.padGroups(ctx, table, s)
}

// groupError is a group's failure as the table's: its type and message, and the table's
// high-water mark, but never the group's own progress, which is no table's resume point.
func groupError(err error, g, n, reserved int) error {
	var te *temporal.TimeoutError
	if errors.As(err, &te) || temporal.IsCanceledError(err) {
		return err
	}
	f := tableFailure{err: err}
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf("stream group %d of %d: %s", g+1, n, f.message()), f.kind(), nil,
		activities.FailureDetails{Reserved: reserved})
}

// padGroups makes every group as long as the longest (and the table at least as long as its
// high-water mark, so no stale shard survives), then lays the groups' shards out in index order.
func (d *dump) padGroups(ctx workflow.Context, table string, s *split) (activities.TableResult, error) {
	n := s.plan.Groups
	// Every index any attempt of any group may have written, and every earlier pass's.
	perGroup := (s.highWater() + n - 1) / n
	for g := range n {
		perGroup = max(perGroup, len(s.done[g].Files))
	}
	in := activities.PadShardsInput{Account: d.acc, Table: table, DumpFolder: d.folder, ArrowSchema: s.plan.Session.ArrowSchema, Groups: n}
	for g := range n {
		if have := len(s.done[g].Files); have < perGroup {
			in.Ranges = append(in.Ranges, activities.PadRange{Group: g, From: have, To: perGroup})
		}
	}
	var pads []export.Shards
	if len(in.Ranges) > 0 {
		// Counted before it is written: a later pass covers these indexes too.
		d.reserved[table] = max(d.reserved[table], n*perGroup)
		opts := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout:    10 * time.Minute,
			HeartbeatTimeout:       30 * time.Second,
			ScheduleToCloseTimeout: d.untilDeadline(ctx),
			Summary:                fmt.Sprintf("pad %s to %d shards", table, n*perGroup),
			RetryPolicy: &temporal.RetryPolicy{InitialInterval: 5 * time.Second, BackoffCoefficient: 2,
				MaximumInterval: 2 * time.Minute, NonRetryableErrorTypes: failure.NonRetryable()},
		})
		if err := workflow.ExecuteActivity(opts, (*activities.Activities).PadShards, in).Get(ctx, &pads); err != nil {
			return activities.TableResult{}, err
		}
	}
	groups := make([]export.Shards, n)
	for g := range n {
		groups[g] = s.done[g].Files
	}
	for i, r := range in.Ranges {
		if i < len(pads) {
			groups[r.Group] = append(groups[r.Group], pads[i]...)
		}
	}
	res := activities.TableResult{Table: table, Folder: s.done[0].Folder, SnapshotTime: s.snapshot, Files: make(export.Shards, 0, n*perGroup)}
	for k := range perGroup {
		for g := range n {
			if k >= len(groups[g]) {
				return activities.TableResult{}, temporal.NewNonRetryableApplicationError(
					fmt.Sprintf("table %s: stream group %d has %d shards after padding, want %d", table, g+1, len(groups[g]), perGroup),
					string(failure.KindInvalidReceipt), nil)
			}
			res.Files = append(res.Files, groups[g][k])
		}
	}
	for g := range n {
		res.RowCount += s.done[g].RowCount
		if res.Schema == nil {
			res.Schema = s.done[g].Schema
		}
	}
	d.logger.Info("stream groups exported", "account", d.acc.ID, "table", table, "groups", n, "files", len(res.Files), "padding", n*perGroup-totalFiles(s))
	return res, nil
}

func totalFiles(s *split) int {
	t := 0
	for _, r := range s.done {
		t += len(r.Files)
	}
	return t
}

// splitFuture runs a split table in its own coroutine; the future settles with the table's
// result, as a table export's does.
func (d *dump) splitFuture(ctx workflow.Context, table string, s *split) workflow.Future {
	f, set := workflow.NewFuture(ctx)
	workflow.Go(ctx, func(ctx workflow.Context) {
		res, err := d.runSplit(ctx, table, s)
		set.Set(res, err)
	})
	return f
}
