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
// only.
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
		if pa.GetActivityType().GetName() != "ExportTable" || pa.GetHeartbeatDetails() == nil {
			continue
		}
		var p export.Progress
		if dc.FromPayloads(pa.GetHeartbeatDetails(), &p) != nil || p.Session == nil || p.Session.Table.Table == "" {
			continue
		}
		live[p.Session.Table.Table] = liveTable{Rows: p.Rows(), Estimated: p.Session.EstimatedRows}
	}
	return live
}
