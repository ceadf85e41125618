//go:build integration

// Package e2e runs dumps on the real local stack: a Temporal server, MinIO enforcing a
// PutObject-only customer policy through STS, and the BigQuery emulator. What landed is read
// back with DuckDB and compared with the rows that were inserted.
package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/dreamdata/destination-aws-s3/activities"
	"github.com/dreamdata/destination-aws-s3/internal/bqsource"
	"github.com/dreamdata/destination-aws-s3/internal/config"
	"github.com/dreamdata/destination-aws-s3/internal/devstack"
	"github.com/dreamdata/destination-aws-s3/internal/failure"
	"github.com/dreamdata/destination-aws-s3/internal/layout"
	"github.com/dreamdata/destination-aws-s3/internal/s3dest"
	"github.com/dreamdata/destination-aws-s3/internal/schedules"
	"github.com/dreamdata/destination-aws-s3/workflows"
)

const dataset = "e2e_platform"

// sizes are smaller than the demo's, but shards are small too, so tables span many shards.
// paid_ads is not seeded here: the emulator confuses tables of the same name in different
// datasets, and TestEveryEmulatorTypeExact needs a table name of its own (the demo dumps all
// six tables).
var sizes = map[string]int{"companies": 1200, "contacts": 2500, "events": 6000, "revenue": 0, "revenue_attribution": 2000}

// e2eTables are the tables of the test accounts.
var e2eTables = []string{"companies", "contacts", "events", "revenue", "revenue_attribution"}

var (
	stack *devstack.Stack
	tc    client.Client
	puts  = &putLog{}
)

func TestMain(m *testing.M) {
	ctx := context.Background()
	var err error
	stack, err = devstack.Start(ctx, devstack.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start stack:", err)
		os.Exit(1)
	}
	code := func() int {
		defer stack.Stop()
		if err := stack.SeedSample(ctx, dataset, sizes); err != nil {
			fmt.Fprintln(os.Stderr, "seed:", err)
			return 1
		}
		tc, err = client.Dial(client.Options{HostPort: stack.TemporalAddress})
		if err != nil {
			fmt.Fprintln(os.Stderr, "dial:", err)
			return 1
		}
		defer tc.Close()
		stopWorker, err := startWorker(ctx)
		if err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			return 1
		}
		defer stopWorker()
		return m.Run()
	}()
	os.Exit(code)
}

// startWorker runs a worker in this process, wired like worker/main.go, with small shards and
// a log of every successful PutObject in order.
func startWorker(ctx context.Context) (func(), error) {
	source, err := bqsource.New(ctx, devstack.Project, bqsource.Settings{
		BillingProject: devstack.Project, Endpoint: stack.BigQueryEndpoint, StorageEndpoint: stack.BigQueryStorageEndpoint})
	if err != nil {
		return nil, err
	}
	dest := s3dest.New(stack.AWSConfig(), s3dest.Settings{S3Endpoint: stack.S3Endpoint, STSEndpoint: stack.S3Endpoint, PathStyle: true})
	w := worker.New(tc, workflows.TaskQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(workflows.ExportAccount, workflow.RegisterOptions{Name: workflows.ExportWorkflowName})
	w.RegisterActivity(&activities.Activities{
		Destinations:     recordingDestinations{dest},
		Source:           source,
		TargetShardBytes: 64 << 10,
		RowGroupBytes:    32 << 10,
	})
	if err := w.Start(); err != nil {
		return nil, err
	}
	return func() { w.Stop(); source.Close() }, nil
}

func account(id, bucket string) config.Account {
	a := config.Account{ID: id, Bucket: bucket, RoleARN: "arn:aws:iam::000000000000:role/dreamdata-data-platform",
		Prefix: "exports/" + id, KMSKeyARN: devstack.KMSKeyID,
		BigQuery: config.BigQuerySource{Project: devstack.Project, Dataset: dataset}}
	a.Tables = e2eTables
	a.ApplyDefaults()
	return a
}

func runDump(t *testing.T, acc config.Account) (workflows.ExportResult, error) {
	res, _, err := runDumpID(t, acc)
	return res, err
}

func runDumpID(t *testing.T, acc config.Account) (workflows.ExportResult, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: workflows.ScheduleID(acc.ID) + "-" + time.Now().UTC().Format(time.RFC3339Nano), TaskQueue: workflows.TaskQueue,
		TypedSearchAttributes: temporal.NewSearchAttributes(workflows.AttrAccountID.ValueSet(acc.ID)),
	}, workflows.ExportWorkflowName, workflows.ExportInput{Account: acc})
	if err != nil {
		t.Fatal(err)
	}
	var res workflows.ExportResult
	err = run.Get(ctx, &res)
	return res, run.GetID(), err
}

// recordHistory saves a workflow's history as JSON for the replay test in workflows/
// (RECORD_HISTORY_DIR=$PWD/testdata go test -tags integration ./internal/e2e): the happy path
// into export_history.json, a parked dump that takes a rerun and is resumed by a retry into
// export_history_parked_rerun_retry.json. Histories of earlier releases stay in testdata:
// every one must keep replaying.
func recordHistory(t *testing.T, workflowID, name string) {
	t.Helper()
	dir := os.Getenv("RECORD_HISTORY_DIR")
	if dir == "" {
		return
	}
	path := filepath.Join(dir, name)
	n, err := devstack.SaveHistory(context.Background(), tc, workflowID, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded %d events of %s into %s", n, workflowID, path)
}

func TestDumpLandsCompleteAndExact(t *testing.T) {
	t.Parallel() // most of a dump is the wait for its minute to end; run them side by side
	acc := account("acme", devstack.CustomerBucket)
	res, id, err := runDumpID(t, acc)
	if err != nil {
		t.Fatalf("dump failed: %v", err)
	}
	recordHistory(t, id, "export_history.json")
	r, tables, err := devstack.ReadBack(context.Background(), stack.RootS3(), devstack.CustomerBucket, acc.Prefix, devstack.SampleSchemas)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Tables) != len(e2eTables) {
		t.Fatalf("receipt has %d tables", len(r.Tables))
	}
	if r.Timestamp != res.Timestamp {
		t.Errorf("root receipt %s is not this dump's %s", r.Timestamp, res.Timestamp)
	}
	for name, n := range sizes {
		tr, rb := r.Tables[name], tables[name]
		if tr.Folder != layout.TableFolder(acc.Prefix, res.DumpFolder, name) {
			t.Errorf("%s: folder %q", name, tr.Folder)
		}
		if len(rb.Objects) != tr.TotalFileCount {
			t.Errorf("%s: %d objects in the folder, receipt says %d", name, len(rb.Objects), tr.TotalFileCount)
		}
		for i, k := range rb.Objects {
			if want := layout.ShardKey(acc.Prefix, res.DumpFolder, name, i, ".parquet.gz"); k != want {
				t.Errorf("%s: object %d is %q, want %q (indexes must be contiguous from 0)", name, i, k, want)
			}
		}
		if rb.Rows != int64(n) || tr.RowCount != int64(n) {
			t.Errorf("%s: DuckDB read %d rows, receipt %d, source %d", name, rb.Rows, tr.RowCount, n)
		}
		if want := devstack.Checksum(devstack.SampleSchemas[name], devstack.SampleRows(name, n)); rb.Checksum != want {
			t.Errorf("%s: content checksum %s, source %s", name, rb.Checksum, want)
		}
		t.Logf("%-20s files=%d rows=%d duckdb types=%v", name, tr.TotalFileCount, rb.Rows, rb.DuckDBTypes)
	}
	if tables["events"].Rows > 0 && r.Tables["events"].TotalFileCount < 2 {
		t.Errorf("events should span several shards at a 64 KiB target")
	}
	if r.Tables["revenue"].TotalFileCount != 1 {
		t.Errorf("an empty table must still have exactly one (empty) parquet file")
	}

	// The receipt is the dump's last write, and the folder copy comes before the root one.
	keys := puts.keysFor(acc.Prefix + "/")
	if len(keys) == 0 || keys[len(keys)-1] != layout.ReceiptKey(acc.Prefix) {
		t.Fatalf("last write of the dump is not receipt.json: %v", tail(keys))
	}
	if keys[len(keys)-2] != layout.DumpReceiptKey(acc.Prefix, res.DumpFolder) {
		t.Errorf("the dump folder's receipt copy should be written just before the root receipt: %v", tail(keys))
	}
	shards := 0
	for _, tr := range r.Tables {
		shards += tr.TotalFileCount
	}
	if len(keys) != shards+2 {
		t.Errorf("%d writes for %d shards + 2 receipts", len(keys), shards)
	}

	// Shards are parquet objects, without Content-Encoding, written with SSE-KMS.
	head, err := stack.RootS3().HeadObject(context.Background(), &s3.HeadObjectInput{
		Bucket: aws.String(devstack.CustomerBucket), Key: aws.String(layout.ShardKey(acc.Prefix, res.DumpFolder, "events", 0, ".parquet.gz"))})
	if err != nil {
		t.Fatal(err)
	}
	if head.ContentEncoding != nil && *head.ContentEncoding != "" {
		t.Errorf("shard has Content-Encoding %q", *head.ContentEncoding)
	}
	if string(head.ServerSideEncryption) != "aws:kms" {
		t.Errorf("shard encryption %q, want aws:kms", head.ServerSideEncryption)
	}
}

// TestExporterCanOnlyPut proves the policy in force is the customer's: with the assumed
// role's credentials every list, read, head and delete is denied.
func TestExporterCanOnlyPut(t *testing.T) {
	ctx := context.Background()
	stsClient := sts.NewFromConfig(stack.AWSConfig(), func(o *sts.Options) { o.BaseEndpoint = aws.String(stack.S3Endpoint) })
	creds := aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(stsClient, "arn:aws:iam::000000000000:role/r",
		func(o *stscreds.AssumeRoleOptions) { o.ExternalID = aws.String("acme") }))
	c := s3.New(s3.Options{Region: devstack.Region, BaseEndpoint: aws.String(stack.S3Endpoint), UsePathStyle: true, Credentials: creds})
	b := aws.String(devstack.CustomerBucket)
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("probe/x"), Body: strings.NewReader("x")}); err != nil {
		t.Fatalf("PutObject must be allowed: %v", err)
	}
	denied := map[string]error{}
	_, denied["ListObjectsV2"] = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: b})
	_, denied["GetObject"] = c.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String("probe/x")})
	_, denied["HeadObject"] = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String("probe/x")})
	_, denied["DeleteObject"] = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: b, Key: aws.String("probe/x")})
	_, denied["PutObject other bucket"] = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(devstack.DeniedBucket), Key: aws.String("x"), Body: strings.NewReader("x")})
	for op, err := range denied {
		if err == nil {
			t.Errorf("%s succeeded with the customer's PutObject-only role", op)
		}
	}
}

// TestMisconfigurationParksWithAClearMessage: each misconfiguration stops the dump at once
// (no retries burnt) in the visible state waiting_for_fix, with the cause as the type and a
// message naming the fix. Fixing it and signalling retry finishes the dump.
func TestMisconfigurationParksWithAClearMessage(t *testing.T) {
	t.Parallel() // most of a dump is the wait for its minute to end; run them side by side
	cases := map[string]struct {
		acc      config.Account
		kind     failure.Kind
		contains string
		fix      func(t *testing.T)
	}{
		"put denied":     {acc: account("denied", devstack.DeniedBucket), kind: failure.KindPutDenied, contains: "s3:PutObject"},
		"missing bucket": {acc: account("missing", devstack.MissingBucket), kind: failure.KindBucketNotFound, contains: "does not exist", fix: createMissingBucket},
		"unknown kms key": {acc: func() config.Account {
			a := account("kms", devstack.CustomerBucket)
			a.KMSKeyARN = "0badc0de-0000-4000-8000-000000000000" // a valid key id MinIO does not have
			return a
		}(), kind: failure.KindKMSDenied, contains: "kms:GenerateDataKey"},
	}
	for name, tcase := range cases {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
				ID: workflows.ScheduleID(tcase.acc.ID) + "-" + time.Now().UTC().Format(time.RFC3339Nano), TaskQueue: workflows.TaskQueue,
			}, workflows.ExportWorkflowName, workflows.ExportInput{Account: tcase.acc})
			if err != nil {
				t.Fatal(err)
			}
			p := waitForState(t, ctx, run.GetID(), workflows.StateWaitingForFix)
			if n := maxActivityAttempt(t, ctx, run.GetID()); n != 1 {
				t.Errorf("an activity ran %d attempts: a misconfiguration must not be retried", n)
			}
			if p.Parked == nil || p.Parked.Type != string(tcase.kind) {
				t.Fatalf("parked %+v, want type %s", p.Parked, tcase.kind)
			}
			if !strings.Contains(p.Parked.Message, tcase.contains) {
				t.Errorf("message %q should mention %q", p.Parked.Message, tcase.contains)
			}
			assertNoSecrets(t, p.Parked.Message)
			desc, err := tc.DescribeWorkflowExecution(ctx, run.GetID(), "")
			if err != nil {
				t.Fatal(err)
			}
			if sa := desc.WorkflowExecutionInfo.SearchAttributes.GetIndexedFields()["ExportState"]; sa == nil || !strings.Contains(string(sa.Data), workflows.StateWaitingForFix) {
				t.Errorf("ExportState search attribute = %v", sa)
			}
			if tcase.fix == nil {
				if err := tc.TerminateWorkflow(ctx, run.GetID(), "", "test done"); err != nil {
					t.Fatal(err)
				}
				return
			}
			// A rerun accepted while the dump waits for the fix runs after it, at a fresh snapshot.
			rh, err := tc.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: run.GetID(), UpdateName: workflows.UpdateRerun,
				Args: []any{workflows.RerunRequest{Tables: []string{"companies"}}}, WaitForStage: client.WorkflowUpdateStageCompleted})
			if err != nil {
				t.Fatal(err)
			}
			var rerun workflows.RerunResult
			if err := rh.Get(ctx, &rerun); err != nil || !strings.Contains(rerun.Message, "waiting for a fix first") {
				t.Fatalf("rerun answer while parked %+v: %v", rerun, err)
			}
			tcase.fix(t)
			h, err := tc.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: run.GetID(), UpdateName: workflows.UpdateRetry,
				Args: []any{workflows.RetryRequest{Note: "fixed"}}, WaitForStage: client.WorkflowUpdateStageCompleted})
			if err != nil {
				t.Fatal(err)
			}
			var answer workflows.RetryResult
			if err := h.Get(ctx, &answer); err != nil || !strings.Contains(answer.Message, "resumes") {
				t.Fatalf("retry answer %+v: %v", answer, err)
			}
			var res workflows.ExportResult
			if err := run.Get(ctx, &res); err != nil {
				t.Fatalf("dump did not finish after the fix: %v", err)
			}
			recordHistory(t, run.GetID(), "export_history_parked_rerun_retry.json")
			if len(res.Tables) != len(e2eTables) {
				t.Errorf("receipt after the fix has %d tables", len(res.Tables))
			}
		})
	}
}

// maxActivityAttempt is the highest attempt number of any activity of a workflow so far.
func maxActivityAttempt(t *testing.T, ctx context.Context, id string) int32 {
	t.Helper()
	var n int32
	it := tc.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := e.GetActivityTaskStartedEventAttributes(); a != nil && a.GetAttempt() > n {
			n = a.GetAttempt()
		}
	}
	return n
}

func createMissingBucket(t *testing.T) {
	if _, err := stack.RootS3().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(devstack.MissingBucket)}); err != nil {
		t.Fatal(err)
	}
}

func waitForState(t *testing.T, ctx context.Context, id, state string) workflows.Progress {
	t.Helper()
	var p workflows.Progress
	for {
		v, err := tc.QueryWorkflow(ctx, id, "", workflows.QueryProgress)
		if err == nil && v.Get(&p) == nil && p.State == state {
			return p
		}
		if ctx.Err() != nil {
			t.Fatalf("workflow %s never reached %s (last %+v, %v)", id, state, p, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func assertNoSecrets(t *testing.T, s string) {
	t.Helper()
	for _, secret := range []string{stack.ExporterSecret, stack.MinIORootPassword} {
		if strings.Contains(s, secret) {
			t.Errorf("a secret leaked into %q", s)
		}
	}
}

func TestSchedulesSyncIsIdempotent(t *testing.T) {
	ctx := context.Background()
	f := &config.File{Accounts: []config.Account{account("sched-paid", devstack.CustomerBucket), account("sched-free", devstack.CustomerBucket)}}
	f.Accounts[1].Plan = config.PlanFree
	sync := func() ([]schedules.Result, error) {
		rep, err := schedules.Reconcile(ctx, tc, f, schedules.Options{}, schedules.SyncOptions{Prune: true})
		return rep.Results, err
	}
	first, err := sync()
	if err != nil {
		t.Fatal(err)
	}
	second, err := sync()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range first {
		if strings.HasPrefix(r.Account, "sched-") && r.Outcome != schedules.Created {
			t.Errorf("first sync: %s %s", r.ScheduleID, r.Outcome)
		}
	}
	for _, r := range second {
		if r.Outcome != schedules.Unchanged {
			t.Errorf("second sync changed %s: %s", r.ScheduleID, r.Outcome)
		}
	}
	d, err := tc.ScheduleClient().GetHandle(ctx, workflows.ScheduleID("sched-paid")).Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var hours []string
	for _, n := range d.Info.NextActionTimes {
		hours = append(hours, n.UTC().Format("15:04:05"))
	}
	sort.Strings(hours)
	if len(hours) < 2 || !contains(hours, "04:00:00") || !contains(hours, "15:00:00") {
		t.Errorf("paid next action times %v, want 04:00 and 15:00 UTC", d.Info.NextActionTimes)
	}
	for _, h := range hours {
		if h != "04:00:00" && h != "15:00:00" {
			t.Errorf("unexpected next action time %s", h)
		}
	}
	// A changed account updates its schedule; a removed one loses it.
	f.Accounts[0].Prefix = "changed"
	f.Accounts = f.Accounts[:1]
	third, err := sync()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]schedules.Outcome{}
	for _, r := range third {
		got[r.Account] = r.Outcome
	}
	if got["sched-paid"] != schedules.Updated || got["sched-free"] != schedules.Deleted {
		t.Errorf("third sync: %v", got)
	}
}

// listKeys lists keys with root credentials.
func listKeys(prefix string) ([]string, error) {
	out, err := stack.RootS3().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(devstack.CustomerBucket), Prefix: aws.String(prefix)})
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(out.Contents))
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return keys, nil
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func tail(s []string) []string {
	if len(s) > 4 {
		return s[len(s)-4:]
	}
	return s
}

// putLog records successful writes in the order S3 acknowledged them.
type putLog struct {
	mu   sync.Mutex
	keys []string
}

func (l *putLog) add(k string) {
	l.mu.Lock()
	l.keys = append(l.keys, k)
	l.mu.Unlock()
}

func (l *putLog) keysFor(prefix string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, k := range l.keys {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	return out
}

type recordingDestinations struct{ *s3dest.Client }

func (d recordingDestinations) Writer(t s3dest.Target) s3dest.Writer {
	return recordingWriter{d.Client.Writer(t)}
}

type recordingWriter struct{ s3dest.Writer }

func (w recordingWriter) Put(ctx context.Context, o s3dest.Object) (s3dest.PutResult, error) {
	res, err := w.Writer.Put(ctx, o)
	if err == nil {
		puts.add(o.Key)
	}
	return res, err
}
