package chaos

import (
	"context"

	"cloud.google.com/go/bigquery"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/dreamdata/destination-aws-s3/internal/config"
	"github.com/dreamdata/destination-aws-s3/workflows"
)

// The campaign's worker processes and dump verification, for other runs on the same stack
// (the load test, internal/loadtest).

// Workers runs the real worker binary as separate processes, as the campaign does: each with
// its own EXPORT_TEMP_DIR and log file under dir, dying with the caller.
type Workers struct{ p *workerPool }

// NewWorkers prepares to run bin with env (on top of this process's environment).
func NewWorkers(bin, dir string, env []string) *Workers {
	return &Workers{p: newWorkerPool(bin, dir, env)}
}

// Worker is one running worker process.
type Worker struct{ w *workerProc }

// Start launches one more worker.
func (p *Workers) Start() (*Worker, error) {
	w, err := p.p.start()
	if err != nil {
		return nil, err
	}
	return &Worker{w: w}, nil
}

// StopAll ends every worker (SIGTERM, then SIGKILL) and waits for their logs.
func (p *Workers) StopAll() { p.p.stopAll() }

// LogFiles lists every worker's log file.
func (p *Workers) LogFiles() []string { return p.p.logFiles() }

// Pid is the worker's process id.
func (w *Worker) Pid() int { return w.w.cmd.Process.Pid }

// TempDir is the worker's EXPORT_TEMP_DIR, where it stages shards.
func (w *Worker) TempDir() string { return w.w.tmp }

// Done is closed when the worker process has exited.
func (w *Worker) Done() <-chan struct{} { return w.w.done }

// SourceTable is what a table holds: its schema, row count and devstack.Checksum of its rows.
type SourceTable struct {
	Schema   bigquery.Schema
	Rows     int
	Checksum string
}

// DumpCheck is the outcome of checking one dump; no Problems means it is exact.
type DumpCheck struct {
	Rows, Bytes int64
	Objects     int
	Problems    []string
}

// Verifier checks finished dumps with the bucket owner's credentials, as the campaign does:
// root receipt current and equal to the dump folder's copy, every table's objects exactly the
// receipt's (contiguous, none extra, sizes, CRC32C, PAR1 framing), and DuckDB reading exactly
// the source's rows and content checksum.
type Verifier struct{ v *verifier }

// NewVerifier checks dumps in bucket with root; dir is scratch space for downloads.
func NewVerifier(root *s3.Client, bucket, dir string) *Verifier {
	return &Verifier{v: &verifier{root: root, bucket: bucket, dir: dir}}
}

// Check verifies the dump of acc whose workflow returned res against its tables' source.
func (v *Verifier) Check(ctx context.Context, acc config.Account, src map[string]SourceTable, res workflows.ExportResult) DumpCheck {
	want := expected{src: make(map[string]sourceTable, len(src))}
	for t, s := range src {
		want.src[t] = sourceTable{schema: s.Schema, rows: s.Rows, checksum: s.Checksum}
	}
	c := v.v.check(ctx, acc, want, res)
	return DumpCheck{Rows: c.rows, Bytes: c.bytes, Objects: c.objects, Problems: c.problems}
}
