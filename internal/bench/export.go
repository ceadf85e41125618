package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/dreamdata/destination-aws-s3/internal/config"
	"github.com/dreamdata/destination-aws-s3/internal/devstack"
	"github.com/dreamdata/destination-aws-s3/internal/export"
	"github.com/dreamdata/destination-aws-s3/internal/layout"
	"github.com/dreamdata/destination-aws-s3/internal/s3dest"
)

// Discard is an s3dest.Writer that reads every body to its end and keeps nothing: the
// exporter's encode-only baseline. Reading the staged file is part of any upload, so the
// baseline pays it too.
type Discard struct {
	objects, bytes atomic.Int64
}

// Put drains the body.
func (d *Discard) Put(_ context.Context, o s3dest.Object) (s3dest.PutResult, error) {
	n, err := io.Copy(io.Discard, o.Body)
	if err != nil {
		return s3dest.PutResult{}, err
	}
	if o.Size >= 0 && n != o.Size {
		return s3dest.PutResult{}, fmt.Errorf("bench: body of %s had %d bytes, want %d", o.Key, n, o.Size)
	}
	d.objects.Add(1)
	d.bytes.Add(n)
	return s3dest.PutResult{}, nil
}

// The customer the benchmark uploads for, on the local MinIO.
const (
	benchAccount = "bench-account"
	benchRoleARN = "arn:aws:iam::000000000000:role/dreamdata-data-platform"
	benchTable   = "events"
	benchPrefix  = "bench"
)

// minioWriter is the production upload path to the local MinIO: the platform identity's
// long-lived credentials call STS AssumeRole, and the assumed-role credentials (with the
// customer's PutObject-only policy) sign every request with SigV4.
func minioWriter(ctx context.Context, endpoint, exporterSecret string) (s3dest.Writer, error) {
	base := aws.Config{Region: devstack.Region,
		Credentials: credentials.NewStaticCredentialsProvider(devstack.ExporterUser, exporterSecret, "")}
	c := s3dest.New(base, s3dest.Settings{S3Endpoint: endpoint, STSEndpoint: endpoint, PathStyle: true})
	t := s3dest.Target{AccountID: benchAccount, RoleARN: benchRoleARN, Bucket: devstack.CustomerBucket, Region: devstack.Region}
	if err := c.CheckAccess(ctx, t); err != nil {
		return nil, err
	}
	return c.Writer(t), nil
}

// exportRun is one table export through export.Exporter.
type exportRun struct {
	Rows, ArrowBytes, ParquetBytes int64
	Shards                         int
	Wall                           time.Duration
	// SelfCPU is this process's CPU time (user + system) during the run; MachineCPU the whole
	// machine's busy time (from /proc/stat; zero when unreadable), which includes MinIO's.
	SelfCPU, MachineCPU time.Duration
	Folder              string
}

func (r exportRun) mbPerSec() float64 { return float64(r.ArrowBytes) / 1e6 / r.Wall.Seconds() }

// runExport exports the whole source as one table of a new dump folder, with the exporter's
// production defaults (streams, shard size, row groups, buffering), staging shards in a new
// directory under tempDir.
func runExport(ctx context.Context, src *Source, w s3dest.Writer, tempDir, folder string) (exportRun, error) {
	dir, err := os.MkdirTemp(tempDir, "bench-export-*")
	if err != nil {
		return exportRun{}, err
	}
	defer os.RemoveAll(dir)
	e := &export.Exporter{Reader: src, Writer: w, TempDir: dir}
	job := export.Job{Table: benchTable, Prefix: benchPrefix, DumpFolder: folder, Extension: config.ExtensionParquetGz}
	p := &export.Progress{Session: src.Session()}
	cpu0, mach0 := selfCPU(), machineCPU()
	t0 := time.Now()
	files, err := e.Run(ctx, job, p, nil)
	wall := time.Since(t0)
	cpu1, mach1 := selfCPU(), machineCPU()
	if err != nil {
		return exportRun{}, err
	}
	r := exportRun{ArrowBytes: src.ArrowBytes(), Shards: len(files), Wall: wall, SelfCPU: cpu1 - cpu0, Folder: folder}
	if mach0 > 0 && mach1 > 0 {
		r.MachineCPU = mach1 - mach0
	}
	for _, f := range files {
		r.Rows += f.Rows
		r.ParquetBytes += f.Bytes
	}
	if r.Rows != src.Rows() {
		return r, fmt.Errorf("bench: exported %d rows, the table has %d", r.Rows, src.Rows())
	}
	return r, nil
}

// checkLanded lists what landed in the folder with MinIO's root credentials (the exporter's
// cannot list) and compares it with the run.
func checkLanded(ctx context.Context, st *devstack.Stack, r exportRun) error {
	c := st.RootS3()
	prefix := layout.TableFolder(benchPrefix, r.Folder, benchTable) + "/"
	var n int
	var size int64
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(devstack.CustomerBucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, o := range page.Contents {
			n++
			size += aws.ToInt64(o.Size)
		}
	}
	if n != r.Shards || size != r.ParquetBytes {
		return fmt.Errorf("bench: MinIO holds %d objects (%d bytes) under %s, the export wrote %d (%d bytes)", n, size, prefix, r.Shards, r.ParquetBytes)
	}
	return nil
}

// selfCPU is this process's user + system CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineCPU is the machine's busy CPU time so far (every core, every process), from the
// first line of /proc/stat; zero when it cannot be read.
func machineCPU() time.Duration {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0
	}
	fields := strings.Fields(sc.Text())
	if len(fields) < 8 || fields[0] != "cpu" {
		return 0
	}
	var busy int64
	for i, v := range fields[1:] {
		if i == 3 || i == 4 || i >= 8 { // idle, iowait; guest times are already in user
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0
		}
		busy += n
	}
	return time.Duration(busy) * time.Second / clockTicks
}

// clockTicks is USER_HZ, 100 on every Linux this runs on.
const clockTicks = 100
