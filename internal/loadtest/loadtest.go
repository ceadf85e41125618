// Package loadtest runs the fleet's 04:00 peak on the real local stack: many accounts'
// dumps started at once on one real worker process with its default settings, each dump
// checked against its receipt and its source, and the worker's peak memory and staging disk,
// the read sessions it opened and the dumps' throughput reported.
//
// Storage Read is served by an in-process server (readserver) that generates each table's
// rows on every read and keeps nothing per session but its stream ranges: the BigQuery
// emulator keeps every session's data in memory, and hundreds of sessions grow it to many
// GiB. The worker makes no BigQuery REST call during a dump, so the emulator only stands by
// for the REST endpoint. Temporal, MinIO (with STS, KMS and the customer's PutObject-only
// policy) and the worker are the real ones, started as internal/chaos starts them.
package loadtest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/dreamdata/destination-aws-s3/internal/chaos"
	"github.com/dreamdata/destination-aws-s3/internal/config"
	"github.com/dreamdata/destination-aws-s3/internal/devstack"
	"github.com/dreamdata/destination-aws-s3/internal/layout"
	"github.com/dreamdata/destination-aws-s3/internal/loadtest/readserver"
	"github.com/dreamdata/destination-aws-s3/workflows"
)

// TaskQueue is the load test's own task queue.
const TaskQueue = "loadtest"

// Config sets up a load test. Zero values mean the defaults noted.
type Config struct {
	// Accounts is how many accounts' dumps start at once; 0 means 100.
	Accounts int
	// Rows is the base row count of each table (see TableRows); 0 means 3000.
	Rows int
	// RepoRoot is the module root the worker is built from when WorkerBin is empty; "" means ".".
	RepoRoot string
	// WorkerBin is the worker binary to run; empty means build ./worker into Dir.
	WorkerBin string
	// BinDir holds temporal, minio and bqemu; empty means devstack.DefaultBinDir().
	BinDir string
	// Dir keeps the stack's data and every log; empty means a new temporary directory.
	Dir string
	// Timeout bounds the dumps from their start; 0 means 30 minutes.
	Timeout time.Duration
	// VerifyParallel is how many dumps are verified at once after the run; 0 means 2.
	VerifyParallel int
	// Out receives progress and the report; nil means os.Stdout.
	Out io.Writer
}

func (c *Config) defaults() {
	if c.Accounts <= 0 {
		c.Accounts = 100
	}
	if c.Rows <= 0 {
		c.Rows = 3000
	}
	if c.RepoRoot == "" {
		c.RepoRoot = "."
	}
	if c.BinDir == "" {
		c.BinDir = devstack.DefaultBinDir()
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Minute
	}
	if c.VerifyParallel <= 0 {
		c.VerifyParallel = 2
	}
	if c.Out == nil {
		c.Out = os.Stdout
	}
}

// run is one load test's state.
type run struct {
	cfg     Config
	started time.Time
	outMu   sync.Mutex
}

func (r *run) logf(format string, a ...any) {
	r.outMu.Lock()
	defer r.outMu.Unlock()
	fmt.Fprintf(r.cfg.Out, "[%6.1fs] %s\n", time.Since(r.started).Seconds(), fmt.Sprintf(format, a...))
}

// dump is one account's dump.
type dump struct {
	acc config.Account
	id  string
	res workflows.ExportResult
	err error
	ok  bool
}

// Run runs the load test and returns its report; an error means it could not run at all.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.defaults()
	r := &run{cfg: cfg, started: time.Now()}
	var err error
	if cfg.Dir == "" {
		if cfg.Dir, err = os.MkdirTemp("", "loadtest-*"); err != nil {
			return nil, err
		}
	}
	if cfg.Dir, err = filepath.Abs(cfg.Dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	r.cfg = cfg
	r.logf("work dir %s (stack data and every log)", cfg.Dir)

	bin, err := r.workerBinary(ctx)
	if err != nil {
		return nil, err
	}

	// Storage Read: the in-process server, counting sessions.
	rs := &readserver.Server{Lookup: lookup(cfg.Accounts, cfg.Rows)}
	rsAddr, err := rs.Start()
	if err != nil {
		return nil, err
	}
	defer rs.Stop()

	t0 := time.Now()
	stackDir := filepath.Join(cfg.Dir, "stack")
	if err := os.MkdirAll(stackDir, 0o755); err != nil {
		return nil, err
	}
	stack, err := devstack.Start(ctx, devstack.Options{BinDir: cfg.BinDir, Dir: stackDir})
	if err != nil {
		return nil, err
	}
	defer stack.Stop()
	r.logf("stack up in %s (Temporal, MinIO with STS/KMS); Storage Read served in-process on %s", time.Since(t0).Round(time.Millisecond), rsAddr)

	tc, err := client.Dial(client.Options{HostPort: stack.TemporalAddress, Logger: quietLogger{}})
	if err != nil {
		return nil, err
	}
	defer tc.Close()

	// One worker, default settings: only where things are, and its own task queue.
	env := []string{"TASK_QUEUE=" + TaskQueue,
		// Loopback and a free port: an empty METRICS_ADDR reads as unset (:9464 on every interface).
		"METRICS_ADDR=127.0.0.1:0"}
	for _, kv := range stack.WorkerEnv() {
		if strings.HasPrefix(kv, "BIGQUERY_STORAGE_ENDPOINT=") {
			kv = "BIGQUERY_STORAGE_ENDPOINT=" + rsAddr
		}
		env = append(env, kv)
	}
	workersDir := filepath.Join(cfg.Dir, "workers")
	if err := os.MkdirAll(workersDir, 0o755); err != nil {
		return nil, err
	}
	pool := chaos.NewWorkers(bin, workersDir, env)
	defer pool.StopAll()
	w, err := pool.Start()
	if err != nil {
		return nil, err
	}
	if err := waitPollers(ctx, tc, w); err != nil {
		return nil, fmt.Errorf("%w (worker log: %s)", err, strings.Join(pool.LogFiles(), ", "))
	}
	rep := &Report{Accounts: cfg.Accounts, RowsPerTable: cfg.Rows, Workers: 1, WorkerSizing: sizingLine(pool.LogFiles())}
	r.logf("worker pid %d polling task queue %q; %s", w.Pid(), TaskQueue, rep.WorkerSizing)

	smp := &sampler{pid: w.Pid(), dir: w.TempDir()}
	sctx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() { smp.run(sctx, 100*time.Millisecond); close(sampled) }()

	// The peak: every account's dump started at once, as their schedules fire at 04:00.
	dumps := make([]*dump, cfg.Accounts)
	runID := time.Now().UTC().Format("20060102T150405")
	// The dumps' own schedule time is the trigger's minute, so their give-up deadline is a day
	// away whatever the time of day the test runs at.
	schedule := []string{time.Now().UTC().Format("15:04")}
	for i := range dumps {
		acc := newAccount(i)
		dumps[i] = &dump{acc: acc, id: fmt.Sprintf("loadtest-%s-%s", acc.ID, runID)}
	}
	dctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	r.logf("starting %d dumps at once (%d tables)", len(dumps), len(dumps)*len(config.DefaultTables))
	start := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	var startMu sync.Mutex
	var lastStart time.Time
	var nComplete atomic.Int32
	for _, d := range dumps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			run, err := tc.ExecuteWorkflow(dctx, client.StartWorkflowOptions{
				ID: d.id, TaskQueue: TaskQueue,
				TypedSearchAttributes: temporal.NewSearchAttributes(workflows.AttrAccountID.ValueSet(d.acc.ID)),
			}, workflows.ExportWorkflowName, workflows.ExportInput{Account: d.acc, ScheduleTimes: schedule})
			<-sem
			startMu.Lock()
			lastStart = time.Now()
			startMu.Unlock()
			if err != nil {
				d.err = fmt.Errorf("start: %w", err)
				return
			}
			if err := run.Get(dctx, &d.res); err != nil {
				d.err = err
				return
			}
			d.ok = true
			nComplete.Add(1)
		}()
	}
	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()
	workerExited := false
	exited := w.Done() // nil once seen: a closed channel is always ready
	tick := time.NewTicker(15 * time.Second)
wait:
	for {
		select {
		case <-allDone:
			break wait
		case <-exited:
			exited, workerExited = nil, true
			r.logf("the worker exited (see %s): giving up on the dumps still running", strings.Join(pool.LogFiles(), ", "))
			cancel()
		case <-tick.C:
			rss, staging := smp.current()
			r.logf("%d/%d dumps complete, %d read sessions, worker RSS %s, staging %s", nComplete.Load(), len(dumps), rs.Counts().Sessions, mib(rss), mib(staging))
		}
	}
	tick.Stop()
	elapsed := time.Since(start)
	stopSampling()
	<-sampled
	if hwm, err := procStatus(w.Pid(), "VmHWM"); err == nil {
		smp.hwm.observe(hwm)
	}
	startMu.Lock()
	rep.StartSpread = lastStart.Sub(start)
	startMu.Unlock()
	rep.PeakRSS, rep.PeakRSSSampled, rep.PeakStaging = smp.hwm.get(), smp.rss.get(), smp.staging.get()
	rep.WorkerExited = workerExited
	r.logf("all %d dumps closed in %s", len(dumps), elapsed.Round(100*time.Millisecond))

	rep.Dumps = len(dumps)
	rep.TablesExpected = len(dumps) * len(config.DefaultTables)
	for _, d := range dumps {
		if d.ok {
			rep.Complete++
			rep.TablesExported += len(d.res.Tables)
		} else {
			rep.Failures = append(rep.Failures, fmt.Sprintf("%s (%s): %v", d.acc.ID, d.id, d.err))
		}
	}
	counts := rs.Counts()
	rep.Sessions, rep.ReadRows, rep.Reopened = counts.Sessions, counts.Reads, reopened(counts.PerTable)

	// When each root receipt landed: the bucket's own LastModified.
	root := stack.RootS3()
	landed, err := receiptTimes(ctx, root)
	if err != nil {
		return nil, err
	}
	var receiptAfter []time.Duration
	for _, d := range dumps {
		if !d.ok {
			continue
		}
		at, ok := landed[layout.ReceiptKey(d.acc.Prefix)]
		if !ok {
			rep.VerifyProblems = append(rep.VerifyProblems, d.acc.ID+": no root receipt in the bucket")
			continue
		}
		after := at.Sub(start)
		receiptAfter = append(receiptAfter, after)
		rep.TimeToLastReceipt = max(rep.TimeToLastReceipt, after)
		if rep.FirstReceipt == 0 || after < rep.FirstReceipt {
			rep.FirstReceipt = after
		}
	}
	rep.MedianReceipt = median(receiptAfter)

	// Each dump against its receipt and its source, after the run so the checks do not take
	// the worker's cores.
	t0 = time.Now()
	r.logf("verifying %d dumps with DuckDB (%d at a time)", rep.Complete, cfg.VerifyParallel)
	verifyDir := filepath.Join(cfg.Dir, "verify")
	if err := os.MkdirAll(verifyDir, 0o755); err != nil {
		return nil, err
	}
	v := chaos.NewVerifier(root, devstack.CustomerBucket, verifyDir)
	var vmu sync.Mutex
	vsem := make(chan struct{}, cfg.VerifyParallel)
	var vwg sync.WaitGroup
	for i, d := range dumps {
		if !d.ok {
			continue
		}
		vwg.Add(1)
		go func() {
			defer vwg.Done()
			vsem <- struct{}{}
			defer func() { <-vsem }()
			c := v.Check(ctx, d.acc, sourceOf(i, cfg.Rows, d.acc), d.res)
			vmu.Lock()
			defer vmu.Unlock()
			rep.Verified++
			rep.Rows += c.Rows
			rep.Bytes += c.Bytes
			rep.Objects += c.Objects
			for _, p := range c.Problems {
				rep.VerifyProblems = append(rep.VerifyProblems, d.acc.ID+": "+p)
			}
		}()
	}
	vwg.Wait()
	sort.Strings(rep.VerifyProblems)
	rep.Verify = time.Since(t0)

	pool.StopAll()
	rep.WorkerErrors, rep.WorkerWarnings = logProblems(pool.LogFiles())
	return rep, nil
}

// sourceOf is what account i's tables hold.
func sourceOf(i, base int, acc config.Account) map[string]chaos.SourceTable {
	out := map[string]chaos.SourceTable{}
	for _, t := range acc.Tables {
		n := TableRows(base, i, t)
		schema := devstack.SampleSchemas[t]
		out[t] = chaos.SourceTable{Schema: schema, Rows: n, Checksum: devstack.Checksum(schema, devstack.SampleRows(t, n))}
	}
	return out
}

// workerBinary is the configured worker binary, or one built from the repository.
func (r *run) workerBinary(ctx context.Context) (string, error) {
	if r.cfg.WorkerBin != "" {
		bin, err := filepath.Abs(r.cfg.WorkerBin)
		if err != nil {
			return "", err
		}
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("worker binary: %w (run `make build`)", err)
		}
		r.logf("worker binary %s", bin)
		return bin, nil
	}
	bin := filepath.Join(r.cfg.Dir, "worker")
	t0 := time.Now()
	bctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	build := exec.CommandContext(bctx, "go", "build", "-o", bin, "./worker")
	build.Dir = r.cfg.RepoRoot
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build worker: %v\n%s", err, out)
	}
	r.logf("built the worker in %s", time.Since(t0).Round(time.Millisecond))
	return bin, nil
}

// waitPollers waits until the worker polls both the workflow and the activity task queue.
func waitPollers(ctx context.Context, tc client.Client, w *chaos.Worker) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		ready := true
		for _, typ := range []enumspb.TaskQueueType{enumspb.TASK_QUEUE_TYPE_WORKFLOW, enumspb.TASK_QUEUE_TYPE_ACTIVITY} {
			d, err := tc.DescribeTaskQueue(ctx, TaskQueue, typ)
			if err != nil || len(d.GetPollers()) == 0 {
				ready = false
			}
		}
		if ready {
			return nil
		}
		select {
		case <-w.Done():
			return errors.New("the worker exited before it polled")
		case <-ctx.Done():
			return errors.New("the worker did not poll its task queue within 2 minutes")
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// receiptTimes lists when each root receipt.json of the load test was last written.
func receiptTimes(ctx context.Context, root *s3.Client) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	p := s3.NewListObjectsV2Paginator(root, &s3.ListObjectsV2Input{Bucket: aws.String(devstack.CustomerBucket), Prefix: aws.String(folderPrefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list receipts: %w", err)
		}
		for _, o := range page.Contents {
			k := aws.ToString(o.Key)
			if strings.HasSuffix(k, "/"+layout.ReceiptName) && strings.Count(k, "/") == 2 {
				out[k] = aws.ToTime(o.LastModified)
			}
		}
	}
	return out, nil
}

// logLine is what the load test reads of a worker's JSON log line.
type logLine struct {
	Level string `json:"level"`
	Msg   string `json:"msg"`
}

// forEachLine calls fn with every JSON log line of files, raw and decoded.
func forEachLine(files []string, fn func(raw string, l logLine)) {
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			var l logLine
			if json.Unmarshal(sc.Bytes(), &l) == nil {
				fn(sc.Text(), l)
			}
		}
		fh.Close()
	}
}

// logProblems are the worker's ERROR log lines and how many WARN lines it printed.
func logProblems(files []string) (errs []string, warnings int) {
	forEachLine(files, func(raw string, l logLine) {
		switch strings.ToUpper(l.Level) {
		case "ERROR":
			errs = append(errs, shorten(raw, 300))
		case "WARN", "WARNING":
			warnings++
		}
	})
	return errs, warnings
}

// sizingLine is the worker's "worker sizing" line: what its default settings derived.
func sizingLine(files []string) string {
	var out string
	forEachLine(files, func(raw string, l logLine) {
		if out != "" || l.Msg != "worker sizing" {
			return
		}
		var m map[string]any
		if json.Unmarshal([]byte(raw), &m) != nil || m["max_table_exports"] == nil {
			return
		}
		var parts []string
		for _, k := range []string{"cpus", "max_table_exports", "exports_limited_by", "max_streams", "memory_budget", "memory_estimate", "staging_budget"} {
			if v, ok := m[k]; ok {
				parts = append(parts, fmt.Sprintf("%s=%v", k, v))
			}
		}
		out = strings.Join(parts, " ")
	})
	return out
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// quietLogger silences the Temporal client.
type quietLogger struct{}

func (quietLogger) Debug(string, ...interface{}) {}
func (quietLogger) Info(string, ...interface{})  {}
func (quietLogger) Warn(string, ...interface{})  {}
func (quietLogger) Error(string, ...interface{}) {}
