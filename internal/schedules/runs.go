package schedules

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/dreamdata/destination-aws-s3/internal/config"
	"github.com/dreamdata/destination-aws-s3/workflows"
)

// Run is one dump as visibility records it.
type Run struct {
	WorkflowID  string     `json:"workflow_id"`
	RunID       string     `json:"run_id"`
	Status      string     `json:"status"`
	StartTime   time.Time  `json:"start_time"`
	CloseTime   *time.Time `json:"close_time,omitempty"`
	DumpFolder  string     `json:"dump_folder,omitempty"`
	ExportState string     `json:"export_state,omitempty"`
}

var statusByName = map[string]enumspb.WorkflowExecutionStatus{
	"running":        enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING,
	"completed":      enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED,
	"failed":         enumspb.WORKFLOW_EXECUTION_STATUS_FAILED,
	"canceled":       enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED,
	"terminated":     enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED,
	"continuedasnew": enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW,
	"timedout":       enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT,
}

// StatusNames are the statuses RunsQuery accepts.
var StatusNames = []string{"running", "completed", "failed", "canceled", "terminated", "timedout"}

// RunsQuery is the visibility query of an account's dumps, optionally of one status. The
// account id is validated first: its alphabet has no quote, so it cannot break the query.
func RunsQuery(account, status string) (string, error) {
	if err := config.ValidateAccountID(account); err != nil {
		return "", fmt.Errorf("account: %w", err)
	}
	q := fmt.Sprintf("WorkflowType = '%s' AND %s = '%s'", workflows.ExportWorkflowName, workflows.AttrAccountID.GetName(), account)
	if status != "" {
		s, ok := statusByName[strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(status))]
		if !ok {
			return "", fmt.Errorf("unknown status %q: use one of %s", status, strings.Join(StatusNames, ", "))
		}
		q += fmt.Sprintf(" AND ExecutionStatus = '%s'", statusName(s))
	}
	return q, nil
}

// statusName is the visibility spelling of a status (Running, TimedOut, ...): the enum's
// String form.
func statusName(s enumspb.WorkflowExecutionStatus) string { return s.String() }

// Runs lists the most recent dumps of an account, newest first, through visibility (the
// AccountId search attribute), so it finds dumps started by the schedule, by hand or by tests.
// Visibility lags the server by a moment: a dump started a second ago may not show yet.
func Runs(ctx context.Context, c client.Client, account, status string, limit int) ([]Run, error) {
	q, err := RunsQuery(account, status)
	if err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = 10
	}
	var runs []Run
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: q, PageSize: int32(limit), NextPageToken: token})
		if err != nil {
			return nil, fmt.Errorf("list dumps of %s (query %q): %w; the search attribute AccountId must be registered on the namespace (README: Configuration)", account, q, err)
		}
		for _, e := range resp.Executions {
			runs = append(runs, runFrom(e))
		}
		token = resp.NextPageToken
		if len(token) == 0 || len(runs) >= limit {
			break
		}
	}
	// Visibility lists running dumps first, then by close time; dumps of an account run one
	// at a time, so sorting what came back by start time gives newest first.
	sort.SliceStable(runs, func(i, j int) bool { return runs[i].StartTime.After(runs[j].StartTime) })
	if len(runs) > limit {
		runs = runs[:limit]
	}
	return runs, nil
}

func runFrom(e *workflowpb.WorkflowExecutionInfo) Run {
	r := Run{WorkflowID: e.GetExecution().GetWorkflowId(), RunID: e.GetExecution().GetRunId(), Status: statusName(e.GetStatus())}
	if e.GetStartTime() != nil {
		r.StartTime = e.GetStartTime().AsTime().UTC()
	}
	if e.GetCloseTime() != nil && e.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t := e.GetCloseTime().AsTime().UTC()
		r.CloseTime = &t
	}
	r.DumpFolder = keyword(e.GetSearchAttributes(), workflows.AttrDumpFolder.GetName())
	r.ExportState = keyword(e.GetSearchAttributes(), workflows.AttrExportState.GetName())
	return r
}

func keyword(sa *commonpb.SearchAttributes, name string) string {
	p, ok := sa.GetIndexedFields()[name]
	if !ok {
		return ""
	}
	var s string
	if err := converter.GetDefaultDataConverter().FromPayload(p, &s); err != nil {
		// A keyword list decodes as a list; show its first value.
		var l []string
		if converter.GetDefaultDataConverter().FromPayload(p, &l) == nil && len(l) > 0 {
			return l[0]
		}
		return ""
	}
	return s
}
