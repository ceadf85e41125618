package main

import (
	"context"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/dreamdata/destination-aws-s3/internal/export"
)

// liveTable is what a running table export last heartbeated: the rows in the shards it
// uploaded, and BigQuery's estimate of the table's rows (0: unknown).
type liveTable struct {
	Rows      int64
	Estimated int64
}

// liveProgress reads the running table exports' last heartbeats from the dump's pending
// activities, keyed by table. It is best effort: without it, status shows finished passes
// only (and of a split table, the groups still running).
func liveProgress(ctx context.Context, cl client.Client, id string) map[string]liveTable {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	d, err := cl.DescribeWorkflowExecution(dctx, id, "")
	if err != nil {
		return nil
	}
	dc := converter.GetDefaultDataConverter()
	live := map[string]liveTable{}
	for _, pa := range d.GetPendingActivities() {
		// A table split into stream groups runs one ExportStreamGroup per group, each
		// heartbeating its own rows of the same session.
		if name := pa.GetActivityType().GetName(); name != "ExportTable" && name != "ExportStreamGroup" || pa.GetHeartbeatDetails() == nil {
			continue
		}
		var p export.Progress
		if dc.FromPayloads(pa.GetHeartbeatDetails(), &p) != nil || p.Session == nil || p.Session.Table.Table == "" {
			continue
		}
		lt := live[p.Session.Table.Table]
		lt.Rows += p.Rows()
		lt.Estimated = p.Session.EstimatedRows
		live[p.Session.Table.Table] = lt
	}
	return live
}
