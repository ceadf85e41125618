// Command bqemu runs the BigQuery emulator (github.com/goccy/bigquery-emulator)
// and, in front of its Storage Read API, a re-framing gRPC proxy, in one
// process, for the local dev/test stack.
//
// The emulator's REST API is served directly on --http-port. Its own gRPC
// Storage API listens on an internal 127.0.0.1 port; clients must use the
// proxy on --grpc-port instead, which speaks real BigQuery framing and
// removes the emulator's extra base64 layer on Arrow BYTES (see proxy.go;
// BYTES written through insertAll are stored by the emulator as their base64
// text, which no read path can undo: write exact BYTES with DML).
//
// Once both listeners are bound, exactly one line is printed to stdout:
//
//	bqemu ready http=127.0.0.1:PORT grpc=127.0.0.1:PORT
//
// For fault campaigns, --max-streams splits sessions into several streams,
// --snapshot-sessions gives each session its own snapshot of the table (so a
// table can change while it is read), --session-ttl shortens read sessions,
// --read-rows-per-second slows every stream down to simulate big tables, and --fault-rate, --fault-kinds and
// --fault-seed inject Storage Read faults (cut streams, UNAVAILABLE,
// RESOURCE_EXHAUSTED, expired sessions); --admin-addr serves the settings and
// the counts of injected faults (see chaos.go).
//
// SIGINT or SIGTERM stops everything and exits with status 0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run parses args, starts the stack, prints the ready line and blocks until
// ctx is done (a signal) or a server fails. It returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "bqemu: %v\n", err)
		return 2
	}
	cfg.Logger = newLogger(stderr, cfg.LogLevel)

	st, err := Start(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "bqemu: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "bqemu ready http=%s grpc=%s\n", st.HTTPAddr, st.GRPCAddr)

	code := 0
	select {
	case <-ctx.Done():
		cfg.Logger.Info("shutting down")
	case err := <-st.Failed():
		fmt.Fprintf(stderr, "bqemu: server failed: %v\n", err)
		code = 1
	}
	if err := st.Close(); err != nil {
		cfg.Logger.Warn("shutdown", "err", err)
	}
	return code
}

func parseFlags(args []string, stderr io.Writer) (Config, error) {
	fs := flag.NewFlagSet("bqemu", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg Config
	fs.StringVar(&cfg.Project, "project", "demo-project", "BigQuery project id served by the emulator")
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1", "address the REST API and the proxy bind to (0.0.0.0 inside a container)")
	fs.IntVar(&cfg.HTTPPort, "http-port", 9050, "port of the REST API on 127.0.0.1 (0 = pick a free port)")
	fs.IntVar(&cfg.GRPCPort, "grpc-port", 9060, "port of the Storage Read API proxy on 127.0.0.1 (0 = pick a free port)")
	fs.IntVar(&cfg.BatchRows, "batch-rows", 1000, "maximum rows per ReadRowsResponse sent by the proxy")
	fs.StringVar(&cfg.DataFile, "data-file", "", "sqlite file to keep the emulator's data in (default: a temporary file removed on exit)")
	fs.StringVar(&cfg.LogLevel, "log-level", "warn", "log level: debug, info, warn, error or fatal")
	fs.IntVar(&cfg.MaxStreams, "max-streams", 1, "most streams per read session (BigQuery grants up to the requested max_stream_count); rows are dealt to streams in chunks")
	fs.IntVar(&cfg.StreamChunkRows, "stream-chunk-rows", defaultChunkRows, "consecutive rows dealt to one stream of a multi-stream session")
	fs.DurationVar(&cfg.SessionTTL, "session-ttl", 0, "read sessions expire this long after creation (0 = the emulator's one hour)")
	fs.BoolVar(&cfg.SnapshotSessions, "snapshot-sessions", false, "read sessions read the table as it was at session creation, as BigQuery's do (the emulator has no snapshots)")
	fs.Int64Var(&cfg.SnapshotBytes, "snapshot-bytes", defaultSnapshotBytes, "memory for snapshot sessions' rows; the oldest sessions past it expire")
	fs.IntVar(&cfg.ReadRowsPerSecond, "read-rows-per-second", 0, "most rows per second each ReadRows call (stream) delivers, to simulate tables that take long to read; paced per response of up to --batch-rows rows (0 = unthrottled)")
	fs.Uint64Var(&cfg.FaultSeed, "fault-seed", 1, "seed of the fault choices (chaos campaigns)")
	fs.Float64Var(&cfg.Faults.Rate, "fault-rate", 0, "probability that a ReadRows or CreateReadSession call gets a fault (0 = none)")
	kinds := fs.String("fault-kinds", "", "comma-separated faults to inject: "+strings.Join(AllFaults, ", ")+" (empty = all but stall)")
	fs.StringVar(&cfg.AdminAddr, "admin-addr", "", "serve GET/PUT /faults on this loopback host:port (empty = off)")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	cfg.Faults.Kinds = parseFaultKinds(*kinds)
	if fs.NArg() != 0 {
		return Config{}, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if err := cfg.validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}
