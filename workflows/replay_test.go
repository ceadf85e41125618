package workflows

import (
	"testing"

	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// TestReplayRecordedHistory replays a dump recorded on a real Temporal server (see
// recordHistory in internal/e2e). A change that makes ExportAccount non-deterministic for
// dumps in flight fails here: version it with workflow.GetVersion, then re-record.
func TestReplayRecordedHistory(t *testing.T) {
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(ExportAccount, workflow.RegisterOptions{Name: ExportWorkflowName})
	if err := r.ReplayWorkflowHistoryFromJSONFile(nil, "../testdata/export_history.json"); err != nil {
		t.Fatal(err)
	}
}
