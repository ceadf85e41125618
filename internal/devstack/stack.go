// Package devstack runs the real components the exporter meets in production, locally and
// without Docker: a Temporal dev server (with its Web UI), MinIO (S3 + STS + KMS, checking
// signatures and IAM policies) and the BigQuery emulator behind a proxy that speaks
// BigQuery's real Arrow framing. The demo and the integration tests both start it.
//
// The binaries are built from the Go module proxy by .ci/install-tools.sh into BinDir.
// MinIO is AGPL: it runs only as a separate test process and is never imported.
package devstack

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"
)

// Fixed names of the local stack.
const (
	Project        = "demo-project"
	MinIORootUser  = "minio-root"
	KMSKeyID       = "6b0d2c4e-8f1a-4b3c-9d5e-7a6f8e9d0c1b"
	CustomerBucket = "customer-bucket"
	// ExporterUser is the platform's own identity on the local S3/STS server: it may only
	// call AssumeRole, and the credentials it gets carry the customer's PutObject-only policy.
	ExporterUser = "platform-exporter"
)

// Ports of the stack; zero picks a free port.
type Ports struct {
	Temporal, TemporalUI, MinIO, BigQueryHTTP, BigQueryGRPC int
}

// DemoPorts are the fixed ports of `make demo`, so its URLs are stable.
var DemoPorts = Ports{Temporal: 7233, TemporalUI: 8233, MinIO: 9000, BigQueryHTTP: 9050, BigQueryGRPC: 9060}

// Options configure Start.
type Options struct {
	// BinDir holds the temporal, minio and bqemu binaries.
	BinDir string
	// Dir holds the stack's data and logs; empty means a new temporary directory.
	Dir   string
	Ports Ports
	// UI runs the Temporal Web UI.
	UI bool
	// TemporalDBFile, when set, makes the Temporal dev server keep its state in this SQLite
	// file instead of memory, so it survives a restart (see Stack.RestartTemporal).
	TemporalDBFile string
	// BQEmuArgs are extra flags for bqemu (streams per session, fault injection).
	BQEmuArgs []string
}

// Stack is a running local stack. Secrets here are local throwaway values.
type Stack struct {
	Dir string

	TemporalAddress string
	TemporalUIURL   string

	S3Endpoint        string
	MinIORootPassword string
	ExporterSecret    string
	KMSSecretKey      string

	BigQueryEndpoint        string
	BigQueryStorageEndpoint string

	mu    sync.Mutex
	procs []*exec.Cmd

	// temporal is the dev server's process, with what restarts it.
	temporal         *exec.Cmd
	temporalBin      string
	temporalArgs     []string
	temporalRestarts int
	restartMu        sync.Mutex
}

// DefaultBinDir is where .ci/install-tools.sh puts the binaries.
func DefaultBinDir() string {
	if d := os.Getenv("DEVSTACK_BIN"); d != "" {
		return d
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	return filepath.Join(cache, "destination-aws-s3", "bin")
}

// Start brings every component up and waits until each answers. On error it stops what it
// started.
func Start(ctx context.Context, o Options) (s *Stack, err error) {
	if o.BinDir == "" {
		o.BinDir = DefaultBinDir()
	}
	for _, b := range []string{"temporal", "minio", "bqemu"} {
		if _, err := os.Stat(filepath.Join(o.BinDir, b)); err != nil {
			return nil, fmt.Errorf("devstack: %s is not in %s: run `make tools` (or bash .ci/install-tools.sh) first", b, o.BinDir)
		}
	}
	if o.Dir == "" {
		if o.Dir, err = os.MkdirTemp("", "devstack-*"); err != nil {
			return nil, err
		}
	}
	p := o.Ports
	for _, port := range []*int{&p.Temporal, &p.TemporalUI, &p.MinIO, &p.BigQueryHTTP, &p.BigQueryGRPC} {
		if *port == 0 {
			if *port, err = freePort(); err != nil {
				return nil, err
			}
		}
	}
	s = &Stack{
		Dir:                     o.Dir,
		TemporalAddress:         fmt.Sprintf("127.0.0.1:%d", p.Temporal),
		S3Endpoint:              fmt.Sprintf("http://127.0.0.1:%d", p.MinIO),
		BigQueryEndpoint:        fmt.Sprintf("http://127.0.0.1:%d", p.BigQueryHTTP),
		BigQueryStorageEndpoint: fmt.Sprintf("127.0.0.1:%d", p.BigQueryGRPC),
		MinIORootPassword:       randomSecret(24),
		ExporterSecret:          randomSecret(24),
		KMSSecretKey:            KMSKeyID + ":" + base64.StdEncoding.EncodeToString(randomBytes(32)),
	}
	started := s // the named result is nil by the time a failing return runs this
	defer func() {
		if err != nil {
			started.Stop()
		}
	}()

	// Temporal dev server: in-memory, with the search attributes the workflow sets.
	targs := []string{"server", "start-dev", "--ip", "127.0.0.1", "--port", fmt.Sprint(p.Temporal),
		"--log-level", "error", "--namespace", "default",
		"--search-attribute", "AccountId=Keyword", "--search-attribute", "DumpFolder=Keyword", "--search-attribute", "ExportState=Keyword"}
	if o.UI {
		targs = append(targs, "--ui-port", fmt.Sprint(p.TemporalUI))
		s.TemporalUIURL = fmt.Sprintf("http://127.0.0.1:%d", p.TemporalUI)
	} else {
		targs = append(targs, "--headless")
	}
	if o.TemporalDBFile != "" {
		targs = append(targs, "--db-filename", o.TemporalDBFile)
	}
	s.temporalBin, s.temporalArgs = filepath.Join(o.BinDir, "temporal"), targs
	if err := s.spawn("temporal", s.temporalBin, targs, nil); err != nil {
		return nil, err
	}
	s.temporal = s.lastProc()

	if err := s.spawnMinIO(filepath.Join(o.BinDir, "minio"), p.MinIO); err != nil {
		return nil, err
	}

	if err := s.spawn("bqemu", filepath.Join(o.BinDir, "bqemu"), append([]string{"--project", Project,
		"--http-port", fmt.Sprint(p.BigQueryHTTP), "--grpc-port", fmt.Sprint(p.BigQueryGRPC)}, o.BQEmuArgs...), nil); err != nil {
		return nil, err
	}

	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := waitFor(wctx, "MinIO", func() error { return httpOK(s.S3Endpoint + "/minio/health/live") }); err != nil {
		return nil, s.withLogs(err, "minio")
	}
	if err := waitFor(wctx, "BigQuery emulator", func() error { return tcpOpen(s.BigQueryStorageEndpoint) }); err != nil {
		return nil, s.withLogs(err, "bqemu")
	}
	if err := waitFor(wctx, "BigQuery emulator REST", func() error {
		return httpAny(s.BigQueryEndpoint + "/projects/" + Project + "/datasets")
	}); err != nil {
		return nil, s.withLogs(err, "bqemu")
	}
	if err := s.waitTemporal(wctx); err != nil {
		return nil, s.withLogs(err, "temporal")
	}
	if err := s.setupMinIO(wctx); err != nil {
		return nil, s.withLogs(err, "minio")
	}
	return s, nil
}

// waitTemporal waits until the Temporal frontend answers a health check.
func (s *Stack) waitTemporal(ctx context.Context) error {
	return waitFor(ctx, "Temporal", func() error {
		c, err := client.Dial(client.Options{HostPort: s.TemporalAddress, Logger: quietLogger{}})
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.CheckHealth(ctx, &client.CheckHealthRequest{})
		return err
	})
}

// Stop ends every process of the stack.
func (s *Stack) Stop() {
	s.mu.Lock()
	procs := s.procs
	s.procs = nil
	s.mu.Unlock()
	for _, c := range procs {
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
	}
	for _, c := range procs {
		done := make(chan struct{})
		go func() { _ = c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
}

// spawnMinIO starts MinIO on port with the stack's root credentials and static KMS key,
// keeping its data under the stack's directory.
func (s *Stack) spawnMinIO(bin string, port int) error {
	data := filepath.Join(s.Dir, "minio-data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return err
	}
	env := []string{"MINIO_ROOT_USER=" + MinIORootUser, "MINIO_ROOT_PASSWORD=" + s.MinIORootPassword,
		"MINIO_KMS_SECRET_KEY=" + s.KMSSecretKey, "MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CI_CD=1"}
	consolePort, err := freePort()
	if err != nil {
		return err
	}
	return s.spawn("minio", bin, []string{"server", data, "--quiet",
		"--address", fmt.Sprintf("127.0.0.1:%d", port), "--console-address", fmt.Sprintf("127.0.0.1:%d", consolePort)}, env)
}

// LogPath is where a component's output goes.
func (s *Stack) LogPath(name string) string { return filepath.Join(s.Dir, name+".log") }

func (s *Stack) spawn(name, bin string, args, env []string) error {
	logf, err := os.Create(s.LogPath(name))
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = s.Dir
	// Own process group, so Stop ends children too; and die with the parent on Linux.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	s.mu.Lock()
	s.procs = append(s.procs, cmd)
	s.mu.Unlock()
	return nil
}

func (s *Stack) withLogs(err error, name string) error {
	b, _ := os.ReadFile(s.LogPath(name))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return fmt.Errorf("%w\n--- last lines of %s ---\n%s", err, s.LogPath(name), b)
}

func waitFor(ctx context.Context, what string, probe func() error) error {
	var last error
	for {
		if last = probe(); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not come up: %v", what, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func httpOK(url string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}

func httpAny(url string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

func tcpOpen(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

func randomSecret(n int) string {
	return strings.TrimRight(base64.RawURLEncoding.EncodeToString(randomBytes(n)), "=")
}

// quietLogger silences the Temporal client while probing for the server.
type quietLogger struct{}

func (quietLogger) Debug(string, ...interface{}) {}
func (quietLogger) Info(string, ...interface{})  {}
func (quietLogger) Warn(string, ...interface{})  {}
func (quietLogger) Error(string, ...interface{}) {}
