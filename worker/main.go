// Command worker runs dumps: it polls the Temporal task queue and executes ExportAccount
// workflows and their activities. Run as many as throughput needs; they share nothing.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
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
	"github.com/dreamdata/destination-aws-s3/internal/s3dest"
	"github.com/dreamdata/destination-aws-s3/internal/settings"
	"github.com/dreamdata/destination-aws-s3/internal/staging"
	"github.com/dreamdata/destination-aws-s3/workflows"
)

func main() {
	fs := flag.NewFlagSet("worker", flag.ExitOnError)
	tc := settings.RegisterTemporal(fs)
	var s3s s3dest.Settings
	fs.StringVar(&s3s.S3Endpoint, "s3-endpoint", settings.Env("S3_ENDPOINT_URL", ""), "S3 endpoint URL; empty means AWS (env S3_ENDPOINT_URL)")
	fs.StringVar(&s3s.STSEndpoint, "sts-endpoint", settings.Env("STS_ENDPOINT_URL", ""), "STS endpoint URL; empty means AWS (env STS_ENDPOINT_URL)")
	fs.BoolVar(&s3s.PathStyle, "s3-path-style", settings.EnvBool("S3_FORCE_PATH_STYLE"), "address buckets path-style, for S3-compatible servers (env S3_FORCE_PATH_STYLE)")
	fs.BoolVar(&s3s.ChecksumWhenRequired, "s3-checksum-when-required", settings.EnvBool("S3_CHECKSUM_WHEN_REQUIRED"), "send checksums only when required, for servers that reject the SDK's default CRCs (env S3_CHECKSUM_WHEN_REQUIRED)")
	var bqs bqsource.Settings
	fs.StringVar(&bqs.BillingProject, "bigquery-billing-project", settings.Env("BIGQUERY_BILLING_PROJECT", ""), "project that read sessions are billed to; empty means each table's project (env BIGQUERY_BILLING_PROJECT)")
	fs.StringVar(&bqs.Endpoint, "bigquery-endpoint", settings.Env("BIGQUERY_ENDPOINT", ""), "BigQuery REST endpoint, for an emulator (env BIGQUERY_ENDPOINT)")
	fs.StringVar(&bqs.StorageEndpoint, "bigquery-storage-endpoint", settings.Env("BIGQUERY_STORAGE_ENDPOINT", ""), "BigQuery Storage gRPC host:port, for an emulator (env BIGQUERY_STORAGE_ENDPOINT)")
	shardBytes := fs.Int64("shard-target-bytes", settings.EnvInt64("SHARD_TARGET_BYTES", export.DefaultTargetShardBytes), "target size of a parquet shard (env SHARD_TARGET_BYTES)")
	maxStreams := fs.Int64("max-streams", settings.EnvInt64("MAX_STREAMS", export.DefaultMaxStreams), "BigQuery read streams per table, read and encoded in parallel; BigQuery may grant fewer (env MAX_STREAMS)")
	rowGroupBytes := fs.Int64("row-group-bytes", settings.EnvInt64("ROW_GROUP_BYTES", 0), "estimated uncompressed bytes per parquet row group; 0 means the encoder's default (env ROW_GROUP_BYTES)")
	taskQueue := fs.String("task-queue", settings.Env("TASK_QUEUE", workflows.TaskQueue), "task queue to poll (env TASK_QUEUE)")
	tempDir := fs.String("temp-dir", settings.Env("EXPORT_TEMP_DIR", ""), "where shards are staged before upload (each worker uses its own sub-directory and sweeps those of dead workers at start); empty means the system temp dir (env EXPORT_TEMP_DIR)")
	metricsAddr := fs.String("metrics-addr", settings.Env("METRICS_ADDR", ":9464"), "where /metrics serves Prometheus metrics; empty disables it (env METRICS_ADDR)")
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
	_ = fs.Parse(os.Args[1:])

	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ctx := context.Background()
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		fatal(logger, "load AWS configuration", err)
	}
	project := bqs.BillingProject
	if project == "" {
		project = "-"
	}
	source, err := bqsource.New(ctx, project, bqs)
	if err != nil {
		fatal(logger, "connect BigQuery", err)
	}
	defer source.Close()

	staged, err := staging.Open(*tempDir)
	if err != nil {
		fatal(logger, "prepare the staging directory", err)
	}
	defer staged.Close()
	if staged.Swept > 0 {
		logger.Info("swept staging directories of dead workers", "count", staged.Swept)
	}

	reg := metrics.New()
	if *metricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", reg.Handler())
		srv := &http.Server{Addr: *metricsAddr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
				logger.Error("metrics endpoint stopped", "addr", *metricsAddr, "error", err)
			}
		}()
		defer srv.Close()
	}

	c, err := client.Dial(client.Options{HostPort: tc.Address, Namespace: tc.Namespace,
		Logger: tlog.NewStructuredLogger(logger), MetricsHandler: reg.Temporal()})
	if err != nil {
		fatal(logger, "connect Temporal", err)
	}
	defer c.Close()

	w := worker.New(c, *taskQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(workflows.ExportAccount, workflow.RegisterOptions{Name: workflows.ExportWorkflowName})
	w.RegisterActivity(&activities.Activities{
		Destinations:     s3dest.New(awsCfg, s3s),
		Source:           source,
		TargetShardBytes: *shardBytes,
		RowGroupBytes:    *rowGroupBytes,
		TempDir:          staged.Path,
		Metrics:          reg.Exporter,
		MaxStreams:       int(*maxStreams),
	})
	logger.Info("worker starting", "temporal", tc.Address, "namespace", tc.Namespace, "task_queue", *taskQueue, "metrics", *metricsAddr)
	if err := w.Run(worker.InterruptCh()); err != nil {
		fatal(logger, "worker stopped", err)
	}
}

func fatal(l *slog.Logger, what string, err error) {
	l.Error(what, "error", err)
	os.Exit(1)
}
