package workflows

import (
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// TestReplayRecordedHistories replays dumps recorded on a real Temporal server (see
// recordHistory in internal/e2e): the happy path; a dump parked on a misconfiguration and
// resumed by a retry update; one that also took a rerun update while parked; a table split
// into stream groups that ran out of its session and split again (internal/e2e/longtable).
// A change that
// makes ExportAccount non-deterministic for dumps in flight fails here: version it with
// workflow.GetVersion, and add a new recording beside the old ones (dumps of every release
// still running must keep replaying).
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob("../testdata/export_history*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no recorded history in testdata (%v)", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(ExportAccount, workflow.RegisterOptions{Name: ExportWorkflowName})
			if err := r.ReplayWorkflowHistoryFromJSONFile(nil, f); err != nil {
				t.Fatal(err)
			}
		})
	}
}
