package devstack

import (
	"context"
	"fmt"
	"os"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"
)

// SaveHistory writes a workflow's whole history as the JSON the SDK's replayer reads
// (worker.WorkflowReplayer.ReplayWorkflowHistoryFromJSONFile), and returns its event count.
// Recorded dumps of every release stay in testdata and must keep replaying.
func SaveHistory(ctx context.Context, c client.Client, workflowID, path string) (int, error) {
	it := c.GetWorkflowHistory(ctx, workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &historypb.History{}
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return 0, fmt.Errorf("history of %s: %w", workflowID, err)
		}
		h.Events = append(h.Events, e)
	}
	data, err := protojson.MarshalOptions{Indent: "  "}.Marshal(h)
	if err != nil {
		return 0, err
	}
	return len(h.Events), os.WriteFile(path, data, 0o644)
}
