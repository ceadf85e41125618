package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"github.com/goccy/bigquery-emulator/server"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// maxMsgSize bounds gRPC messages on the proxy server and on its client
// connection to the emulator. The emulator sends a whole table as one
// ReadRowsResponse, far above gRPC's 4 MiB default.
const maxMsgSize = 512 << 20

// shutdownTimeout bounds each graceful stop; after it, servers are stopped hard.
const shutdownTimeout = 10 * time.Second

// Config is the stack's configuration (see parseFlags for the flags).
type Config struct {
	Project string
	// Listen is the address the public ports bind to; empty means 127.0.0.1. Containers
	// set 0.0.0.0 so published ports reach it.
	Listen    string
	HTTPPort  int // 0 = pick a free port
	GRPCPort  int // 0 = pick a free port
	BatchRows int
	DataFile  string // empty = temporary storage
	LogLevel  string
	Logger    *slog.Logger // nil = discard

	// MaxStreams caps the streams of a read session (BigQuery grants up to the requested
	// max_stream_count); 0 or 1 means one stream, the emulator's own behaviour.
	MaxStreams int
	// StreamChunkRows is how many consecutive rows go to one stream when a session has
	// several; 0 means defaultChunkRows.
	StreamChunkRows int
	// SessionTTL, when set, makes read sessions expire that long after creation (their
	// ExpireTime says so, and ReadRows answers "session expired" afterwards).
	SessionTTL time.Duration
	// SnapshotSessions makes every read session read the table as it was when the session
	// was created, as BigQuery does (see tableSnapshot); SnapshotBytes bounds the rows kept
	// (0 means defaultSnapshotBytes), and a session pushed out has expired.
	SnapshotSessions bool
	SnapshotBytes    int64
	// ReadRowsPerSecond, when set, paces every ReadRows call to at most that many rows per
	// second, to simulate tables that take long to read; it applies per stream, so k streams
	// read in parallel get k times the rate. 0 means unthrottled.
	ReadRowsPerSecond int
	// FaultSeed seeds the fault choices; Faults sets the initial rate and kinds.
	FaultSeed uint64
	Faults    FaultConfig
	// AdminAddr, when set, serves GET/PUT /faults there (loopback only): the fault settings
	// and how many faults of each kind were injected.
	AdminAddr string
}

func (c Config) validate() error {
	if c.Project == "" {
		return errors.New("--project must not be empty")
	}
	if c.HTTPPort < 0 || c.HTTPPort > 65535 {
		return fmt.Errorf("--http-port %d out of range", c.HTTPPort)
	}
	if c.GRPCPort < 0 || c.GRPCPort > 65535 {
		return fmt.Errorf("--grpc-port %d out of range", c.GRPCPort)
	}
	if c.BatchRows < 1 {
		return fmt.Errorf("--batch-rows must be at least 1, got %d", c.BatchRows)
	}
	if _, err := slogLevel(c.LogLevel); err != nil {
		return err
	}
	if c.MaxStreams < 0 || c.MaxStreams > 1000 {
		return fmt.Errorf("--max-streams must be 0 to 1000, got %d", c.MaxStreams)
	}
	if c.StreamChunkRows < 0 {
		return fmt.Errorf("--stream-chunk-rows must not be negative, got %d", c.StreamChunkRows)
	}
	if c.SessionTTL < 0 {
		return fmt.Errorf("--session-ttl must not be negative, got %v", c.SessionTTL)
	}
	if c.ReadRowsPerSecond < 0 {
		return fmt.Errorf("--read-rows-per-second must not be negative, got %d", c.ReadRowsPerSecond)
	}
	return c.Faults.validate()
}

func (c Config) listen() string {
	if c.Listen == "" {
		return "127.0.0.1"
	}
	return c.Listen
}

// Stack is a running emulator plus its re-framing Storage Read proxy.
type Stack struct {
	// HTTPAddr is the emulator's REST address (host:port).
	HTTPAddr string
	// GRPCAddr is the proxy's address (host:port): real BigQuery framing.
	GRPCAddr string
	// EmulatorGRPCAddr is the emulator's own gRPC address (emulator framing).
	EmulatorGRPCAddr string
	// AdminAddr is the fault admin endpoint's address, when Config.AdminAddr was set.
	AdminAddr string

	log       *slog.Logger
	emu       *server.Server
	emuExited chan struct{} // closed when emu.Serve has returned
	proxy     *grpc.Server
	admin     *http.Server
	faults    *faults
	conn      *grpc.ClientConn
	failed    chan error
	closing   atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// Start starts the emulator and the proxy and returns once both listen.
func Start(cfg Config) (*Stack, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}

	storage := server.TempStorage
	if cfg.DataFile != "" {
		abs, err := filepath.Abs(cfg.DataFile)
		if err != nil {
			return nil, fmt.Errorf("data file: %w", err)
		}
		storage = server.Storage(fmt.Sprintf("file:%s?cache=shared", abs))
	}
	emu, err := server.New(storage)
	if err != nil {
		return nil, fmt.Errorf("create emulator: %w", err)
	}
	if err := emu.SetLogLevel(server.LogLevel(cfg.LogLevel)); err != nil {
		_ = emu.Close()
		return nil, fmt.Errorf("emulator log level: %w", err)
	}
	if err := emu.SetProject(cfg.Project); err != nil {
		_ = emu.Close()
		return nil, fmt.Errorf("emulator project %q: %w", cfg.Project, err)
	}

	// Bind the public proxy port first so a busy port fails before anything runs.
	proxyLis, err := net.Listen("tcp", net.JoinHostPort(cfg.listen(), strconv.Itoa(cfg.GRPCPort)))
	if err != nil {
		_ = emu.Close()
		return nil, fmt.Errorf("listen grpc: %w", err)
	}

	type addrs struct{ http, grpc string }
	bound := make(chan addrs, 1)
	emu.SetListenCallback(func(httpAddr, grpcAddr string) { bound <- addrs{httpAddr, grpcAddr} })
	emuDone := make(chan error, 1)
	go func() {
		// Serve ignores its context; Stack.Close stops it with emu.Stop.
		emuDone <- emu.Serve(context.Background(),
			net.JoinHostPort(cfg.listen(), strconv.Itoa(cfg.HTTPPort)), "127.0.0.1:0")
	}()
	var a addrs
	select {
	case a = <-bound:
	case err := <-emuDone:
		_ = proxyLis.Close()
		_ = emu.Close()
		return nil, fmt.Errorf("emulator: %w", err)
	}

	s := &Stack{
		HTTPAddr:         a.http,
		GRPCAddr:         proxyLis.Addr().String(),
		EmulatorGRPCAddr: a.grpc,
		log:              log,
		emu:              emu,
		emuExited:        make(chan struct{}),
		failed:           make(chan error, 2),
	}
	go func() {
		err := <-emuDone
		if !s.closing.Load() && !errors.Is(err, http.ErrServerClosed) {
			s.failed <- fmt.Errorf("emulator: %w", err)
		}
		close(s.emuExited)
	}()

	conn, err := grpc.NewClient(a.grpc,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMsgSize), grpc.MaxCallSendMsgSize(maxMsgSize)),
	)
	if err != nil {
		_ = proxyLis.Close()
		s.stopEmulator()
		return nil, fmt.Errorf("dial emulator grpc %s: %w", a.grpc, err)
	}
	s.conn = conn

	s.faults = newFaults(cfg.FaultSeed, cfg.Faults)
	if cfg.AdminAddr != "" {
		admin, lis, err := serveAdmin(cfg.AdminAddr, s.faults)
		if err != nil {
			_ = proxyLis.Close()
			_ = conn.Close()
			s.stopEmulator()
			return nil, err
		}
		s.admin, s.AdminAddr = admin, lis.Addr().String()
	}
	var snapshots *snapshotCache
	if cfg.SnapshotSessions {
		snapshots = &snapshotCache{limit: cfg.SnapshotBytes}
		if snapshots.limit <= 0 {
			snapshots.limit = defaultSnapshotBytes
		}
	}
	s.proxy = grpc.NewServer(grpc.MaxRecvMsgSize(maxMsgSize), grpc.MaxSendMsgSize(maxMsgSize))
	storagepb.RegisterBigQueryReadServer(s.proxy, &readProxy{
		upstream:   storagepb.NewBigQueryReadClient(conn),
		batchRows:  int64(cfg.BatchRows),
		log:        log,
		maxStreams: cfg.MaxStreams,
		chunkRows:  int64(cfg.StreamChunkRows),
		sessionTTL: cfg.SessionTTL,
		rowsPerSec: int64(cfg.ReadRowsPerSecond),
		faults:     s.faults,
		snapshots:  snapshots,
	})
	go func() {
		err := s.proxy.Serve(proxyLis)
		if !s.closing.Load() {
			s.failed <- fmt.Errorf("proxy: %w", err)
		}
	}()
	log.Info("bqemu started", "http", s.HTTPAddr, "grpc", s.GRPCAddr,
		"emulator_grpc", s.EmulatorGRPCAddr, "project", cfg.Project, "batch_rows", cfg.BatchRows,
		"max_streams", max(cfg.MaxStreams, 1), "session_ttl", cfg.SessionTTL, "snapshot_sessions", cfg.SnapshotSessions, "read_rows_per_second", cfg.ReadRowsPerSecond, "fault_rate", cfg.Faults.Rate, "admin", s.AdminAddr)
	return s, nil
}

// Failed delivers an error if a server stops on its own (not through Close).
func (s *Stack) Failed() <-chan error { return s.failed }

// Close stops the proxy and the emulator and removes temporary storage.
func (s *Stack) Close() error {
	s.closeOnce.Do(func() {
		s.closing.Store(true)
		if s.admin != nil {
			_ = s.admin.Close()
			s.log.Info("faults injected", "counts", sortedKinds(s.faults.state().Counts))
		}
		graceful(s.proxy.GracefulStop, s.proxy.Stop)
		if err := s.conn.Close(); err != nil {
			s.log.Warn("close emulator connection", "err", err)
		}
		s.closeErr = s.stopEmulator()
	})
	return s.closeErr
}

func (s *Stack) stopEmulator() error {
	s.closing.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- s.emu.Stop(ctx) }() // GracefulStop ignores ctx: bound it here
	select {
	case err := <-stopped:
		if err != nil {
			return fmt.Errorf("stop emulator: %w", err)
		}
	case <-ctx.Done():
		return errors.New("stop emulator: timed out")
	}
	select {
	case <-s.emuExited:
	case <-ctx.Done():
	}
	return nil
}

// graceful runs gracefulStop and falls back to stop after shutdownTimeout.
func graceful(gracefulStop, stop func()) {
	done := make(chan struct{})
	go func() { gracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(shutdownTimeout):
		stop()
		<-done
	}
}

func slogLevel(level string) (slog.Level, error) {
	switch level {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	case "fatal":
		return slog.LevelError + 4, nil
	}
	return 0, fmt.Errorf("unknown --log-level %q (want debug, info, warn, error or fatal)", level)
}

func newLogger(w io.Writer, level string) *slog.Logger {
	l, err := slogLevel(level)
	if err != nil {
		l = slog.LevelWarn
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}
