//go:build integration

package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/dreamdata/destination-aws-s3/internal/devstack"
	"github.com/dreamdata/destination-aws-s3/internal/layout"
	"github.com/dreamdata/destination-aws-s3/workflows"
)

const crashQueue = "e2e-crash"

// TestWorkerKilledMidTable kills a worker process with SIGKILL while it uploads the shards of
// a table; a second worker resumes the activity from its last heartbeat. The dump must land
// exactly as if nothing had happened: contiguous shards, no row lost or duplicated.
func TestWorkerKilledMidTable(t *testing.T) {
	t.Parallel() // most of a dump is the wait for its minute to end; run them side by side
	bin := filepath.Join(t.TempDir(), "worker")
	build := exec.Command("go", "build", "-o", bin, "../../worker")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build worker: %v\n%s", err, out)
	}
	startWorkerProcess := func(name string, env ...string) *exec.Cmd {
		cmd := exec.Command(bin)
		cmd.Env = append(append(append(os.Environ(), stack.WorkerEnv()...),
			"TASK_QUEUE="+crashQueue, "SHARD_TARGET_BYTES=8192", "ROW_GROUP_BYTES=4096", "METRICS_ADDR="), env...)
		logf, err := os.Create(filepath.Join(t.TempDir(), name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}

	acc := account("crash", devstack.CustomerBucket)
	acc.Tables = []string{"events"}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	first := startWorkerProcess("worker-1")
	run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: "e2e-crash-" + time.Now().UTC().Format(time.RFC3339Nano), TaskQueue: crashQueue,
		TypedSearchAttributes: temporal.NewSearchAttributes(workflows.AttrAccountID.ValueSet(acc.ID)),
	}, workflows.ExportWorkflowName, workflows.ExportInput{Account: acc})
	if err != nil {
		t.Fatal(err)
	}

	// Wait until a few shards of events have landed, then kill the worker outright.
	dump := ""
	for dump == "" || countShards(t, acc.Prefix, dump) < 3 {
		if ctx.Err() != nil {
			t.Fatal("no shard appeared")
		}
		if dump == "" {
			dump = findDumpFolder(t, acc.Prefix)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = first.Process.Signal(syscall.SIGKILL)
	_ = first.Wait()
	killedAt := countShards(t, acc.Prefix, dump)
	t.Logf("killed worker-1 after %d shards of events", killedAt)

	metricsPort := freeTCPPort(t)
	second := startWorkerProcess("worker-2", fmt.Sprintf("METRICS_ADDR=127.0.0.1:%d", metricsPort))
	defer func() { _ = second.Process.Signal(syscall.SIGTERM); _ = second.Wait() }()
	var res workflows.ExportResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("dump did not survive the crash: %v", err)
	}
	// The worker that finished the table served what it did on /metrics.
	scrape := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort))
	for _, want := range []string{`s3export_shards_total{table="events"}`, `s3export_rows_total{table="events"}`,
		`s3export_receipts_total{account="crash"} 1`, `temporal_activity_execution_latency_seconds_count`} {
		if !strings.Contains(scrape, want) {
			t.Errorf("worker metrics lack %s", want)
		}
	}

	r, tables, err := devstack.ReadBack(ctx, stack.RootS3(), devstack.CustomerBucket, acc.Prefix, devstack.SampleSchemas)
	if err != nil {
		t.Fatal(err)
	}
	tr, rb := r.Tables["events"], tables["events"]
	if tr.TotalFileCount <= killedAt {
		t.Errorf("the crash happened after the last shard (%d of %d): the test proved nothing", killedAt, tr.TotalFileCount)
	}
	if len(rb.Objects) != tr.TotalFileCount {
		t.Errorf("%d objects, receipt says %d", len(rb.Objects), tr.TotalFileCount)
	}
	for i, k := range rb.Objects {
		if want := layout.ShardKey(acc.Prefix, res.DumpFolder, "events", i, ".parquet.gz"); k != want {
			t.Errorf("object %d is %s, want %s", i, k, want)
		}
	}
	n := sizes["events"]
	if rb.Rows != int64(n) {
		t.Errorf("rows %d, source %d", rb.Rows, n)
	}
	if want := devstack.Checksum(devstack.SampleSchemas["events"], devstack.SampleRows("events", n)); rb.Checksum != want {
		t.Errorf("content checksum %s, source %s", rb.Checksum, want)
	}
}

func freeTCPPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func httpGet(t *testing.T, url string) string {
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func findDumpFolder(t *testing.T, prefix string) string {
	keys, err := listKeys(prefix + "/")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		// <prefix>/<dump>/events/events_....
		rest := k[len(prefix)+1:]
		if len(rest) > len(layout.FolderTimeFormat) {
			return rest[:len(layout.FolderTimeFormat)]
		}
	}
	return ""
}

func countShards(t *testing.T, prefix, dump string) int {
	keys, err := listKeys(layout.TableFolder(prefix, dump, "events") + "/")
	if err != nil {
		t.Fatal(err)
	}
	return len(keys)
}
