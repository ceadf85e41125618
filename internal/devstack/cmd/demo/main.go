// Command demo runs one account's dump end to end on the local stack: Temporal with its Web
// UI, MinIO as the customer's S3 (PutObject-only role, SSE-KMS) and the BigQuery emulator
// seeded with sample tables. It drives the real worker and starter binaries, then reads what
// landed back with DuckDB and compares it with the source.
//
// DEMO_HOLD=0 exits when the dump is checked (non-zero on any failure); otherwise the stack
// stays up, with the Web UI, until Ctrl-C.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/dreamdata/destination-aws-s3/internal/devstack"
)

const (
	account     = "acme-demo"
	metricsAddr = "127.0.0.1:9464"
)

func main() {
	bin := flag.String("bin", "bin", "directory with the worker and starter binaries")
	flag.Parse()
	hold := os.Getenv("DEMO_HOLD") != "0"
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := demo(ctx, *bin, hold); err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

func step(format string, a ...any) { fmt.Printf("\n==> "+format+"\n", a...) }

func demo(ctx context.Context, bin string, hold bool) error {
	bin, _ = filepath.Abs(bin)
	step("starting the local stack (Temporal + Web UI, MinIO with STS and KMS, BigQuery emulator)")
	t0 := time.Now()
	st, err := devstack.Start(ctx, devstack.Options{Ports: devstack.DemoPorts, UI: true})
	if err != nil {
		return err
	}
	defer st.Stop()
	fmt.Printf("stack up in %s; logs in %s\n", time.Since(t0).Round(time.Millisecond), st.Dir)

	step("seeding BigQuery dataset %s.%s with the six sample tables", devstack.Project, devstack.SampleDataset)
	t0 = time.Now()
	if err := st.SeedSample(ctx, devstack.SampleDataset, devstack.SampleSizes); err != nil {
		return err
	}
	fmt.Printf("seeded in %s\n", time.Since(t0).Round(time.Millisecond))

	accounts := filepath.Join(st.Dir, "accounts.yaml")
	if err := os.WriteFile(accounts, []byte(fmt.Sprintf(`# The demo account: MinIO plays the customer's bucket and IAM.
accounts:
  - id: %s
    plan: paid
    bucket: %s
    role_arn: arn:aws:iam::000000000000:role/dreamdata-data-platform
    prefix: dreamdata
    kms_key_arn: %s
    bigquery:
      project: %s
      dataset: %s
`, account, devstack.CustomerBucket, devstack.KMSKeyID, devstack.Project, devstack.SampleDataset)), 0o644); err != nil {
		return err
	}

	step("starting a worker")
	worker := exec.CommandContext(ctx, filepath.Join(bin, "worker"))
	worker.Env = append(append(os.Environ(), st.WorkerEnv()...), "METRICS_ADDR="+metricsAddr)
	wlog, err := os.Create(st.LogPath("worker"))
	if err != nil {
		return err
	}
	worker.Stdout, worker.Stderr = wlog, wlog
	worker.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := worker.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	defer func() { _ = worker.Process.Signal(syscall.SIGTERM); _ = worker.Wait() }()
	fmt.Printf("worker pid %d, log %s\n", worker.Process.Pid, st.LogPath("worker"))

	starter := func(args ...string) error {
		fmt.Printf("$ starter %v\n", args)
		c := exec.CommandContext(ctx, filepath.Join(bin, "starter"), args...)
		c.Env = append(os.Environ(), st.WorkerEnv()...)
		c.Stdout, c.Stderr = os.Stdout, os.Stderr
		return c.Run()
	}
	step("syncing the account's schedule (04:00 and 15:00 UTC)")
	if err := starter("schedules", "sync", "--accounts", accounts); err != nil {
		return err
	}
	if err := starter("schedules", "sync", "--accounts", accounts); err != nil {
		return err
	}

	step("triggering one dump now and waiting for it")
	t0 = time.Now()
	if err := starter("run", account, "--wait"); err != nil {
		return fmt.Errorf("dump failed (worker log: %s): %w", st.LogPath("worker"), err)
	}
	fmt.Printf("dump took %s\n", time.Since(t0).Round(time.Millisecond))

	step("reading the dump back from S3 with DuckDB (root credentials; the exporter cannot read)")
	r, tables, err := devstack.ReadBack(ctx, st.RootS3(), devstack.CustomerBucket, "dreamdata", devstack.SampleSchemas)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(r.Tables))
	for n := range r.Tables {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Printf("receipt timestamp %s\n\n", r.Timestamp)
	fmt.Printf("%-20s %-36s %6s %8s %12s %12s %s\n", "TABLE", "FOLDER", "FILES", "OBJECTS", "SOURCE ROWS", "S3 ROWS", "CONTENT")
	failed := false
	for _, n := range names {
		t, rb := r.Tables[n], tables[n]
		rows := devstack.SampleRows(n, devstack.SampleSizes[n])
		sourceRows, err := st.CountRows(ctx, devstack.SampleDataset, n)
		if err != nil {
			return err
		}
		match := "checksum equal"
		if rb.Checksum != devstack.Checksum(devstack.SampleSchemas[n], rows) {
			match, failed = "CHECKSUM DIFFERS", true
		}
		if len(rb.Objects) != t.TotalFileCount || rb.Rows != sourceRows || sourceRows != int64(len(rows)) {
			failed = true
		}
		fmt.Printf("%-20s %-36s %6d %8d %12d %12d %s\n", n, t.Folder, t.TotalFileCount, len(rb.Objects), sourceRows, rb.Rows, match)
	}
	if failed || len(names) != len(devstack.SampleSizes) {
		return fmt.Errorf("the dump does not match the source")
	}
	fmt.Println("\nevery table: object count = total_file_count, rows and content equal the source")

	step("worker metrics at http://%s/metrics (excerpt)", metricsAddr)
	if err := printMetrics("http://" + metricsAddr + "/metrics"); err != nil {
		fmt.Println("metrics:", err)
	}

	if !hold {
		return nil
	}
	step("the stack stays up: Temporal Web UI at %s (Ctrl-C to stop)", st.TemporalUIURL)
	fmt.Printf("workflows of the demo account: %s/namespaces/default/workflows?query=AccountId%%3D%%22%s%%22\n", st.TemporalUIURL, account)
	fmt.Printf("S3 (MinIO) at %s, BigQuery emulator at %s\n", st.S3Endpoint, st.BigQueryEndpoint)
	<-ctx.Done()
	return nil
}

// printMetrics shows the exporter's own counters from the worker's Prometheus endpoint.
func printMetrics(url string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "s3export_rows_total") || strings.HasPrefix(line, "s3export_shards_total") ||
			strings.HasPrefix(line, "s3export_receipts_total") {
			fmt.Println(line)
		}
	}
	return nil
}
