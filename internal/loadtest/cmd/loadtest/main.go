// Command loadtest runs the fleet's 04:00 peak on the real local stack (`make loadtest`):
// many accounts' dumps at once on one real worker with default settings, every dump verified,
// and the worker's peak RSS, peak staging disk, read sessions and throughput reported. It
// exits non-zero when a dump fails or differs, or read sessions differ from tables exported.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/dreamdata/destination-aws-s3/internal/loadtest"
)

func main() {
	var cfg loadtest.Config
	flag.IntVar(&cfg.Accounts, "accounts", 100, "accounts whose dumps start at once (6 tables each)")
	flag.IntVar(&cfg.Rows, "rows", 3000, "base rows per table (each account's tables hold up to a fifth more, every 20th account's revenue none)")
	flag.StringVar(&cfg.WorkerBin, "worker", "", "worker binary to run (e.g. bin/worker from `make build`); empty builds ./worker")
	flag.StringVar(&cfg.Dir, "dir", "", "work directory for the stack's data and logs; empty means a new temporary one")
	flag.StringVar(&cfg.BinDir, "bin-dir", "", "where temporal, minio and bqemu are; empty means ~/.cache/destination-aws-s3/bin (or $DEVSTACK_BIN)")
	flag.DurationVar(&cfg.Timeout, "timeout", 30*time.Minute, "how long the dumps may take")
	flag.IntVar(&cfg.VerifyParallel, "verify-parallel", 2, "dumps verified at once after the run")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := loadtest.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(2)
	}
	rep.Format(os.Stdout)
	if !rep.OK() {
		os.Exit(1)
	}
}
