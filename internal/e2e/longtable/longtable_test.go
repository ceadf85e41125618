//go:build integration

// Package longtable runs a dump of a table that one worker cannot read within one BigQuery
// read session, on the real local stack: the BigQuery proxy's sessions live 45 seconds and
// each of their streams serves 40 rows a second, so read whole on one worker the table would
// take minutes. It must still land complete, exact and numbered without gaps.
package longtable

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/dreamdata/destination-aws-s3/activities"
	"github.com/dreamdata/destination-aws-s3/internal/bqsource"
	"github.com/dreamdata/destination-aws-s3/internal/config"
	"github.com/dreamdata/destination-aws-s3/internal/devstack"
	"github.com/dreamdata/destination-aws-s3/internal/failure"
	"github.com/dreamdata/destination-aws-s3/internal/layout"
	"github.com/dreamdata/destination-aws-s3/internal/s3dest"
	"github.com/dreamdata/destination-aws-s3/workflows"
)

const (
	dataset = "long_platform"
	table   = "events"
	rows    = 16_000
	// Each stream of a session serves rowsPerSecond rows a second, and a session lives
	// sessionTTL: a worker reading 2 streams needs 200 s for the table, 4 groups (8 streams)
	// 50 s, 8 groups (16 streams) 25 s; the upload window of a 45 s session is about 41 s.
	rowsPerSecond = 40
	sessionTTL    = 45 * time.Second
	maxStreams    = 2
)

// TestTableLongerThanASessionFinishes splits the table into 4 stream groups (by the size
// estimate), which still cannot finish within one session; the dump starts it again on a new
// session with 8 groups, which can, and the table lands complete and exact.
func TestTableLongerThanASessionFinishes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	stack, err := devstack.Start(ctx, devstack.Options{BQEmuArgs: []string{
		"--max-streams", "16", "--snapshot-sessions", "--stream-chunk-rows", "50", "--batch-rows", "20",
		"--session-ttl", sessionTTL.String(), "--read-rows-per-second", fmt.Sprint(rowsPerSecond)}})
	if err != nil {
		t.Fatal(err)
	}
	defer stack.Stop()
	if err := stack.SeedSample(ctx, dataset, map[string]int{table: rows}); err != nil {
		t.Fatal(err)
	}
	source, err := bqsource.New(ctx, devstack.Project, bqsource.Settings{
		BillingProject: devstack.Project, Endpoint: stack.BigQueryEndpoint, StorageEndpoint: stack.BigQueryStorageEndpoint})
	if err != nil {
		t.Fatal(err)
	}
	defer source.Close()
	// Size the groups from the proxy's own estimate, so the table splits into 4 at first.
	probe, err := source.Open(ctx, bqsource.TableRef{Project: devstack.Project, Dataset: dataset, Table: table}, time.Time{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if probe.EstimatedBytes <= 0 {
		t.Fatalf("the read session carries no size estimate")
	}
	splitBytes := probe.EstimatedBytes/4 + 1
	t.Logf("estimated %d bytes, %d rows: %d bytes a group", probe.EstimatedBytes, probe.EstimatedRows, splitBytes)

	tc, err := client.Dial(client.Options{HostPort: stack.TemporalAddress})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	w := worker.New(tc, workflows.TaskQueue, worker.Options{MaxConcurrentActivityExecutionSize: 16})
	w.RegisterWorkflowWithOptions(workflows.ExportAccount, workflow.RegisterOptions{Name: workflows.ExportWorkflowName})
	w.RegisterActivity(&activities.Activities{
		Destinations:     s3dest.New(stack.AWSConfig(), s3dest.Settings{S3Endpoint: stack.S3Endpoint, STSEndpoint: stack.S3Endpoint, PathStyle: true}),
		Source:           source,
		TargetShardBytes: 16 << 10,
		RowGroupBytes:    8 << 10,
		MaxStreams:       maxStreams,
		SplitBytes:       splitBytes,
		MaxStreamGroups:  8,
		Heartbeats:       tc,
	})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	acc := config.Account{ID: "longco", Bucket: devstack.CustomerBucket, RoleARN: "arn:aws:iam::000000000000:role/dreamdata-data-platform",
		Prefix: "exports/longco", KMSKeyARN: devstack.KMSKeyID, Tables: []string{table},
		BigQuery: config.BigQuerySource{Project: devstack.Project, Dataset: dataset}}
	acc.ApplyDefaults()
	started := time.Now()
	run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "longco-" + started.UTC().Format(time.RFC3339Nano), TaskQueue: workflows.TaskQueue},
		workflows.ExportWorkflowName, workflows.ExportInput{Account: acc})
	if err != nil {
		t.Fatal(err)
	}
	var res workflows.ExportResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("dump failed: %v", err)
	}
	t.Logf("dump done in %s", time.Since(started).Round(time.Second))

	// What landed: every shard 0..n-1, exactly the source's rows.
	r, tables, err := devstack.ReadBack(ctx, stack.RootS3(), devstack.CustomerBucket, acc.Prefix, devstack.SampleSchemas)
	if err != nil {
		t.Fatal(err)
	}
	tr, rb := r.Tables[table], tables[table]
	if len(rb.Objects) != tr.TotalFileCount {
		t.Errorf("%d objects in the folder, the receipt counts %d", len(rb.Objects), tr.TotalFileCount)
	}
	for i, k := range rb.Objects {
		if want := layout.ShardKey(acc.Prefix, res.DumpFolder, table, i, ".parquet.gz"); k != want {
			t.Fatalf("object %d is %q, want %q (indexes must be contiguous from 0)", i, k, want)
		}
	}
	if rb.Rows != rows || tr.RowCount != rows {
		t.Errorf("DuckDB read %d rows, the receipt says %d, the source has %d", rb.Rows, tr.RowCount, rows)
	}
	if want := devstack.Checksum(devstack.SampleSchemas[table], devstack.SampleRows(table, rows)); rb.Checksum != want {
		t.Errorf("content checksum %s, source %s", rb.Checksum, want)
	}

	// RECORD_HISTORY_DIR=$PWD/testdata records this dump for the replay test in workflows/.
	if dir := os.Getenv("RECORD_HISTORY_DIR"); dir != "" {
		n, err := devstack.SaveHistory(ctx, tc, run.GetID(), filepath.Join(dir, "export_history_split_session_ran_out.json"))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("recorded %d events", n)
	}

	// How it got there: the first split ran out of its session, the second finished.
	groups, ranOut, exports := scan(t, tc, run.GetID())
	t.Logf("ExportTable passes %d; stream groups scheduled per split %v; groups that ran out of their session %d; %d files, %d rows",
		exports, groups, ranOut, tr.TotalFileCount, rb.Rows)
	if len(groups) < 2 || groups[0] != 4 || ranOut == 0 {
		t.Errorf("want a split into 4 groups that ran out of its session, then a split into more: splits %v, ran out %d", groups, ranOut)
	}
}

// scan reads the dump's history: the groups of each split (in order), how many group
// attempts failed with ReadSessionExpired, and the ExportTable activities scheduled.
func scan(t *testing.T, tc client.Client, id string) (groups []int, ranOut, exports int) {
	it := tc.GetWorkflowHistory(context.Background(), id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	lastGroups := 0
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := e.GetActivityTaskScheduledEventAttributes(); a != nil {
			switch a.GetActivityType().GetName() {
			case "ExportTable":
				exports++
				lastGroups = 0
			case "ExportStreamGroup":
				if lastGroups == 0 {
					groups = append(groups, 0)
				}
				lastGroups++
				groups[len(groups)-1] = lastGroups
			}
		}
		if f := e.GetActivityTaskFailedEventAttributes(); f != nil {
			if f.GetFailure().GetApplicationFailureInfo().GetType() == string(failure.KindSessionExpired) {
				ranOut++
			}
		}
	}
	return groups, ranOut, exports
}
