// Command bench measures the exporter's data path against its targets and prints one table:
// metric | ours | baseline | ratio | target | met?. See package bench for what is measured.
//
//	go run ./internal/bench/cmd/bench           # full run, a few minutes on 2 cores
//	go run ./internal/bench/cmd/bench --quick   # smoke run, seconds
//	go run ./internal/bench/cmd/bench --flat-max=1GiB --exports=2   # skip the 10 GiB table, at most 2 exports at once
//
// The upload measurements start a local MinIO from the binaries `make tools` builds; without
// them (or with --no-minio) they are reported as not run and peak RSS is measured with a
// discarding writer. A missed target is a result, not a failure: the exit status is non-zero
// only when a measurement could not be made.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/dreamdata/destination-aws-s3/internal/bench"
	"github.com/dreamdata/destination-aws-s3/internal/devstack"
	"github.com/dreamdata/destination-aws-s3/internal/settings"
)

func main() {
	quick := flag.Bool("quick", false, "small sizes, for a smoke run")
	noMinIO := flag.Bool("no-minio", false, "skip the upload measurements")
	bin := flag.String("bin", devstack.DefaultBinDir(), "directory with the minio binary")
	tmp := flag.String("temp-dir", "", "where shards are staged and MinIO keeps its data (default: the system's)")
	flatMax := flag.String("flat-max", "", "largest table of the export rows/s series 10MiB, 100MiB, 1GiB, 10GiB (default: all of it; e.g. 1GiB)")
	exports := flag.Int("exports", 0, "most table exports at once for the worker peak-RSS rows, measured at 1, 2, 4, … and this (default: 2 × GOMAXPROCS, the worker's derived --max-table-exports on its cores)")
	child := flag.String(bench.ChildFlag, "", "internal: run one export for a peak-RSS measurement")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if *child != "" {
		if err := bench.RunChild(ctx, *child, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "bench child:", err)
			os.Exit(1)
		}
		return
	}
	cfg := bench.FullConfig()
	if *quick {
		cfg = bench.QuickConfig()
	}
	if *flatMax != "" {
		limit, err := settings.ParseBytes(*flatMax)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: --flat-max:", err)
			os.Exit(2)
		}
		var sizes []int64
		for _, s := range cfg.FlatSizes {
			if s <= limit {
				sizes = append(sizes, s)
			}
		}
		cfg.FlatSizes = sizes
	}
	if *exports > 0 {
		cfg.Concurrent = bench.ConcurrencyLevels(*exports)
	}
	cfg.MinIO = !*noMinIO
	cfg.BinDir = *bin
	cfg.TempDir = *tmp
	cfg.Log = os.Stderr
	rep, err := bench.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	rep.Print(os.Stdout)
}
