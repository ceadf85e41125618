// Package bench measures the exporter's data path against its targets, each side by side with
// its baseline in one run:
//
//   - encode throughput and output size of parquetenc.Writer against arrow-go's pqarrow writer
//     (both GZIP) on the same Arrow batches, on one core;
//   - an end-to-end export of a synthetic table of 1 GiB of Arrow data through export.Exporter
//     and the production s3dest writer into a local MinIO (SigV4, credentials from STS
//     AssumeRole), against the same Exporter with a writer that discards;
//   - export rows/s (discarding writer) at table sizes from 10 MiB to 10 GiB, whole exports
//     repeated for at least flatMinRound a round: it must stay flat;
//   - the peak RSS of exporting a 100 MiB and a 2 GiB table, each in a child process, and of
//     one process running N table exports at once (a worker's --max-table-exports).
//
// Run prints one table (metric | ours | baseline | ratio | target | met?); cmd/bench is the
// command (`make bench`), bench_test.go has the same measurements as `go test -bench`
// benchmarks. The synthetic table is event-like (ids, repetitive strings, JSON, timestamps,
// dates, integers, floats, NUMERIC decimals, booleans, NULLs) and served by Source, which
// reuses pre-built batches so that generating it costs a few percent of exporting it.
package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/dreamdata/destination-aws-s3/internal/devstack"
	"github.com/dreamdata/destination-aws-s3/internal/export"
	"github.com/dreamdata/destination-aws-s3/internal/layout"
	"github.com/dreamdata/destination-aws-s3/internal/parquetenc"
	"github.com/dreamdata/destination-aws-s3/internal/s3dest"
	"github.com/dreamdata/destination-aws-s3/internal/settings"
)

// Targets, from the issue.
const (
	TargetEncodeRatio  = 1.25 // ours / pqarrow rows per second, at least
	TargetSizeRatio    = 1.00 // ours / pqarrow file bytes, at most
	TargetExportRatio  = 0.80 // upload / discard MB per second, at least
	TargetPeakRSS      = 256 << 20
	TargetRSSFlatness  = 1.20 // peak RSS of the large table / of the small one, at most
	TargetRateFlatness = 1.20 // fastest / slowest export rows/s over the table sizes, at most
	// flatMinRound is the shortest round of the flatness series: small tables are exported
	// again and again within a round (see the series).
	flatMinRound        = 2 * time.Second
	defaultExportPasses = 3
)

// Config sizes one run.
type Config struct {
	Quick bool
	// Source shape: streams of the session (the ExportTable activity asks BigQuery for
	// export.DefaultMaxStreams, which the exporter reads all at once), pool of pre-built
	// batches, rows per batch.
	Streams, PoolBatches, BatchRows int
	// EncodeRows are encoded by each writer EncodePasses times; the fastest pass counts.
	EncodeRows   int64
	EncodePasses int
	// ExportBytes is the end-to-end table's Arrow size; each writer exports it ExportPasses
	// times, alternating, and the fastest pass counts.
	ExportBytes  int64
	ExportPasses int
	// RSSSmallBytes and RSSLargeBytes are the tables whose peak RSS is measured.
	RSSSmallBytes, RSSLargeBytes int64
	// FlatSizes are the tables whose export rows/s (discarding writer) must stay flat; the
	// sizes are exported in turn, FlatPasses rounds, and each size's fastest round counts.
	FlatSizes  []int64
	FlatPasses int
	// Concurrent lists how many table exports of ConcurrentBytes each one child process runs
	// at once for the worker peak-RSS rows (a worker's --max-table-exports).
	Concurrent      []int
	ConcurrentBytes int64
	// MinIO enables the upload measurements; they are skipped when BinDir has no minio.
	MinIO  bool
	BinDir string
	// TempDir holds staged shards and MinIO's data; empty means os.TempDir().
	TempDir string
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// FullConfig is `make bench`: a few minutes on 2 cores.
func FullConfig() Config {
	return Config{Streams: export.DefaultMaxStreams, PoolBatches: 16, BatchRows: 8192,
		EncodeRows: 512 << 10, EncodePasses: 3,
		ExportBytes: 1 << 30, ExportPasses: defaultExportPasses,
		RSSSmallBytes: 100 << 20, RSSLargeBytes: 2 << 30,
		FlatSizes: []int64{10 << 20, 100 << 20, 1 << 30, 10 << 30}, FlatPasses: 3,
		Concurrent: ConcurrencyLevels(2 * runtime.GOMAXPROCS(0)), ConcurrentBytes: 1 << 30,
		MinIO: true}
}

// ConcurrencyLevels is 1, 2, 4, … up to max, and max.
func ConcurrencyLevels(max int) []int {
	var out []int
	for n := 1; n < max; n *= 2 {
		out = append(out, n)
	}
	return append(out, max)
}

// QuickConfig is a smoke run of every measurement in seconds; its figures mean little.
func QuickConfig() Config {
	return Config{Quick: true, Streams: export.DefaultMaxStreams, PoolBatches: 4, BatchRows: 2048,
		EncodeRows: 16 << 10, EncodePasses: 1,
		ExportBytes: 16 << 20, ExportPasses: 1,
		RSSSmallBytes: 4 << 20, RSSLargeBytes: 16 << 20,
		FlatSizes: []int64{2 << 20, 16 << 20}, FlatPasses: 1,
		Concurrent: []int{1, 2}, ConcurrentBytes: 8 << 20, MinIO: true}
}

// Row is one line of the table. Met is "yes", "NO" or "n/a" (not measured).
type Row struct {
	Metric, Ours, Baseline, Ratio, Target, Met string
}

// Report is the table and the figures behind it.
type Report struct {
	Rows  []Row
	Notes []string
}

// Missed lists the metrics whose target was measured and missed.
func (r *Report) Missed() []string {
	var out []string
	for _, row := range r.Rows {
		if row.Met == "NO" {
			out = append(out, row.Metric)
		}
	}
	return out
}

// Print writes the table (as Markdown) and the notes.
func (r *Report) Print(w io.Writer) {
	head := Row{"metric", "ours", "baseline", "ratio", "target", "met?"}
	rows := append([]Row{head}, r.Rows...)
	width := make([]int, 6)
	cells := func(x Row) []string { return []string{x.Metric, x.Ours, x.Baseline, x.Ratio, x.Target, x.Met} }
	for _, x := range rows {
		for i, c := range cells(x) {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	line := func(cs []string) {
		var b strings.Builder
		b.WriteString("|")
		for i, c := range cs {
			b.WriteString(" " + c + strings.Repeat(" ", width[i]-len([]rune(c))) + " |")
		}
		fmt.Fprintln(w, b.String())
	}
	line(cells(head))
	sep := make([]string, 6)
	for i := range sep {
		sep[i] = strings.Repeat("-", width[i])
	}
	line(sep)
	for _, x := range r.Rows {
		line(cells(x))
	}
	if len(r.Notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range r.Notes {
			fmt.Fprintln(w, "- "+n)
		}
	}
}

func met(ok bool) string {
	if ok {
		return "yes"
	}
	return "NO"
}

func ratio(x float64) string { return fmt.Sprintf("%.2f×", x) }

// Run performs every measurement, one after the other.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	logf := func(format string, a ...any) {
		if cfg.Log != nil {
			fmt.Fprintf(cfg.Log, "bench: "+format+"\n", a...)
		}
	}
	if cfg.TempDir == "" {
		cfg.TempDir = os.TempDir()
	}
	if cfg.ExportPasses <= 0 {
		cfg.ExportPasses = 1
	}
	if cfg.EncodePasses <= 0 {
		cfg.EncodePasses = 1
	}
	if cfg.BinDir == "" {
		cfg.BinDir = devstack.DefaultBinDir()
	}
	rep := &Report{}
	note := func(format string, a ...any) { rep.Notes = append(rep.Notes, fmt.Sprintf(format, a...)) }
	if cfg.Quick {
		note("QUICK run: sizes are far too small for the figures to stand for the targets")
	}
	note("machine: %d CPUs, GOMAXPROCS %d by default; MB = 10^6 bytes; Arrow bytes = the lengths of the batches' buffers", runtime.NumCPU(), runtime.GOMAXPROCS(0))

	src, err := NewSource(SourceOptions{Streams: cfg.Streams, TableBytes: cfg.ExportBytes, PoolBatches: cfg.PoolBatches, BatchRows: cfg.BatchRows})
	if err != nil {
		return nil, err
	}
	defer src.Release()

	// The source alone, on one core: what generating the table costs the exports below.
	genRate, err := sourceRate(ctx, src)
	if err != nil {
		return nil, err
	}
	logf("synthetic source: %.0f MB/s of Arrow on one core", genRate/1e6)

	// 1. Encode throughput and size, one core.
	logf("encoding %d rows with each writer, %d passes, GOMAXPROCS=1", cfg.EncodeRows, cfg.EncodePasses)
	ours, base, err := compareEncode(src, cfg.EncodeRows, cfg.EncodePasses, logf)
	if err != nil {
		return nil, err
	}
	er := ours.rowsPerSec() / base.rowsPerSec()
	rep.Rows = append(rep.Rows,
		Row{"encode rows/s per core (GOMAXPROCS=1)", fmt.Sprintf("%.0f", ours.rowsPerSec()), fmt.Sprintf("%.0f", base.rowsPerSec()), ratio(er), fmt.Sprintf("≥ %.2f×", TargetEncodeRatio), met(er >= TargetEncodeRatio)},
		Row{"encode Arrow MB/s per core (GOMAXPROCS=1)", fmt.Sprintf("%.1f", ours.mbPerSec()), fmt.Sprintf("%.1f", base.mbPerSec()), ratio(ours.mbPerSec() / base.mbPerSec()), fmt.Sprintf("≥ %.2f×", TargetEncodeRatio), met(er >= TargetEncodeRatio)})
	sr := float64(ours.FileBytes) / float64(base.FileBytes)
	rep.Rows = append(rep.Rows, Row{"parquet output bytes (GZIP)", fmt.Sprint(ours.FileBytes), fmt.Sprint(base.FileBytes), ratio(sr), fmt.Sprintf("≤ %.2f×", TargetSizeRatio), met(sr <= TargetSizeRatio)})
	note("encode: %d rows = %s of Arrow in %d batches, same batches to both writers (ours: default %s row groups; pqarrow: defaults, GZIP, one row group); best of %d passes, ours %s, pqarrow %s",
		ours.Rows, mib(ours.ArrowBytes), (ours.Rows+int64(cfg.BatchRows)-1)/int64(cfg.BatchRows), sizeName(parquetenc.DefaultRowGroupBytes), cfg.EncodePasses, secs(ours.Passes), secs(base.Passes))

	// MinIO, for the upload measurements.
	var st *devstack.Stack
	var minioWhy string
	if !cfg.MinIO {
		minioWhy = "MinIO disabled"
	} else if _, err := os.Stat(filepath.Join(cfg.BinDir, "minio")); err != nil {
		minioWhy = "no minio binary in " + cfg.BinDir + " (make tools)"
	} else {
		dir, err := os.MkdirTemp(cfg.TempDir, "bench-minio-*")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		t0 := time.Now()
		if st, err = devstack.StartMinIO(ctx, devstack.Options{BinDir: cfg.BinDir, Dir: dir}); err != nil {
			return nil, err
		}
		defer st.Stop()
		logf("MinIO up at %s in %s", st.S3Endpoint, time.Since(t0).Round(time.Millisecond))
	}

	// 2. End to end: upload to MinIO against discard, alternating.
	folders := 0
	nextFolder := func() string {
		folders++
		return layout.DumpFolder(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(folders) * time.Minute))
	}
	var up s3dest.Writer
	if st != nil {
		if up, err = minioWriter(ctx, st.S3Endpoint, st.ExporterSecret); err != nil {
			return nil, err
		}
	}
	var bestDiscard, bestUpload *exportRun
	for i := range cfg.ExportPasses {
		kinds := []string{"discard", "upload"}
		if i%2 == 1 {
			kinds = []string{"upload", "discard"}
		}
		for _, kind := range kinds {
			var w s3dest.Writer = &Discard{}
			if kind == "upload" {
				if up == nil {
					continue
				}
				w = up
			}
			logf("export pass %d, %s: %s of Arrow, %d rows, %d streams", i+1, kind, mib(src.ArrowBytes()), src.Rows(), cfg.Streams)
			r, err := runExport(ctx, src, w, cfg.TempDir, nextFolder())
			if err != nil {
				return nil, fmt.Errorf("export (%s): %w", kind, err)
			}
			if kind == "upload" {
				if err := checkLanded(ctx, st, r); err != nil {
					return nil, err
				}
			}
			logf("  %.2fs, %.1f MB/s, %d shards, %s parquet, CPU: exporter %.1fs, rest of machine %.1fs", r.Wall.Seconds(), r.mbPerSec(), r.Shards, mib(r.ParquetBytes), r.SelfCPU.Seconds(), (r.MachineCPU - r.SelfCPU).Seconds())
			note("export pass %d, %s: %.2fs wall, %.1f MB/s, %d shards, %s parquet; CPU s: exporter %.1f, rest of machine %.1f (MinIO and neighbours), of %.1f available",
				i+1, kind, r.Wall.Seconds(), r.mbPerSec(), r.Shards, mib(r.ParquetBytes), r.SelfCPU.Seconds(), max(0, (r.MachineCPU-r.SelfCPU).Seconds()), r.Wall.Seconds()*float64(runtime.NumCPU()))
			best := &bestDiscard
			if kind == "upload" {
				best = &bestUpload
			}
			if *best == nil || r.Wall < (*best).Wall {
				*best = &r
			}
		}
	}
	metric := fmt.Sprintf("export %s table, Arrow MB/s (upload vs discard)", sizeName(cfg.ExportBytes))
	if bestUpload != nil {
		x := bestUpload.mbPerSec() / bestDiscard.mbPerSec()
		rep.Rows = append(rep.Rows, Row{metric, fmt.Sprintf("%.1f", bestUpload.mbPerSec()), fmt.Sprintf("%.1f", bestDiscard.mbPerSec()), ratio(x), fmt.Sprintf("≥ %.2f×", TargetExportRatio), met(x >= TargetExportRatio)})
	} else {
		rep.Rows = append(rep.Rows, Row{metric, "not run: " + minioWhy, fmt.Sprintf("%.1f", bestDiscard.mbPerSec()), "-", fmt.Sprintf("≥ %.2f×", TargetExportRatio), "n/a"})
	}
	note("export: %d streams, exporter defaults (%d streams at once, %s shards, %s row groups, shards staged in %s); %d rows; synthetic source alone runs at %.0f MB/s on one core, %.1f%% of the discard export's CPU time",
		cfg.Streams, export.DefaultMaxStreams, sizeName(export.DefaultTargetShardBytes), sizeName(parquetenc.DefaultRowGroupBytes),
		cfg.TempDir, src.Rows(), genRate/1e6, 100*float64(src.ArrowBytes())/genRate/bestDiscard.SelfCPU.Seconds())

	// 3. Export rows/s over table sizes (discarding writer): flat from small to large tables.
	// The sizes take turns, round after round, so that a neighbour's load hits them alike;
	// each size's fastest round counts.
	if len(cfg.FlatSizes) > 0 {
		type point struct {
			size    int64
			src     *Source
			rate    float64 // rows per wall second, best round
			cpuRate float64 // rows per second of the exporter's CPU time, best round
			runs    []time.Duration
		}
		pts := make([]*point, len(cfg.FlatSizes))
		for i, size := range cfg.FlatSizes {
			fs, err := NewSource(SourceOptions{Streams: cfg.Streams, TableBytes: size, PoolBatches: cfg.PoolBatches, BatchRows: cfg.BatchRows})
			if err != nil {
				return nil, err
			}
			defer fs.Release()
			pts[i] = &point{size: size, src: fs}
		}
		rounds := max(1, cfg.FlatPasses)
		for round := range rounds {
			for _, p := range pts {
				logf("export rows/s, table %s, round %d, discard", sizeName(p.size), round+1)
				// A round is whole exports of the table, one after the other, until it lasts
				// flatMinRound: a 10 MiB export takes about 30 ms, a single GC cycle or
				// scheduler hiccup would be its measurement. Each export is a full Run (new
				// encoders, staged files, uploads), so its fixed costs all count.
				var r exportRun
				exports := 0
				for exports == 0 || r.Wall < flatMinRound {
					one, err := runExport(ctx, p.src, &Discard{}, cfg.TempDir, nextFolder())
					if err != nil {
						return nil, fmt.Errorf("export %s: %w", sizeName(p.size), err)
					}
					r.Rows, r.Wall, r.SelfCPU = r.Rows+one.Rows, r.Wall+one.Wall, r.SelfCPU+one.SelfCPU
					exports++
				}
				p.runs = append(p.runs, r.Wall/time.Duration(exports))
				p.rate = max(p.rate, float64(r.Rows)/r.Wall.Seconds())
				if r.SelfCPU > 0 {
					p.cpuRate = max(p.cpuRate, float64(r.Rows)/r.SelfCPU.Seconds())
				}
				logf("  %d exports, %.2fs each, %.0f rows/s, %.0f rows per CPU second", exports, r.Wall.Seconds()/float64(exports), float64(r.Rows)/r.Wall.Seconds(), float64(r.Rows)/r.SelfCPU.Seconds())
			}
		}
		lo, hi, cpuLo, cpuHi := pts[0], pts[0], pts[0], pts[0]
		var desc []string
		for _, p := range pts {
			if p.rate < lo.rate {
				lo = p
			}
			if p.rate > hi.rate {
				hi = p
			}
			if p.cpuRate < cpuLo.cpuRate {
				cpuLo = p
			}
			if p.cpuRate > cpuHi.cpuRate {
				cpuHi = p
			}
			desc = append(desc, fmt.Sprintf("%s %.0f rows/s, %.0f rows per CPU second (%s)", sizeName(p.size), p.rate, p.cpuRate, secs(p.runs)))
		}
		x := hi.rate / lo.rate
		rep.Rows = append(rep.Rows, Row{fmt.Sprintf("export rows/s, %s … %s tables (discard), fastest vs slowest", sizeName(pts[0].size), sizeName(pts[len(pts)-1].size)),
			fmt.Sprintf("%.0f (%s)", hi.rate, sizeName(hi.size)), fmt.Sprintf("%.0f (%s)", lo.rate, sizeName(lo.size)), ratio(x), fmt.Sprintf("≤ %.2f× (flat)", TargetRateFlatness), met(x <= TargetRateFlatness)})
		// The same per second of the exporter's own CPU time: what the encoder does with the
		// table's size, whatever the neighbours take of the machine meanwhile.
		cx := cpuHi.cpuRate / cpuLo.cpuRate
		rep.Rows = append(rep.Rows, Row{"… the same, rows per second of the exporter's CPU time",
			fmt.Sprintf("%.0f (%s)", cpuHi.cpuRate, sizeName(cpuHi.size)), fmt.Sprintf("%.0f (%s)", cpuLo.cpuRate, sizeName(cpuLo.size)), ratio(cx), fmt.Sprintf("≤ %.2f× (flat)", TargetRateFlatness), met(cx <= TargetRateFlatness)})
		note("export rows/s by table size (discarding writer, exporter defaults, sizes in turn, best of %d rounds): %s", rounds, strings.Join(desc, "; "))
		for _, p := range pts {
			p.src.Release()
		}
	}

	// 4. Peak RSS, each export in its own process.
	mode := "encode+upload to MinIO"
	if st == nil {
		mode = "encode+discard: " + minioWhy
	}
	// The parent's pool is not needed any more: a smaller parent makes the children's
	// rusage readings cleaner (see measureRSS).
	src.Release()
	child := func(size int64) (rssRun, error) {
		spec := childSpec{Source: SourceOptions{Streams: cfg.Streams, TableBytes: size, PoolBatches: cfg.PoolBatches, BatchRows: cfg.BatchRows},
			Upload: st != nil, Folders: []string{nextFolder()}, TempDir: cfg.TempDir}
		secret := ""
		if st != nil {
			spec.Endpoint, secret = st.S3Endpoint, st.ExporterSecret
		}
		logf("peak RSS, table %s (%s), in a child process", sizeName(size), mode)
		r, err := measureRSS(ctx, spec, secret, cfg.Log)
		if err != nil {
			return r, err
		}
		if st != nil {
			if err := checkLanded(ctx, st, exportRun{Folder: spec.Folders[0], Shards: r.Shards, ParquetBytes: r.ParquetBytes}); err != nil {
				return r, err
			}
		}
		logf("  peak RSS %s (own VmHWM %s), %d rows in %.1fs, %d shards", mib(r.MaxRSS), mib(r.HWM), r.Rows, r.WallSeconds, r.Shards)
		if r.HWM > 0 && r.MaxRSS > r.HWM+r.HWM/20 && r.MaxRSS <= r.ParentRSS+r.ParentRSS/20 {
			// The reading is the parent's RSS carried over the vfork (a parent bigger than
			// its child, e.g. under the race detector): the child's own mark is the figure.
			note("RSS child %s: ru_maxrss (%s) only shows the parent's RSS; the table uses the child's VmHWM", sizeName(size), mib(r.MaxRSS))
			r.MaxRSS, r.fromHWM = r.HWM, true
		}
		return r, nil
	}
	// The floor under every size: the same child exporting an empty table (one empty shard).
	floor, err := child(0)
	if err != nil {
		return nil, err
	}
	note("RSS floor: the same child exporting an empty table peaks at %s: Go runtime, this binary's pages (it links devstack's DuckDB and Temporal client), S3/STS clients, the %s synthetic pool",
		mib(floor.MaxRSS), mib(floor.PoolBytes))
	var rss [2]rssRun
	for i, size := range []int64{cfg.RSSSmallBytes, cfg.RSSLargeBytes} {
		r, err := child(size)
		if err != nil {
			return nil, err
		}
		rss[i] = r
		shown := mib(r.MaxRSS)
		if r.fromHWM {
			shown += " (VmHWM)"
		}
		rep.Rows = append(rep.Rows, Row{fmt.Sprintf("peak RSS, %s table (%s)", sizeName(size), mode), shown, "-", "-", fmt.Sprintf("≤ %s", mib(TargetPeakRSS)), met(r.MaxRSS <= TargetPeakRSS)})
		note("RSS child %s: %d rows (%s of Arrow) in %.1fs, %d shards, %s parquet; peak RSS %s (%s above the floor), the child's own VmHWM %s, parent's RSS at start %s",
			sizeName(size), r.Rows, mib(r.ArrowBytes), r.WallSeconds, r.Shards, mib(r.ParquetBytes), mib(r.MaxRSS), mib(r.MaxRSS-floor.MaxRSS), mib(r.HWM), mib(r.ParentRSS))
	}
	flat := float64(rss[1].MaxRSS) / float64(rss[0].MaxRSS)
	rep.Rows = append(rep.Rows, Row{fmt.Sprintf("peak RSS growth, %s vs %s table", sizeName(cfg.RSSLargeBytes), sizeName(cfg.RSSSmallBytes)),
		mib(rss[1].MaxRSS), mib(rss[0].MaxRSS), ratio(flat), fmt.Sprintf("≤ %.2f× (flat)", TargetRSSFlatness), met(flat <= TargetRSSFlatness)})

	// 5. A worker's peak RSS with N table exports at once: one process, N exports of
	// ConcurrentBytes tables, each with the exporter's defaults, against the worker's sizing
	// estimate (settings.MemoryFloorBytes + N × settings.ExportMemory, README "Sizing
	// workers"), which must hold.
	var perExport []string
	for _, n := range cfg.Concurrent {
		spec := childSpec{Source: SourceOptions{Streams: cfg.Streams, TableBytes: cfg.ConcurrentBytes, PoolBatches: cfg.PoolBatches, BatchRows: cfg.BatchRows},
			Upload: st != nil, TempDir: cfg.TempDir}
		for range n {
			spec.Folders = append(spec.Folders, nextFolder())
		}
		secret := ""
		if st != nil {
			spec.Endpoint, secret = st.S3Endpoint, st.ExporterSecret
		}
		logf("peak RSS, %d table exports of %s at once (%s), in a child process", n, sizeName(cfg.ConcurrentBytes), mode)
		r, err := measureRSS(ctx, spec, secret, cfg.Log)
		if err != nil {
			return nil, err
		}
		if r.HWM > 0 && r.MaxRSS > r.HWM+r.HWM/20 && r.MaxRSS <= r.ParentRSS+r.ParentRSS/20 {
			r.MaxRSS = r.HWM
		}
		if st != nil {
			for i, f := range spec.Folders {
				if err := checkLanded(ctx, st, exportRun{Folder: f, Shards: r.PerExport[i].Shards, ParquetBytes: r.PerExport[i].ParquetBytes}); err != nil {
					return nil, err
				}
			}
		}
		logf("  peak RSS %s (own VmHWM %s), %d rows in %.1fs", mib(r.MaxRSS), mib(r.HWM), r.Rows, r.WallSeconds)
		above := r.MaxRSS - floor.MaxRSS
		perExport = append(perExport, fmt.Sprintf("%d: %s above the floor, %s per export", n, mib(above), mib(above/int64(n))))
		// The worker's sizing estimate for n exports (README, Sizing workers).
		est := settings.MemoryFloorBytes + int64(n)*settings.ExportMemory(export.DefaultMaxStreams, parquetenc.DefaultRowGroupBytes)
		x := float64(r.MaxRSS) / float64(est)
		rep.Rows = append(rep.Rows, Row{fmt.Sprintf("worker peak RSS, %d × %s table exports at once (%s) vs sizing estimate", n, sizeName(cfg.ConcurrentBytes), mode),
			mib(r.MaxRSS), mib(est), ratio(x), "≤ 1.00× (estimate holds)", met(x <= 1)})
		note("worker RSS child, %d exports at once: %d rows (%s of Arrow) in %.1fs (%.0f rows/s), %d shards, %s parquet; peak RSS %s, VmHWM %s",
			n, r.Rows, mib(r.ArrowBytes), r.WallSeconds, float64(r.Rows)/r.WallSeconds, r.Shards, mib(r.ParquetBytes), mib(r.MaxRSS), mib(r.HWM))
	}
	if len(perExport) > 0 {
		note("worker RSS by concurrent exports (floor %s): %s", mib(floor.MaxRSS), strings.Join(perExport, "; "))
	}
	return rep, nil
}

// sourceRate reads stream 0 of src on one core with a no-op consumer and returns Arrow
// bytes per second.
func sourceRate(ctx context.Context, src *Source) (float64, error) {
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	sess := src.Session()
	t0 := time.Now()
	if err := src.Read(ctx, sess, sess.Streams[0], 0, func(arrow.RecordBatch) error { return nil }); err != nil {
		return 0, err
	}
	return float64(src.streamBytes(0, 0, src.rowsPerStream)) / time.Since(t0).Seconds(), nil
}

func sizeName(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n == 0:
		return "empty"
	default:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	}
}

func secs(ds []time.Duration) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = fmt.Sprintf("%.2fs", d.Seconds())
	}
	return strings.Join(s, "/")
}
