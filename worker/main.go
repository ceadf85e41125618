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
	"runtime"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/dreamdata/destination-aws-s3/activities"
	"github.com/dreamdata/destination-aws-s3/internal/bqsource"
	"github.com/dreamdata/destination-aws-s3/internal/export"
	"github.com/dreamdata/destination-aws-s3/internal/metrics"
	"github.com/dreamdata/destination-aws-s3/internal/parquetenc"
	"github.com/dreamdata/destination-aws-s3/internal/s3dest"
	"github.com/dreamdata/destination-aws-s3/internal/settings"
	"github.com/dreamdata/destination-aws-s3/internal/staging"
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

	ctx := context.Background()
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

	reg := metrics.New()
	if ws.metricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", reg.Handler())
		srv := &http.Server{Addr: ws.metricsAddr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
				logger.Error("metrics endpoint stopped", "addr", ws.metricsAddr, "error", err)
			}
		}()
		defer srv.Close()
	}

	c, err := client.Dial(client.Options{HostPort: ws.temporal.Address, Namespace: ws.temporal.Namespace,
		Logger: tlog.NewStructuredLogger(logger), MetricsHandler: reg.Temporal()})
	if err != nil {
		fatal(logger, "connect Temporal", err)
	}
	defer c.Close()

	w := worker.New(c, ws.taskQueue, workerOptions(size))
	w.RegisterWorkflowWithOptions(workflows.ExportAccount, workflow.RegisterOptions{Name: workflows.ExportWorkflowName})
	w.RegisterActivity(&activities.Activities{
		Destinations:     s3dest.New(awsCfg, ws.s3),
		Source:           source,
		TargetShardBytes: int64(ws.shardTarget),
		RowGroupBytes:    int64(ws.rowGroup),
		TempDir:          staged.Path,
		Metrics:          reg.Exporter,
		MaxStreams:       int(ws.maxStreams),
		BufferBytes:      size.BufferBytes,
	})
	logger.Info("worker starting", "temporal", ws.temporal.Address, "namespace", ws.temporal.Namespace, "task_queue", ws.taskQueue, "metrics", ws.metricsAddr)
	if err := w.Run(worker.InterruptCh()); err != nil {
		fatal(logger, "worker stopped", err)
	}
}

// workerSettings are the worker's flags, each defaulting to its environment variable.
type workerSettings struct {
	temporal    *settings.Temporal
	s3          s3dest.Settings
	bq          bqsource.Settings
	shardTarget settings.ByteSize
	rowGroup    settings.ByteSize
	maxStreams  int64
	// maxTableExports, maxWorkflowTasks, memoryBudget and stagingBudget size the worker;
	// zero derives them (see settings.Size).
	maxTableExports  int64
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
	fs.StringVar(&ws.s3.S3Endpoint, "s3-endpoint", env.String("S3_ENDPOINT_URL", ""), "S3 endpoint URL; empty means AWS (env S3_ENDPOINT_URL)")
	fs.StringVar(&ws.s3.STSEndpoint, "sts-endpoint", env.String("STS_ENDPOINT_URL", ""), "STS endpoint URL; empty means AWS (env STS_ENDPOINT_URL)")
	fs.BoolVar(&ws.s3.PathStyle, "s3-path-style", env.Bool("S3_FORCE_PATH_STYLE", false), "address buckets path-style, for S3-compatible servers (env S3_FORCE_PATH_STYLE)")
	fs.BoolVar(&ws.s3.ChecksumWhenRequired, "s3-checksum-when-required", env.Bool("S3_CHECKSUM_WHEN_REQUIRED", false), "send checksums only when required, for servers that reject the SDK's default CRCs (env S3_CHECKSUM_WHEN_REQUIRED)")
	fs.StringVar(&ws.bq.BillingProject, "bigquery-billing-project", env.String("BIGQUERY_BILLING_PROJECT", ""), "project that read sessions are billed to; empty means each table's project (env BIGQUERY_BILLING_PROJECT)")
	fs.StringVar(&ws.bq.Endpoint, "bigquery-endpoint", env.String("BIGQUERY_ENDPOINT", ""), "BigQuery REST endpoint, for an emulator (env BIGQUERY_ENDPOINT)")
	fs.StringVar(&ws.bq.StorageEndpoint, "bigquery-storage-endpoint", env.String("BIGQUERY_STORAGE_ENDPOINT", ""), "BigQuery Storage gRPC host:port, for an emulator (env BIGQUERY_STORAGE_ENDPOINT)")
	ws.shardTarget = env.Bytes("SHARD_TARGET_BYTES", export.DefaultTargetShardBytes)
	fs.Var(&ws.shardTarget, "shard-target-bytes", "target size of a parquet shard, in bytes or with a binary suffix (256MiB) (env SHARD_TARGET_BYTES)")
	fs.Int64Var(&ws.maxStreams, "max-streams", env.Int64("MAX_STREAMS", export.DefaultMaxStreams), "BigQuery read streams per table, read and encoded in parallel; BigQuery may grant fewer (env MAX_STREAMS)")
	ws.rowGroup = env.Bytes("ROW_GROUP_BYTES", 0)
	fs.Var(&ws.rowGroup, "row-group-bytes", "estimated uncompressed bytes per parquet row group; 0 means the encoder's default, 32MiB (env ROW_GROUP_BYTES)")
	fs.Int64Var(&ws.maxTableExports, "max-table-exports", env.Int64("MAX_TABLE_EXPORTS", 0), "activities run at once: table exports, and the short CheckAccess and WriteReceipt, which share the slots; the rest stay queued in Temporal. 0 derives it from cores, memory and staging disk (env MAX_TABLE_EXPORTS)")
	fs.Int64Var(&ws.maxWorkflowTasks, "max-workflow-tasks", env.Int64("MAX_WORKFLOW_TASKS", 0), "workflow tasks run at once, at least 2; 0 means 2 per core (env MAX_WORKFLOW_TASKS)")
	ws.memoryBudget = env.Bytes("MEMORY_BUDGET_BYTES", 0)
	fs.Var(&ws.memoryBudget, "memory-budget", "memory the worker may use, which bounds a derived --max-table-exports; 0 reads the cgroup limit, else MemAvailable (env MEMORY_BUDGET_BYTES)")
	ws.stagingBudget = env.Bytes("STAGING_BUDGET_BYTES", 0)
	fs.Var(&ws.stagingBudget, "staging-budget-bytes", "disk all staged shards may take, shared equally by the table exports; 0 derives it from the free space of --temp-dir (env STAGING_BUDGET_BYTES)")
	fs.StringVar(&ws.taskQueue, "task-queue", env.String("TASK_QUEUE", workflows.TaskQueue), "task queue to poll (env TASK_QUEUE)")
	fs.StringVar(&ws.tempDir, "temp-dir", env.String("EXPORT_TEMP_DIR", ""), "where shards are staged before upload (each worker uses its own sub-directory and sweeps those of dead workers at start); empty means the system temp dir (env EXPORT_TEMP_DIR)")
	fs.StringVar(&ws.metricsAddr, "metrics-addr", env.String("METRICS_ADDR", ":9464"), "where /metrics serves Prometheus metrics; empty disables it (env METRICS_ADDR)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `worker: executes Destination AWS S3 dumps.

It polls task queue %q (by default) and runs ExportAccount workflows. The platform's own AWS identity
(the principal that assumes customers' roles) comes from the standard AWS credential chain
(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or the instance role); AWS_REGION sets
the default region. BigQuery uses Google application default credentials.

Flags:
`, workflows.TaskQueue)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if err := env.Err(); err != nil {
		return nil, err
	}
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

func fatal(l *slog.Logger, what string, err error) {
	l.Error(what, "error", err)
	os.Exit(1)
}
