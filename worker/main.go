// Command worker runs dumps: it polls the Temporal task queue and executes ExportAccount
// workflows and their activities. Run as many as throughput needs; they share nothing.
//
// A worker takes only the work its cores, memory and staging disk allow (see
// settings.Size): its activity slots are its concurrent table exports, and what it has no
// slot for stays queued in Temporal for another worker. Without that bound the SDK's default
// of 1,000 activities at once ran a worker out of memory at the fleet's 04:00 peak.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/dreamdata/destination-aws-s3/activities"
	"github.com/dreamdata/destination-aws-s3/internal/bqsource"
	"github.com/dreamdata/destination-aws-s3/internal/buildinfo"
	"github.com/dreamdata/destination-aws-s3/internal/export"
	"github.com/dreamdata/destination-aws-s3/internal/metrics"
	"github.com/dreamdata/destination-aws-s3/internal/parquetenc"
	"github.com/dreamdata/destination-aws-s3/internal/s3dest"
	"github.com/dreamdata/destination-aws-s3/internal/settings"
	"github.com/dreamdata/destination-aws-s3/internal/staging"
	"github.com/dreamdata/destination-aws-s3/internal/temporalconn"
	"github.com/dreamdata/destination-aws-s3/workflows"
)

func main() {
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ws, err := parseSettings(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fatal(logger, "read the worker's settings", err)
	}
	build := buildinfo.Get()
	if ws.showVersion {
		fmt.Println(build.String("worker"))
		return
	}
	// SIGINT or SIGTERM drains the worker (see drain); a second one ends it at once. The
	// clients get a context of their own: they must keep working while the worker drains.
	stopping, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	ctx := context.Background()

	// Sizing needs the staging directory's disk, and is checked before any connection so a
	// worker that cannot hold its work refuses at once.
	staged, err := staging.Open(ws.tempDir)
	if err != nil {
		fatal(logger, "prepare the staging directory", err)
	}
	defer staged.Close()
	if staged.Swept > 0 {
		logger.Info("swept staging directories of dead workers", "count", staged.Swept)
	}
	size, err := sizeWorker(ws, staged.Path)
	if err != nil {
		fatal(logger, "size the worker", err)
	}
	logger.Info("worker sizing", size.LogAttrs()...)
	for _, w := range size.Warnings {
		logger.Warn("worker sizing", "warning", w)
	}

	// The connection settings are read before anything slow, so a mistake in them (a TLS
	// file, a profile) stops the worker at once with the variable at fault.
	copts, err := temporalconn.Options(ws.temporalOverrides)
	if err != nil {
		fatal(logger, "read the Temporal connection settings", err)
	}

	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		fatal(logger, "load AWS configuration", err)
	}
	project := ws.bq.BillingProject
	if project == "" {
		project = "-"
	}
	source, err := bqsource.New(ctx, project, ws.bq)
	if err != nil {
		fatal(logger, "connect BigQuery", err)
	}
	defer source.Close()

	reg := metrics.NewWithOptions(metrics.Options{OnError: onceEach(func(err error) {
		logger.Warn("a Temporal SDK metric is dropped: its name is used with other labels", "error", err)
	})})
	defer reg.Close()
	reg.SetBuildInfo(build.Version, build.GoVersion, build.Revision)
	var ready metrics.Readiness
	if ws.metricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", reg.Handler())
		mux.Handle("/readyz", &ready)
		srv := &http.Server{Addr: ws.metricsAddr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
				logger.Error("metrics endpoint stopped", "addr", ws.metricsAddr, "error", err)
			}
		}()
		defer srv.Close()
	}

	tracing, err := temporalconn.NewTracing(ctx, "destination-aws-s3-worker")
	if err != nil {
		fatal(logger, "set up tracing", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := tracing.Shutdown(sctx); err != nil {
			logger.Warn("flush traces", "error", err)
		}
	}()

	copts.Logger = tlog.NewStructuredLogger(logger)
	copts.MetricsHandler = reg.Temporal()
	if tracing != nil {
		copts.Interceptors = append(copts.Interceptors, tracing.Interceptor)
	}
	conn := temporalconn.LogAttrs(copts)
	c, err := client.DialContext(stopping, copts)
	if err != nil {
		logger.Error("connect Temporal", append(conn, "error", err, "help", "see docs/deploy-temporal.md")...)
		os.Exit(1)
	}
	defer c.Close()

	inflight := &inflightActivities{}
	opts := workerOptions(size)
	opts.WorkerStopTimeout = ws.stopTimeout
	opts.Interceptors = append(opts.Interceptors, inflight)
	fatalErr := make(chan error, 1)
	opts.OnFatalError = func(err error) {
		select {
		case fatalErr <- err:
		default:
		}
	}
	w := worker.New(c, ws.taskQueue, opts)
	w.RegisterWorkflowWithOptions(workflows.ExportAccount, workflow.RegisterOptions{Name: workflows.ExportWorkflowName})
	w.RegisterActivity(&activities.Activities{
		Destinations:     s3dest.New(awsCfg, ws.s3),
		Source:           source,
		TargetShardBytes: int64(ws.shardTarget),
		RowGroupBytes:    int64(ws.rowGroup),
		TempDir:          staged.Path,
		Metrics:          reg.Exporter,
		MaxStreams:       int(ws.maxStreams),
		SplitBytes:       int64(ws.splitBytes),
		MaxStreamGroups:  int(ws.maxStreamGroups),
		BufferBytes:      size.BufferBytes,
		// Table exports heartbeat through the client, so they know when Temporal confirmed
		// them: their writes are fenced by that lease.
		Heartbeats: c,
		Projects:   activities.NewProjectLimiter(int(ws.maxPerProject), ws.bq.BillingProject),
	})
	if err := w.Start(); err != nil {
		fatal(logger, "start the worker", err)
	}
	ready.Set(metrics.Ready)
	logger.Info("worker started", append(conn, "version", build.Version, "revision", build.Revision, "task_queue", ws.taskQueue,
		"metrics", ws.metricsAddr, "tracing", tracing != nil, "worker_stop_timeout", ws.stopTimeout.String())...)

	select {
	case <-stopping.Done():
	case err := <-fatalErr:
		ready.Set(metrics.Draining)
		w.Stop()
		fatal(logger, "worker stopped", err)
	}
	stopSignals() // a second signal now ends the process at once
	drain(logger, w, &ready, inflight, ws.stopTimeout)
}

// drain stops the worker for a rolling deploy: /readyz turns 503 and the worker polls no
// more, so new tasks go to other workers; running activities get up to stopTimeout to
// finish. Those still running then are cancelled: a table export fails its attempt as
// Transient and Temporal retries it on another worker, which resumes from the last shard
// the export heartbeated. drain waits a little for those failures to be reported, so the
// retry starts at once instead of after the heartbeat timeout.
func drain(logger *slog.Logger, w worker.Worker, ready *metrics.Readiness, inflight *inflightActivities, stopTimeout time.Duration) {
	ready.Set(metrics.Draining)
	logger.Info("draining: polling stopped, waiting for running activities", "running", inflight.count(), "worker_stop_timeout", stopTimeout.String())
	w.Stop()
	if n := inflight.count(); n > 0 {
		logger.Warn("activities still running after the stop timeout were cancelled; their exports resume on another worker from the last shard",
			"cancelled", n)
		if !inflight.waitIdle(reportGrace) {
			logger.Warn("cancelled activities did not return in time; Temporal retries them after their heartbeat timeout", "running", inflight.count())
		}
		time.Sleep(time.Second) // the SDK reports a returned activity's failure right after it returns
	}
	logger.Info("worker stopped")
}

// reportGrace bounds how long a drained worker waits for cancelled activities to return.
const reportGrace = 15 * time.Second

// onceEach calls f once for each distinct error message.
func onceEach(f func(error)) func(error) {
	var seen sync.Map
	return func(err error) {
		if _, dup := seen.LoadOrStore(err.Error(), true); !dup {
			f(err)
		}
	}
}

// inflightActivities counts the activities this worker runs, for drain.
type inflightActivities struct {
	interceptor.WorkerInterceptorBase
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n drops to 0; nil while n is 0
}

func (i *inflightActivities) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	return &countedActivity{ActivityInboundInterceptorBase: interceptor.ActivityInboundInterceptorBase{Next: next}, i: i}
}

type countedActivity struct {
	interceptor.ActivityInboundInterceptorBase
	i *inflightActivities
}

func (a *countedActivity) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (interface{}, error) {
	a.i.add(1)
	defer a.i.add(-1)
	return a.ActivityInboundInterceptorBase.ExecuteActivity(ctx, in)
}

func (i *inflightActivities) add(d int) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.n == 0 && d > 0 {
		i.idle = make(chan struct{})
	}
	i.n += d
	if i.n == 0 && i.idle != nil {
		close(i.idle)
		i.idle = nil
	}
}

func (i *inflightActivities) count() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.n
}

// waitIdle waits until no activity runs, at most d; it says whether none does.
func (i *inflightActivities) waitIdle(d time.Duration) bool {
	i.mu.Lock()
	idle := i.idle
	i.mu.Unlock()
	if idle == nil {
		return true
	}
	select {
	case <-idle:
		return true
	case <-time.After(d):
		return false
	}
}

// workerSettings are the worker's flags, each defaulting to its environment variable.
type workerSettings struct {
	temporal *settings.Temporal
	// temporalOverrides are the Temporal flags given on the command line; the rest of the
	// connection comes from the SDK's environment configuration (see temporalconn).
	temporalOverrides temporalconn.Overrides
	// stopTimeout is how long a stopping worker lets running activities finish.
	stopTimeout time.Duration
	showVersion bool
	s3          s3dest.Settings
	bq          bqsource.Settings
	shardTarget settings.ByteSize
	rowGroup    settings.ByteSize
	maxStreams  int64
	// splitBytes and maxStreamGroups split tables too big for one worker within one read
	// session (see activities.SplitPlan).
	splitBytes      settings.ByteSize
	maxStreamGroups int64
	// maxTableExports, maxWorkflowTasks, memoryBudget and stagingBudget size the worker;
	// zero derives them (see settings.Size).
	maxTableExports  int64
	maxPerProject    int64
	maxWorkflowTasks int64
	memoryBudget     settings.ByteSize
	stagingBudget    settings.ByteSize
	taskQueue        string
	tempDir          string
	metricsAddr      string
}

// parseSettings reads the flags over their environment defaults. A malformed environment
// variable is an error naming it and its value, as a malformed flag is, even when a flag
// overrides it: a deployment should not carry a broken value that bites once the flag goes.
func parseSettings(args []string, out io.Writer) (*workerSettings, error) {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(out)
	var env settings.Environment
	ws := &workerSettings{temporal: settings.RegisterTemporal(fs)}
	ws.s3.BindFlags(fs, &env)
	fs.StringVar(&ws.bq.BillingProject, "bigquery-billing-project", env.String("BIGQUERY_BILLING_PROJECT", ""), "project that read sessions are billed to; empty means each table's project (env BIGQUERY_BILLING_PROJECT)")
	fs.StringVar(&ws.bq.Endpoint, "bigquery-endpoint", env.String("BIGQUERY_ENDPOINT", ""), "BigQuery REST endpoint, for an emulator (env BIGQUERY_ENDPOINT)")
	fs.StringVar(&ws.bq.StorageEndpoint, "bigquery-storage-endpoint", env.String("BIGQUERY_STORAGE_ENDPOINT", ""), "BigQuery Storage gRPC host:port, for an emulator (env BIGQUERY_STORAGE_ENDPOINT)")
	ws.shardTarget = env.Bytes("SHARD_TARGET_BYTES", export.DefaultTargetShardBytes)
	fs.Var(&ws.shardTarget, "shard-target-bytes", "target size of a parquet shard, in bytes or with a binary suffix (256MiB) (env SHARD_TARGET_BYTES)")
	fs.Int64Var(&ws.maxStreams, "max-streams", env.Int64("MAX_STREAMS", export.DefaultMaxStreams), "BigQuery read streams per table, read and encoded in parallel; BigQuery may grant fewer (env MAX_STREAMS)")
	ws.splitBytes = env.Bytes("TABLE_SPLIT_BYTES", activities.DefaultSplitBytes)
	fs.Var(&ws.splitBytes, "table-split-bytes", "a table whose read session BigQuery estimates above this is split into stream groups, one per this many bytes, exported by several activities at once so it finishes within the session's six hours (env TABLE_SPLIT_BYTES)")
	fs.Int64Var(&ws.maxStreamGroups, "max-stream-groups", env.Int64("MAX_STREAM_GROUPS", activities.DefaultMaxStreamGroups), "most stream groups one table is split into; each takes an activity slot in the fleet while its session lives (env MAX_STREAM_GROUPS)")
	ws.rowGroup = env.Bytes("ROW_GROUP_BYTES", 0)
	fs.Var(&ws.rowGroup, "row-group-bytes", "estimated uncompressed bytes per parquet row group; 0 means the encoder's default, 32MiB (env ROW_GROUP_BYTES)")
	fs.Int64Var(&ws.maxTableExports, "max-table-exports", env.Int64("MAX_TABLE_EXPORTS", 0), "activities run at once: table exports, and the short CheckAccess and WriteReceipt, which share the slots; the rest stay queued in Temporal. 0 derives it from cores, memory and staging disk (env MAX_TABLE_EXPORTS)")
	fs.Int64Var(&ws.maxPerProject, "max-exports-per-billing-project", env.Int64("MAX_EXPORTS_PER_BILLING_PROJECT", 0), "table exports this worker runs at once per BigQuery billing project (Storage Read quotas are per project); an export over it waits 30 s, then goes back to the task queue with backoff. 0: no cap beyond --max-table-exports (env MAX_EXPORTS_PER_BILLING_PROJECT)")
	fs.Int64Var(&ws.maxWorkflowTasks, "max-workflow-tasks", env.Int64("MAX_WORKFLOW_TASKS", 0), "workflow tasks run at once, at least 2; 0 means 2 per core (env MAX_WORKFLOW_TASKS)")
	ws.memoryBudget = env.Bytes("MEMORY_BUDGET_BYTES", 0)
	fs.Var(&ws.memoryBudget, "memory-budget", "memory the worker may use, which bounds a derived --max-table-exports; 0 reads the cgroup limit, else MemAvailable (env MEMORY_BUDGET_BYTES)")
	ws.stagingBudget = env.Bytes("STAGING_BUDGET_BYTES", 0)
	fs.Var(&ws.stagingBudget, "staging-budget-bytes", "disk all staged shards may take, shared equally by the table exports; 0 derives it from the free space of --temp-dir (env STAGING_BUDGET_BYTES)")
	fs.StringVar(&ws.taskQueue, "task-queue", env.String("TASK_QUEUE", workflows.TaskQueue), "task queue to poll (env TASK_QUEUE)")
	fs.StringVar(&ws.tempDir, "temp-dir", env.String("EXPORT_TEMP_DIR", ""), "where shards are staged before upload (each worker uses its own sub-directory and sweeps those of dead workers at start); empty means the system temp dir (env EXPORT_TEMP_DIR)")
	fs.StringVar(&ws.metricsAddr, "metrics-addr", env.Optional("METRICS_ADDR", ":9464"), "where /metrics serves Prometheus metrics and /readyz the readiness; empty disables it (env METRICS_ADDR)")
	stopTimeout, stopErr := envDuration("WORKER_STOP_TIMEOUT", DefaultStopTimeout)
	fs.DurationVar(&ws.stopTimeout, "worker-stop-timeout", stopTimeout, "on SIGTERM or SIGINT, how long running activities may finish before they are cancelled and resumed on another worker from their last shard (env WORKER_STOP_TIMEOUT)")
	fs.BoolVar(&ws.showVersion, "version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `worker: executes Destination AWS S3 dumps.

It polls task queue %q (by default) and runs ExportAccount workflows. The platform's own AWS identity
(the principal that assumes customers' roles) comes from the standard AWS credential chain
(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or the instance role); AWS_REGION sets
the default region. BigQuery uses Google application default credentials.

The Temporal connection comes from the SDK's standard environment configuration:
TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS,
TEMPORAL_TLS_CLIENT_CERT_PATH, TEMPORAL_TLS_CLIENT_KEY_PATH, TEMPORAL_TLS_SERVER_CA_CERT_PATH,
TEMPORAL_TLS_SERVER_NAME, TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE (see docs/deploy-temporal.md);
--temporal-address and --temporal-namespace override it. Tracing is on when
OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set.

Flags:
`, workflows.TaskQueue)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if ws.showVersion {
		return ws, nil
	}
	if err := errors.Join(env.Err(), stopErr); err != nil {
		return nil, err
	}
	if ws.stopTimeout < 0 {
		return nil, fmt.Errorf("--worker-stop-timeout %s is negative", ws.stopTimeout)
	}
	if ws.maxPerProject < 0 {
		return nil, fmt.Errorf("--max-exports-per-billing-project %d is negative (0 means no cap)", ws.maxPerProject)
	}
	if ws.maxStreamGroups < 1 {
		return nil, fmt.Errorf("--max-stream-groups (MAX_STREAM_GROUPS) must be at least 1 (1 never splits a table), not %d", ws.maxStreamGroups)
	}
	if ws.splitBytes < 1 {
		return nil, fmt.Errorf("--table-split-bytes (TABLE_SPLIT_BYTES) must be positive, not %d", ws.splitBytes)
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "temporal-address":
			ws.temporalOverrides.Address = f.Value.String()
		case "temporal-namespace":
			ws.temporalOverrides.Namespace = f.Value.String()
		}
	})
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q: the worker takes flags only", fs.Arg(0))
	}
	return ws, nil
}

// sizeWorker derives the worker's sizing from its settings, this machine's cores and memory
// and the free space where shards are staged.
func sizeWorker(ws *workerSettings, stagingDir string) (settings.Sizing, error) {
	memory, source := int64(ws.memoryBudget), "--memory-budget"
	if memory == 0 {
		memory, source = settings.MemoryLimit()
	}
	// Unknown free space leaves the staging budget to the exporter's own bounds.
	free, _ := settings.FreeBytes(stagingDir)
	return settings.Size(settings.SizingInput{
		CPUs:               runtime.GOMAXPROCS(0),
		MemoryBudget:       memory,
		MemorySource:       source,
		StagingFree:        free,
		Streams:            int(orDefault(ws.maxStreams, export.DefaultMaxStreams)),
		RowGroupBytes:      orDefault(int64(ws.rowGroup), parquetenc.DefaultRowGroupBytes),
		ShardTargetBytes:   orDefault(int64(ws.shardTarget), export.DefaultTargetShardBytes),
		ReadyShards:        export.DefaultReadyShards,
		DefaultBufferBytes: export.DefaultBufferBytes,
		MaxTableExports:    int(ws.maxTableExports),
		MaxWorkflowTasks:   int(ws.maxWorkflowTasks),
		StagingBudget:      int64(ws.stagingBudget),
	})
}

// orDefault resolves a zero setting to the default the exporter would use for it.
func orDefault(v, def int64) int64 {
	if v == 0 {
		return def
	}
	return v
}

// workerOptions turns the sizing into the SDK's slots. A worker polls for a task only while
// it has a free slot, so work beyond them stays queued in Temporal, where another worker
// takes it. CheckAccess and WriteReceipt share the activity slots with ExportTable: they take
// seconds, so a dedicated queue for them is not worth a second set of pollers.
func workerOptions(s settings.Sizing) worker.Options {
	return worker.Options{
		MaxConcurrentActivityExecutionSize:     s.MaxTableExports,
		MaxConcurrentWorkflowTaskExecutionSize: s.MaxWorkflowTasks,
	}
}

// DefaultStopTimeout is how long a stopping worker lets running activities finish by default:
// enough for the short CheckAccess and WriteReceipt and for an export near its end, short
// enough for a rolling deploy. Exports that need longer resume elsewhere from their last shard.
const DefaultStopTimeout = 30 * time.Second

// envDuration reads a duration environment variable (30s, 2m); unset or empty means def.
func envDuration(name string, def time.Duration) (time.Duration, error) {
	v := settings.Env(name, "")
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return def, fmt.Errorf("environment variable %s=%q is not a duration: use e.g. 30s or 2m", name, v)
	}
	return d, nil
}

func fatal(l *slog.Logger, what string, err error) {
	l.Error(what, "error", err)
	os.Exit(1)
}
