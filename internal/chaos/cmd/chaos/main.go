// Command chaos runs the exporter's fault campaign on the local stack (see package chaos) and
// exits non-zero if any dump was partial, duplicated, stale, mislabelled, failed, late, or
// leaked a secret, or if too few faults were injected to prove anything.
//
//	go run ./internal/chaos/cmd/chaos              # a new random seed, printed first
//	CHAOS_SEED=1234 go run ./internal/chaos/cmd/chaos   # replays that seed's fault decisions
//
// Every setting is a flag; CHAOS_SEED, CHAOS_DURATION and CHAOS_ACCOUNTS set the most used.
package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dreamdata/destination-aws-s3/internal/chaos"
	"github.com/dreamdata/destination-aws-s3/internal/devstack/faults3"
)

func main() {
	var cfg chaos.Config
	seed := flag.String("seed", os.Getenv("CHAOS_SEED"), "seed of every random choice; empty picks one (env CHAOS_SEED)")
	flag.StringVar(&cfg.RepoRoot, "repo", ".", "module root the worker is built from")
	flag.StringVar(&cfg.BinDir, "bin", "", "directory with temporal, minio and bqemu (default: the make tools cache)")
	flag.StringVar(&cfg.Dir, "dir", os.Getenv("CHAOS_DIR"), "work directory kept for the logs; empty means a new temporary one (env CHAOS_DIR)")
	flag.IntVar(&cfg.Accounts, "accounts", envInt("CHAOS_ACCOUNTS", 5), "accounts taking dumps, 1-6 (env CHAOS_ACCOUNTS)")
	flag.Float64Var(&cfg.RowsScale, "rows-scale", 3, "multiplies every table's row count")
	flag.DurationVar(&cfg.Duration, "duration", envDuration("CHAOS_DURATION", 3*time.Minute+30*time.Second), "how long faults are injected and new dumps start (env CHAOS_DURATION)")
	flag.DurationVar(&cfg.DumpDeadline, "dump-deadline", 6*time.Minute, "a dump not complete this long after its start is a mismatch")
	flag.DurationVar(&cfg.DrainDeadline, "drain-deadline", 4*time.Minute+30*time.Second, "a dump not complete this long after the faults stop is a mismatch")
	flag.Float64Var(&cfg.S3Rate, "s3-rate", 0.1, "probability that an S3 request gets a fault (negative: none)")
	flag.Float64Var(&cfg.BQRate, "bq-rate", 0.1, "probability that a Storage Read call gets a fault (negative: none)")
	s3Faults := flag.String("s3-faults", "", "S3 faults: comma-separated s3_slowdown, s3_internal_error, s3_connection_reset, s3_truncated_response, s3_delay, s3_hang (empty: all but s3_hang)")
	bqFaults := flag.String("bq-faults", "", "Storage Read faults: comma-separated cut, unavailable, exhausted, expire (empty: all)")
	flag.IntVar(&cfg.Workers, "workers", 2, "worker processes running at once")
	flag.IntVar(&cfg.Kills, "kills", 10, "most worker SIGKILLs (negative: none)")
	flag.IntVar(&cfg.Pauses, "pauses", 2, "worker SIGSTOPs past the heartbeat timeout, resumed as zombies (negative: none)")
	flag.IntVar(&cfg.TemporalRestarts, "temporal-restarts", 1, "Temporal server restarts mid-dump (negative: none)")
	flag.IntVar(&cfg.MinFaults, "min-faults", 50, "fewer injected faults than this fail the campaign")
	flag.Parse()

	if *seed == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		cfg.Seed = binary.BigEndian.Uint64(b[:]) % 1_000_000_000
	} else {
		s, err := strconv.ParseUint(*seed, 10, 64)
		if err != nil {
			fmt.Fprintf(os.Stderr, "chaos: seed %q is not a number\n", *seed)
			os.Exit(2)
		}
		cfg.Seed = s
	}
	for _, k := range strings.Split(*s3Faults, ",") {
		if k = strings.TrimSpace(k); k != "" {
			cfg.S3Faults = append(cfg.S3Faults, faults3.Kind(k))
		}
	}
	for _, k := range strings.Split(*bqFaults, ",") {
		if k = strings.TrimSpace(k); k != "" {
			cfg.BQFaults = append(cfg.BQFaults, k)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := chaos.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos: could not run:", err)
		os.Exit(1)
	}
	if !s.OK() {
		os.Exit(1)
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return v
	}
	return def
}
