// Package chaos runs a fault campaign against the real local stack (Temporal dev server,
// MinIO with STS/KMS and the customer's PutObject-only policy, the BigQuery emulator) and the
// real worker binary, to prove the exporter's promise: a consumer triggered by receipt.json
// never sees a partial, duplicated, stale or mislabelled dump, and no secret reaches a
// workflow history or a log.
//
// While several accounts take dumps, round after round, the campaign injects faults chosen
// by one seeded random generator: S3 errors, resets, truncated answers and delays (through
// faults3, a proxy in front of MinIO); Storage Read stream cuts, UNAVAILABLE,
// RESOURCE_EXHAUSTED and expired read sessions (through the bqemu proxy's fault switch);
// SIGKILL of worker processes at random moments and right after chosen log lines; SIGSTOP of
// a worker past its heartbeat timeout, resumed as a zombie; a restart of the Temporal server
// mid-dump; rerun and retry updates at random moments, some right after the source of a
// finished table changed; and changes to the source between an account's dumps. Every fault
// is transient, so every dump must end complete. Each root receipt.json is checked the moment
// it lands, as a customer's trigger would read it, and each dump once complete, with the
// bucket owner's credentials and DuckDB against the source rows; every workflow history and
// worker log line is searched for every secret.
package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/bigquery"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/dreamdata/destination-aws-s3/internal/devstack"
	"github.com/dreamdata/destination-aws-s3/internal/devstack/faults3"
	"github.com/dreamdata/destination-aws-s3/internal/humanize"
	"github.com/dreamdata/destination-aws-s3/workflows"
)

// TaskQueue is the campaign's own task queue, so no other worker takes its dumps.
const TaskQueue = "chaos"

// Config sets up a campaign. Zero values mean the defaults noted.
type Config struct {
	// Seed seeds every random choice of the campaign.
	Seed uint64
	// RepoRoot is the module root the worker binary is built from; empty means ".".
	RepoRoot string
	// BinDir holds temporal, minio and bqemu; empty means devstack.DefaultBinDir().
	BinDir string
	// Dir keeps the stack's data and every log; empty means a new temporary directory.
	Dir string
	// Accounts is how many accounts take dumps (1 to 6); 0 means 5.
	Accounts int
	// RowsScale multiplies every table's row count; 0 means 3 (about 75,000 rows a round
	// for 5 accounts: enough that faults land while tables export, not only while dumps wait
	// for their minute to end).
	RowsScale float64
	// Duration is how long faults are injected and new dumps start; 0 means 3m30s.
	Duration time.Duration
	// DumpDeadline bounds each dump from its start, and DrainDeadline every dump still
	// running when the fault window closes, from then on: faults are transient, so a dump
	// must complete soon after they stop. A dump not complete by either is a mismatch. 0
	// means 6 minutes and 4m30s: the product's own longest waits are a lost CheckAccess
	// attempt (4 minutes), a lost WriteReceipt attempt (2 minutes) and a lost ExportTable
	// heartbeat (1 minute), plus retry backoff.
	DumpDeadline, DrainDeadline time.Duration
	// S3Rate and BQRate are the probabilities that an S3 request or a Storage Read call gets
	// a fault; negative means none, 0 means 0.1.
	S3Rate, BQRate float64
	// S3Faults are the S3 fault kinds; empty means faults3.DefaultKinds.
	S3Faults []faults3.Kind
	// BQFaults are the Storage Read fault kinds (cut, unavailable, exhausted, expire); empty
	// means all.
	BQFaults []string
	// Workers is how many worker processes run at once; 0 means 2.
	Workers int
	// Kills bounds the worker SIGKILLs; 0 means 10, negative means none.
	Kills int
	// Pauses is how many times a worker is frozen (SIGSTOP) past its activities' heartbeat
	// timeout and then resumed as a zombie; 0 means 2, negative means none.
	Pauses int
	// TemporalRestarts is how many times the Temporal server is killed and restarted; 0
	// means 1, negative means none.
	TemporalRestarts int
	// MinFaults is how many faults the campaign must inject to count; 0 means 50.
	MinFaults int
	// Out receives progress and the summary; nil means os.Stdout.
	Out io.Writer
}

func (c *Config) defaults() {
	if c.RepoRoot == "" {
		c.RepoRoot = "."
	}
	if c.BinDir == "" {
		c.BinDir = devstack.DefaultBinDir()
	}
	if c.Accounts <= 0 {
		c.Accounts = 5
	}
	c.Accounts = min(c.Accounts, len(plans))
	if c.RowsScale <= 0 {
		c.RowsScale = 3
	}
	if c.Duration <= 0 {
		c.Duration = 3*time.Minute + 30*time.Second
	}
	if c.DumpDeadline <= 0 {
		c.DumpDeadline = 6 * time.Minute
	}
	if c.DrainDeadline <= 0 {
		c.DrainDeadline = 4*time.Minute + 30*time.Second
	}
	if c.S3Rate == 0 {
		c.S3Rate = 0.1
	}
	if c.BQRate == 0 {
		c.BQRate = 0.1
	}
	c.S3Rate, c.BQRate = max(c.S3Rate, 0), max(c.BQRate, 0)
	if c.Workers <= 0 {
		c.Workers = 2
	}
	if c.Kills == 0 {
		c.Kills = 10
	}
	if c.Pauses == 0 {
		c.Pauses = 2
	}
	if c.TemporalRestarts == 0 {
		c.TemporalRestarts = 1
	}
	if c.MinFaults <= 0 {
		c.MinFaults = 50
	}
	if c.Out == nil {
		c.Out = os.Stdout
	}
}

// sourceChangeTimeout bounds one change of an account's source between two of its dumps.
const sourceChangeTimeout = 3 * time.Minute

// campaign is one run's state.
type campaign struct {
	cfg      Config
	out      io.Writer
	outMu    sync.Mutex
	started  time.Time
	stack    *devstack.Stack
	bq       *bigquery.Client // the emulator's REST API, to seed and change the source
	s3       *faults3.Proxy
	bqAdmin  string
	tc       client.Client
	pool     *workerPool
	verifier *verifier
	consumer *consumer
	secrets  *secretSearch
	accounts []*account

	rngMu sync.Mutex
	rng   *rand.Rand

	faultsMu sync.Mutex
	faults   map[string]int // campaign-level faults: kills, restarts, updates
	updates  map[string]int // update outcomes
	// harnessSkips counts rounds not run because the emulator did not apply a source change.
	harnessSkips int

	// armed is the log message whose next occurrence kills the worker that printed it.
	armed atomic.Value // string
	kills atomic.Int32
	// groupsExported counts stream groups of split tables that finished (worker log lines).
	groupsExported atomic.Int32

	runningMu sync.Mutex
	running   map[string]*inflight // workflow id -> dump in flight
	windowEnd time.Time            // faults stop then
	bg        sync.WaitGroup       // updates sent in the background

	receiptsConsumed int

	resultsMu  sync.Mutex
	dumps      []dumpOutcome
	mismatches []string
	workflows  []string
}

// inflight is a dump being run, with the updates it got and what it must hold.
type inflight struct {
	a *account
	// mu is held for a whole update (and a source change with its rerun), so the dump gets
	// one at a time and want stays consistent with what the dump was told.
	mu            sync.Mutex
	updates       int
	rerunAccepted bool
	want          expected
}

// Updates per dump are bounded: every accepted rerun restarts tables, so an unbounded stream
// of them would keep a dump exporting forever (a livelock of the campaign's making).
const maxUpdatesPerDump = 3

// dumpOutcome is how one dump ended.
type dumpOutcome struct {
	account, workflowID, state string // state: complete, failed, timed_out
	elapsed                    time.Duration
	check                      dumpCheck
}

// Summary is what a campaign found.
type Summary struct {
	Seed           uint64
	Elapsed        time.Duration
	Faults         map[string]int
	Updates        map[string]int
	DumpsComplete  int
	DumpsFailed    int
	DumpsTimedOut  int
	Rows           int64
	Objects        int
	CRCChecked     int
	CRCComposite   int
	SecretsChecked int
	// ReceiptsConsumed counts receipt.json writes checked the moment they landed.
	ReceiptsConsumed int
	// StreamGroups counts stream groups of split tables that finished an attempt.
	StreamGroups int
	// RoundsSkipped counts accounts that stopped taking dumps because the emulator did not
	// apply a change of their source in time (a limit of the local stack, not a mismatch).
	RoundsSkipped int
	Mismatches    []string
	// MinFaults is how many faults the campaign needed to inject to prove anything.
	MinFaults int
}

// OK reports a campaign that injected enough faults and found no mismatch.
func (s *Summary) OK() bool { return len(s.Mismatches) == 0 && s.TotalFaults() >= s.MinFaults }

// TotalFaults sums the faults of every kind.
func (s *Summary) TotalFaults() int {
	n := 0
	for _, c := range s.Faults {
		n += c
	}
	return n
}

// Run runs a whole campaign: builds the worker, starts the stack, seeds the accounts, runs
// the dumps under faults, checks every dump and every history, and prints the summary. The
// error is for a campaign that could not run; what it found is in the Summary.
func Run(ctx context.Context, cfg Config) (*Summary, error) {
	cfg.defaults()
	c := &campaign{cfg: cfg, out: cfg.Out, started: time.Now(),
		rng:    rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0xc4a05)),
		faults: map[string]int{}, updates: map[string]int{}, running: map[string]*inflight{}, secrets: newSecretSearch()}
	c.armed.Store("")
	c.logf("seed %d (CHAOS_SEED=%d replays the same fault decisions)", cfg.Seed, cfg.Seed)
	defer c.teardown()
	if err := c.setup(ctx); err != nil {
		return nil, err
	}
	c.campaign(ctx)
	c.pool.stopAll() // no write after this point: the receipt consumer can finish
	c.receiptsConsumed = c.consumer.close()
	c.scanSecrets(ctx)
	s := c.summary()
	c.printSummary(s)
	return s, nil
}

func (c *campaign) logf(format string, a ...any) {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	fmt.Fprintf(c.out, "[%6.1fs] %s\n", time.Since(c.started).Seconds(), fmt.Sprintf(format, a...))
}

func (c *campaign) intn(n int) int {
	c.rngMu.Lock()
	defer c.rngMu.Unlock()
	return c.rng.IntN(n)
}

func (c *campaign) between(lo, hi time.Duration) time.Duration {
	c.rngMu.Lock()
	defer c.rngMu.Unlock()
	return lo + time.Duration(c.rng.Int64N(int64(hi-lo)+1))
}

func (c *campaign) fault(kind string) {
	c.faultsMu.Lock()
	c.faults[kind]++
	c.faultsMu.Unlock()
}

func (c *campaign) mismatch(format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	c.resultsMu.Lock()
	c.mismatches = append(c.mismatches, msg)
	c.resultsMu.Unlock()
	c.logf("MISMATCH %s", msg)
}

// setup builds the worker, starts the stack and the S3 fault proxy, seeds the accounts and
// starts the workers.
func (c *campaign) setup(ctx context.Context) error {
	var err error
	if c.cfg.Dir == "" {
		if c.cfg.Dir, err = os.MkdirTemp("", "chaos-*"); err != nil {
			return err
		}
	}
	if c.cfg.Dir, err = filepath.Abs(c.cfg.Dir); err != nil {
		return err
	}
	if err := os.MkdirAll(c.cfg.Dir, 0o755); err != nil {
		return err
	}
	c.logf("work dir %s (stack data and every log)", c.cfg.Dir)

	bin := filepath.Join(c.cfg.Dir, "worker")
	t0 := time.Now()
	bctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	build := exec.CommandContext(bctx, "go", "build", "-o", bin, "./worker")
	build.Dir = c.cfg.RepoRoot
	out, err := build.CombinedOutput()
	cancel()
	if err != nil {
		return fmt.Errorf("build worker: %v\n%s", err, out)
	}
	c.logf("built the worker in %s", time.Since(t0).Round(time.Millisecond))

	admin, err := freeAddr()
	if err != nil {
		return err
	}
	kinds := strings.Join(c.cfg.BQFaults, ",")
	t0 = time.Now()
	stackDir := filepath.Join(c.cfg.Dir, "stack")
	if err := os.MkdirAll(stackDir, 0o755); err != nil {
		return err
	}
	c.stack, err = devstack.Start(ctx, devstack.Options{BinDir: c.cfg.BinDir, Dir: stackDir,
		TemporalDBFile: filepath.Join(stackDir, "temporal.db"),
		BQEmuArgs: []string{"--max-streams", "4", "--snapshot-sessions", "--stream-chunk-rows", "97", "--admin-addr", admin,
			"--fault-seed", fmt.Sprint(c.cfg.Seed), "--fault-rate", "0", "--fault-kinds", kinds}})
	if err != nil {
		return err
	}
	c.bqAdmin = "http://" + admin
	c.logf("stack up in %s (Temporal with a database file, MinIO, BigQuery emulator with 4 streams per session)", time.Since(t0).Round(time.Millisecond))

	c.consumer = &consumer{c: c}
	c.s3, err = faults3.Start(faults3.Config{Upstream: c.stack.S3Endpoint, Seed: c.cfg.Seed, Rate: 0,
		Kinds: c.cfg.S3Faults, OnWrite: c.consumer.onWrite})
	if err != nil {
		return err
	}
	kms := c.stack.KMSSecretKey
	if i := strings.IndexByte(kms, ':'); i >= 0 {
		kms = kms[i+1:]
	}
	c.secrets.add(secret{what: "MinIO root password", value: c.stack.MinIORootPassword},
		secret{what: "exporter secret key", value: c.stack.ExporterSecret},
		secret{what: "KMS master key", value: kms})

	t0 = time.Now()
	if c.bq, err = c.stack.BigQueryClient(ctx); err != nil {
		return err
	}
	rows := 0
	for i := 0; i < c.cfg.Accounts; i++ {
		a := newAccount(i, c.cfg.RowsScale)
		if err := a.seed(ctx, c.bq); err != nil {
			return err
		}
		c.accounts = append(c.accounts, a)
		rows += a.totalRows()
	}
	c.logf("seeded %d accounts, %d rows per round, in %s", len(c.accounts), rows, time.Since(t0).Round(time.Millisecond))

	c.tc, err = client.Dial(client.Options{HostPort: c.stack.TemporalAddress, Logger: quietLogger{}})
	if err != nil {
		return err
	}
	c.verifier = &verifier{root: c.stack.RootS3(), bucket: devstack.CustomerBucket, dir: filepath.Join(c.cfg.Dir, "verify")}
	if err := os.MkdirAll(c.verifier.dir, 0o755); err != nil {
		return err
	}
	c.consumer.start(c.accounts, c.verifier)

	env := []string{"TASK_QUEUE=" + TaskQueue, "SHARD_TARGET_BYTES=8192", "ROW_GROUP_BYTES=4096", "MAX_STREAMS=3",
		// The bigger tables (about 1 MiB and up) split into stream groups, the rest do not:
		// both paths take the faults.
		"TABLE_SPLIT_BYTES=768KiB", "MAX_STREAM_GROUPS=4",
		// Loopback and a free port each: several workers run at once, and their metrics are read.
		"METRICS_ADDR=127.0.0.1:0"}
	for _, kv := range c.stack.WorkerEnv() {
		switch {
		case strings.HasPrefix(kv, "S3_ENDPOINT_URL="):
			kv = "S3_ENDPOINT_URL=" + c.s3.URL
		case strings.HasPrefix(kv, "STS_ENDPOINT_URL="):
			kv = "STS_ENDPOINT_URL=" + c.s3.URL
		}
		env = append(env, kv)
	}
	c.pool = newWorkerPool(bin, filepath.Join(c.cfg.Dir, "workers"), env)
	if err := os.MkdirAll(c.pool.dir, 0o755); err != nil {
		return err
	}
	c.pool.onLine = c.onWorkerLine
	for i := 0; i < c.cfg.Workers; i++ {
		if _, err := c.pool.start(); err != nil {
			return err
		}
	}
	c.logf("%d workers running (8 KiB shards, 3 streams per table); S3 through the fault proxy", c.cfg.Workers)
	return nil
}

func (c *campaign) teardown() {
	if c.pool != nil {
		c.pool.stopAll()
	}
	if c.tc != nil {
		c.tc.Close()
	}
	if c.bq != nil {
		_ = c.bq.Close()
	}
	if c.s3 != nil {
		_ = c.s3.Close()
	}
	if c.stack != nil {
		c.stack.Stop()
	}
}

// setFaults turns fault injection on (the configured rates) or off.
func (c *campaign) setFaults(ctx context.Context, on bool) error {
	s3Rate, bqRate := 0.0, 0.0
	if on {
		s3Rate, bqRate = c.cfg.S3Rate, c.cfg.BQRate
	}
	c.s3.SetRate(s3Rate)
	body, _ := json.Marshal(map[string]any{"rate": bqRate, "kinds": c.cfg.BQFaults})
	_, err := c.bqFaults(ctx, http.MethodPut, body)
	return err
}

// bqFaults talks to the bqemu fault admin endpoint and returns its counts.
func (c *campaign) bqFaults(ctx context.Context, method string, body []byte) (map[string]int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.bqAdmin+"/faults", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("bqemu admin: %s: %s", resp.Status, b)
	}
	var st struct {
		Counts map[string]int `json:"counts"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, err
	}
	return st.Counts, nil
}

// campaign runs the dumps under faults, then lets the last ones finish without faults.
func (c *campaign) campaign(ctx context.Context) {
	if err := c.setFaults(ctx, true); err != nil {
		c.mismatch("could not turn Storage Read faults on: %v", err)
	}
	windowEnd := time.Now().Add(c.cfg.Duration)
	c.windowEnd = windowEnd
	c.logf("faults on for %s: S3 rate %.2f, Storage Read rate %.2f, up to %d worker kills, %d Temporal restarts",
		c.cfg.Duration, c.cfg.S3Rate, c.cfg.BQRate, max(c.cfg.Kills, 0), max(c.cfg.TemporalRestarts, 0))

	mctx, stopMonkeys := context.WithCancel(ctx)
	var monkeys sync.WaitGroup
	monkeys.Go(func() { c.supervise(mctx) })
	monkeys.Go(func() { c.killer(mctx, windowEnd) })
	monkeys.Go(func() { c.updater(mctx, windowEnd) })
	monkeys.Go(func() { c.restarter(mctx, windowEnd) })
	monkeys.Go(func() { c.pauser(mctx, windowEnd) })

	var accounts sync.WaitGroup
	for i, a := range c.accounts {
		accounts.Go(func() {
			// Staggered starts, so the accounts' dumps do not move in lockstep.
			if !sleep(ctx, time.Duration(i)*3*time.Second) {
				return
			}
			for round := 1; round == 1 || time.Now().Before(windowEnd); round++ {
				if ctx.Err() != nil {
					return
				}
				if round > 1 {
					// The data changes between dumps; the next must not be stale. The
					// emulator's DELETE waits for reads of the table in flight (its SQLite
					// lock), a frozen worker's too, so it may take minutes under faults.
					sctx, cancel := context.WithTimeout(ctx, sourceChangeTimeout)
					err := a.shrink(sctx, c.bq)
					cancel()
					if err != nil {
						// The emulator, not the exporter, failed: this account takes no
						// more dumps (a late DELETE would change the source under them).
						c.logf("%s: the emulator did not change the source within %s (%v): no more rounds for this account", a.acc.ID, sourceChangeTimeout, err)
						c.faultsMu.Lock()
						c.harnessSkips++
						c.faultsMu.Unlock()
						return
					}
				}
				c.runDump(ctx, a, round)
			}
		})
	}
	// Faults stop when the window closes; dumps still running finish without them.
	go func() {
		if sleep(mctx, time.Until(windowEnd)) {
			c.armed.Store("")
			if err := c.setFaults(ctx, false); err != nil {
				c.logf("could not turn Storage Read faults off: %v", err)
			}
			c.logf("fault window over: faults off, waiting for the dumps in flight")
		}
	}()
	accounts.Wait()
	stopMonkeys()
	monkeys.Wait()
	c.bg.Wait()
	_ = c.setFaults(ctx, false)
}

// supervise keeps the configured number of workers running: a killed worker is replaced
// after a short random pause, as an orchestrator would restart it.
func (c *campaign) supervise(ctx context.Context) {
	for sleep(ctx, 500*time.Millisecond) {
		if len(c.pool.liveWorkers()) >= c.cfg.Workers {
			continue
		}
		if !sleep(ctx, c.between(500*time.Millisecond, 3*time.Second)) {
			return
		}
		for len(c.pool.liveWorkers()) < c.cfg.Workers {
			w, err := c.pool.start()
			if err != nil {
				c.logf("could not start a replacement worker: %v", err)
				break
			}
			c.logf("started worker %d", w.id)
		}
	}
}

// triggers are the worker log messages after which the campaign may kill the worker that
// printed them: the moments right after a session is opened, a shard is recorded, a receipt
// is written, a table is resumed or finished.
//
// "assuming customer role" is left out on purpose: CheckAccess has no heartbeat, so a worker
// lost there holds the dump for the activity's whole StartToCloseTimeout (4 minutes), longer
// than a campaign's dump deadline; that wait is by design, not a fault of the promise.
var triggers = []string{"read session opened", "shard uploaded", "shard uploaded", "receipt written",
	"resuming table export", "table exported", "stream group exported"}

// onWorkerLine kills the worker that printed the armed message.
func (c *campaign) onWorkerLine(w *workerProc, msg string) {
	if msg == "stream group exported" {
		c.groupsExported.Add(1)
	}
	armed, _ := c.armed.Load().(string)
	if armed == "" || msg != armed || !c.armed.CompareAndSwap(armed, "") {
		return
	}
	if w.kill() {
		c.kills.Add(1)
		c.fault(fmt.Sprintf("worker_sigkill after %q", msg))
		c.logf("SIGKILL worker %d right after it logged %q", w.id, msg)
	}
}

// killer kills workers at random moments, or arms a log-line trigger, until the window
// closes or the kill budget is spent. A trigger that has not fired within armFor (its moment
// did not come: say no table was resumed) gives way to a kill at a random moment.
func (c *campaign) killer(ctx context.Context, windowEnd time.Time) {
	const armFor = 20 * time.Second
	for int(c.kills.Load()) < c.cfg.Kills {
		if !sleep(ctx, c.between(10*time.Second, 25*time.Second)) || time.Now().After(windowEnd) {
			return
		}
		if c.intn(2) == 0 {
			msg := triggers[c.intn(len(triggers))]
			c.armed.Store(msg)
			c.logf("armed: the next worker to log %q is killed", msg)
			if !sleep(ctx, armFor) {
				return
			}
			if !c.armed.CompareAndSwap(msg, "") {
				continue // it fired
			}
			c.logf("disarmed: no worker logged %q within %s", msg, armFor)
		}
		live := c.pool.liveWorkers()
		if len(live) == 0 {
			continue
		}
		w := live[c.intn(len(live))]
		if w.kill() {
			c.kills.Add(1)
			c.fault("worker_sigkill at a random moment")
			c.logf("SIGKILL worker %d at a random moment", w.id)
		}
	}
}

// pauser freezes a worker past its activities' heartbeat timeout, then wakes it up as a
// zombie, at random moments of the window's first half (so the pause ends inside it).
func (c *campaign) pauser(ctx context.Context, windowEnd time.Time) {
	n := c.cfg.Pauses
	if n <= 0 {
		return
	}
	span := time.Until(windowEnd)
	begin := time.Now()
	for i := 0; i < n; i++ {
		slot := time.Duration(float64(span) * 0.45 / float64(n))
		at := begin.Add(span/10 + time.Duration(i)*slot + c.between(0, slot/2))
		if !sleep(ctx, time.Until(at)) || time.Now().After(windowEnd) {
			return
		}
		if i == 0 && c.zombieRerunSoon(ctx) {
			continue
		}
		live := c.pool.liveWorkers()
		if len(live) < 2 {
			continue // someone has to do the work meanwhile
		}
		w := live[c.intn(len(live))]
		d := c.between(65*time.Second, 80*time.Second)
		c.logf("SIGSTOP worker %d for %s (past the heartbeat timeout), then SIGCONT", w.id, d.Round(time.Second))
		c.bg.Go(func() {
			paused, resumed := w.pause(d)
			switch {
			case resumed:
				c.fault("worker_sigstop past the heartbeat timeout")
				c.logf("SIGCONT worker %d: it wakes up as a zombie", w.id)
			case paused:
				c.fault("worker_sigstop past the heartbeat timeout")
				c.logf("worker %d was killed while paused", w.id)
			}
		})
	}
}

// restarter kills the Temporal server and starts it again on the same database, at random
// moments spread over the middle half of the window (dumps are in flight then).
func (c *campaign) restarter(ctx context.Context, windowEnd time.Time) {
	n := c.cfg.TemporalRestarts
	if n <= 0 {
		return
	}
	span := time.Until(windowEnd)
	begin := time.Now()
	for i := 0; i < n; i++ {
		slot := time.Duration(float64(span) * 0.5 / float64(n))
		at := begin.Add(span/4 + time.Duration(i)*slot + c.between(0, slot))
		if !sleep(ctx, time.Until(at)) || time.Now().After(windowEnd) {
			return
		}
		c.logf("killing the Temporal server (SIGKILL) and restarting it on the same database")
		t0 := time.Now()
		if err := c.stack.RestartTemporal(ctx); err != nil {
			c.mismatch("Temporal did not come back after a restart: %v", err)
			return
		}
		c.fault("temporal_server_restart")
		c.logf("Temporal is back after %s", time.Since(t0).Round(time.Millisecond))
	}
}

// updater sends rerun and retry updates to dumps in flight at random moments.
func (c *campaign) updater(ctx context.Context, windowEnd time.Time) {
	for sleep(ctx, c.between(4*time.Second, 12*time.Second)) && time.Now().Before(windowEnd) {
		c.runningMu.Lock()
		ids := make([]string, 0, len(c.running))
		for id := range c.running {
			ids = append(ids, id)
		}
		c.runningMu.Unlock()
		if len(ids) == 0 {
			continue
		}
		sort.Strings(ids)
		c.sendUpdate(ctx, ids[c.intn(len(ids))])
	}
}

// sendUpdate sends a dump a rerun (of all, some or an unknown table) or a retry, waits for
// the outcome and counts it. A dump gets at most maxUpdatesPerDump updates and one accepted
// rerun.
func (c *campaign) sendUpdate(ctx context.Context, id string) {
	c.runningMu.Lock()
	f := c.running[id]
	c.runningMu.Unlock()
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.updates >= maxUpdatesPerDump {
		return
	}
	f.updates++
	rerunAllowed := !f.rerunAccepted
	a := f.a
	name, args, what := workflows.UpdateRetry, any(workflows.RetryRequest{}), "retry"
	if rerunAllowed && c.intn(3) > 0 {
		var tables []string
		switch c.intn(4) {
		case 0: // the whole dump
		case 1: // a table the account does not have: the validator must refuse it
			tables = []string{"no_such_table"}
		default:
			for _, t := range a.acc.Tables {
				if c.intn(2) == 0 {
					tables = append(tables, t)
				}
			}
			if len(tables) == 0 {
				tables = a.acc.Tables[:1]
			}
		}
		name, args, what = workflows.UpdateRerun, workflows.RerunRequest{Tables: tables}, fmt.Sprintf("rerun %v", tables)
	}
	outcome, err := c.update(ctx, id, name, args)
	if outcome == "accepted" && name == workflows.UpdateRerun {
		f.rerunAccepted = true
	}
	c.countUpdate(name, outcome)
	reason := ""
	if err != nil {
		reason = ": " + firstLine(err.Error())
	}
	c.logf("update %s to %s: %s%s", what, id, outcome, reason)
}

// update sends one update and waits for its outcome: accepted, rejected (the validator or
// the handler refused it), or one where the answer never came back.
func (c *campaign) update(ctx context.Context, id, name string, args any) (string, error) {
	uctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	h, err := c.tc.UpdateWorkflow(uctx, client.UpdateWorkflowOptions{WorkflowID: id, UpdateName: name,
		Args: []any{args}, WaitForStage: client.WorkflowUpdateStageCompleted})
	if err == nil {
		var out json.RawMessage
		err = h.Get(uctx, &out)
	}
	var notFound *serviceerror.NotFound
	outcome := "accepted"
	switch {
	case err == nil:
	case strings.Contains(err.Error(), "unknown update"):
		outcome = "unknown update (no handler yet)"
	case errors.As(err, &notFound):
		outcome = "too late (the dump had closed)"
	case isRPCError(err):
		outcome = "not delivered (server unavailable)"
	default:
		outcome = "rejected"
	}
	return outcome, err
}

func (c *campaign) countUpdate(name, outcome string) {
	c.fault("update_" + name)
	c.faultsMu.Lock()
	c.updates[name+": "+outcome]++
	c.faultsMu.Unlock()
}

// changeAndRerun changes the source of one table of the dump (deletes its last rows, as a
// late modelling run would), then asks for a rerun of that table; table "" picks one. With
// snapshot sessions each read session keeps the rows of its creation, as BigQuery's do, so:
// accepted, the dump must deliver the new rows (the rerun reads at a fresh snapshot, and no
// shard of the earlier pass, nor one a zombie of it writes late, may survive); rejected (its
// receipt was under way), a table that was already done keeps the rows it read before. In
// every other case (a table still exporting, an answer lost to a server restart) either
// content is right. It reports whether it did anything.
func (c *campaign) changeAndRerun(ctx context.Context, id, table string, exporting bool) bool {
	c.runningMu.Lock()
	f := c.running[id]
	c.runningMu.Unlock()
	if f == nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rerunAccepted || f.updates >= maxUpdatesPerDump {
		return false
	}
	t, state := table, workflows.StateExporting
	// Unless the caller knows the table is exporting, ask the dump (not when the caller froze
	// a worker: the query could wait on that worker's sticky cache).
	if !exporting {
		p, ok := c.progress(ctx, id)
		if !ok || p.State != workflows.StateExporting {
			return false
		}
		if t == "" {
			var candidates []string
			for _, name := range f.a.acc.Tables {
				if sequentialKeys[name] != "" {
					candidates = append(candidates, name)
				}
			}
			if len(candidates) == 0 {
				return false
			}
			t = candidates[c.intn(len(candidates))]
		}
		state = "unknown"
		if tp := p.Tables[t]; tp != nil {
			state = tp.State
		}
	}
	if sequentialKeys[t] == "" {
		return false
	}
	wasDone := state == workflows.StateDone
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	now, changed, err := f.a.shrinkTable(sctx, c.bq, t)
	cancel()
	if err != nil {
		c.mismatch("%s: could not change table %s during dump %s: %v", f.a.acc.ID, t, id, err)
		return true
	}
	if !changed {
		return false
	}
	f.updates++
	outcome, err := c.update(ctx, id, workflows.UpdateRerun, workflows.RerunRequest{Tables: []string{t}})
	switch {
	case outcome == "accepted":
		f.rerunAccepted = true
		f.want.src[t] = now
	case outcome == "rejected" && wasDone:
		// The dump keeps what it read before the change.
	default:
		f.want.alt[t] = &now
	}
	c.countUpdate(workflows.UpdateRerun+" after a source change", outcome)
	reason := ""
	if err != nil {
		reason = ": " + firstLine(err.Error())
	}
	c.logf("source of %s changed to %d rows (the table was %s), then update rerun [%s] to %s: %s%s",
		t, now.rows, state, t, id, outcome, reason)
	return true
}

// progress queries a dump's progress, twice at most: a query may wait for a worker that died
// with the workflow in its sticky cache.
func (c *campaign) progress(ctx context.Context, id string) (workflows.Progress, bool) {
	var p workflows.Progress
	for attempt := 0; attempt < 2; attempt++ {
		qctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		v, err := c.tc.QueryWorkflow(qctx, id, "", workflows.QueryProgress)
		cancel()
		if err == nil && v.Get(&p) == nil {
			return p, true
		}
	}
	return p, false
}

// zombieRerunSoon tries zombieRerun for up to 40 seconds: dumps spend much of their time
// waiting for their minute to end, with no table being exported.
func (c *campaign) zombieRerunSoon(ctx context.Context) bool {
	for try := 0; try < 20; try++ {
		if c.zombieRerun(ctx) {
			return true
		}
		if !sleep(ctx, 2*time.Second) {
			return false
		}
	}
	return false
}

// zombieRerun freezes the worker exporting a table of a dump in flight, then changes that
// table's source and has it rerun: while the worker is frozen, Temporal gives its attempt up
// and the rerun's pass writes the new rows; when the worker wakes up (after the new pass, as
// a zombie) it may finish the upload of an old shard. Nothing of the old pass may end up in
// the dump. It reports whether it found a worker to freeze.
func (c *campaign) zombieRerun(ctx context.Context) bool {
	c.runningMu.Lock()
	ids := make([]string, 0, len(c.running))
	for id := range c.running {
		ids = append(ids, id)
	}
	c.runningMu.Unlock()
	sort.Strings(ids)
	for _, i := range c.perm(len(ids)) {
		id := ids[i]
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		d, err := c.tc.DescribeWorkflowExecution(dctx, id, "")
		cancel()
		if err != nil {
			continue
		}
		for _, pa := range d.GetPendingActivities() {
			if pa.GetActivityType().GetName() != "ExportTable" || pa.GetState() != enumspb.PENDING_ACTIVITY_STATE_STARTED {
				continue
			}
			table := heartbeatTable(pa.GetHeartbeatDetails().GetPayloads())
			w := c.workerOf(pa.GetLastWorkerIdentity())
			if table == "" || sequentialKeys[table] == "" || w == nil || len(c.pool.liveWorkers()) < 2 {
				continue
			}
			d := c.between(120*time.Second, 150*time.Second)
			c.logf("SIGSTOP worker %d, exporting %s of %s, for %s; meanwhile its source changes and it is rerun", w.id, table, id, d.Round(time.Second))
			c.bg.Go(func() {
				paused, resumed := w.pause(d)
				switch {
				case resumed:
					c.fault("worker_sigstop mid-table, then rerun (zombie)")
					c.logf("SIGCONT worker %d: it wakes up as a zombie of the old pass of %s", w.id, table)
				case paused:
					c.fault("worker_sigstop mid-table, then rerun (zombie)")
					c.logf("worker %d was killed while paused", w.id)
				}
			})
			if !sleep(ctx, 2*time.Second) { // the worker is frozen before the table changes
				return true
			}
			if !c.changeAndRerun(ctx, id, table, true) {
				c.logf("the dump moved on: no source change for %s", id)
			}
			return true
		}
	}
	return false
}

// heartbeatTable reads the table name out of ExportTable heartbeat details (export.Progress:
// the read session names its table); "" when it is not there.
func heartbeatTable(payloads []*commonpb.Payload) string {
	for _, p := range payloads {
		var hb struct {
			Session struct {
				Table struct{ Table string }
			} `json:"session"`
		}
		if json.Unmarshal(p.GetData(), &hb) == nil && hb.Session.Table.Table != "" {
			return hb.Session.Table.Table
		}
	}
	return ""
}

// workerOf finds the running worker of a Temporal worker identity ("pid@host@...").
func (c *campaign) workerOf(identity string) *workerProc {
	pid, _, _ := strings.Cut(identity, "@")
	for _, w := range c.pool.liveWorkers() {
		if fmt.Sprint(w.cmd.Process.Pid) == pid {
			return w
		}
	}
	return nil
}

func (c *campaign) perm(n int) []int {
	c.rngMu.Lock()
	defer c.rngMu.Unlock()
	return c.rng.Perm(n)
}

// isRPCError tells a failure to reach the server from the workflow's answer.
func isRPCError(err error) bool {
	var unavailable *serviceerror.Unavailable
	var deadline *serviceerror.DeadlineExceeded
	var notFound *serviceerror.NotFound
	return errors.As(err, &unavailable) || errors.As(err, &deadline) || errors.As(err, &notFound) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// runDump starts one dump of an account, waits for it (through server restarts), and checks
// what landed.
func (c *campaign) runDump(ctx context.Context, a *account, round int) {
	id := fmt.Sprintf("%s-chaos-r%d-%s", workflows.ScheduleID(a.acc.ID), round, time.Now().UTC().Format("150405.000"))
	start := time.Now()
	deadline := start.Add(c.cfg.DumpDeadline)
	if d := c.windowEnd.Add(c.cfg.DrainDeadline); d.Before(deadline) {
		deadline = d
	}
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	if err := c.startDump(dctx, id, a); err != nil {
		c.mismatch("%s round %d: could not start dump %s: %v", a.acc.ID, round, id, err)
		c.record(dumpOutcome{account: a.acc.ID, workflowID: id, state: "failed", elapsed: time.Since(start)})
		return
	}
	c.resultsMu.Lock()
	c.workflows = append(c.workflows, id)
	c.resultsMu.Unlock()
	c.runningMu.Lock()
	f := &inflight{a: a, want: expected{src: a.current(), alt: map[string]*sourceTable{}}}
	c.running[id] = f
	c.runningMu.Unlock()
	defer func() {
		c.runningMu.Lock()
		delete(c.running, id)
		c.runningMu.Unlock()
	}()
	c.logf("%s round %d: dump %s started", a.acc.ID, round, id)
	// Most dumps also get an update while they export, when a rerun can still be accepted;
	// some of them after a change to the source, which the rerun must deliver.
	if c.intn(3) > 0 && time.Now().Before(c.windowEnd) {
		delay := c.between(time.Second, 20*time.Second)
		change := c.intn(2) == 0
		c.bg.Go(func() {
			if !sleep(dctx, delay) {
				return
			}
			if !change || !c.changeAndRerun(ctx, id, "", false) {
				c.sendUpdate(ctx, id)
			}
		})
	}

	status, err := c.waitDump(dctx, id)
	elapsed := time.Since(start)
	switch {
	case err != nil:
		detail := c.stuckDetail(ctx, id)
		c.terminate(ctx, id)
		c.mismatch("%s round %d: dump %s did not complete within %s of its start nor %s of the faults' end (%v)%s",
			a.acc.ID, round, id, c.cfg.DumpDeadline, c.cfg.DrainDeadline, err, detail)
		c.record(dumpOutcome{account: a.acc.ID, workflowID: id, state: "timed_out", elapsed: elapsed})
		return
	case status != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		cause := c.failureCause(ctx, id)
		c.mismatch("%s round %d: dump %s ended %s: %s", a.acc.ID, round, id, status, cause)
		c.record(dumpOutcome{account: a.acc.ID, workflowID: id, state: "failed", elapsed: elapsed})
		return
	}
	var res workflows.ExportResult
	if err := c.result(ctx, id, &res); err != nil {
		c.mismatch("%s round %d: dump %s completed but its result does not decode: %v", a.acc.ID, round, id, err)
		c.record(dumpOutcome{account: a.acc.ID, workflowID: id, state: "failed", elapsed: elapsed})
		return
	}
	vctx, vcancel := context.WithTimeout(ctx, 2*time.Minute)
	f.mu.Lock()
	want := f.want
	f.mu.Unlock()
	chk := c.verifier.check(vctx, a.acc, want, res)
	vcancel()
	for _, p := range chk.problems {
		c.mismatch("%s round %d dump %s (%s): %s", a.acc.ID, round, res.DumpFolder, id, p)
	}
	c.record(dumpOutcome{account: a.acc.ID, workflowID: id, state: "complete", elapsed: elapsed, check: chk})
	c.logf("%s round %d: dump %s complete in %s: %d objects, %d rows verified, %d problems",
		a.acc.ID, round, res.DumpFolder, elapsed.Round(time.Second), chk.objects, chk.rows, len(chk.problems))
}

func (c *campaign) record(o dumpOutcome) {
	c.resultsMu.Lock()
	c.dumps = append(c.dumps, o)
	c.resultsMu.Unlock()
}

// startDump starts the workflow, retrying while the server is down. A start whose answer
// was lost shows up as already started, which is success.
func (c *campaign) startDump(ctx context.Context, id string, a *account) error {
	for {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := c.tc.ExecuteWorkflow(sctx, client.StartWorkflowOptions{
			ID: id, TaskQueue: TaskQueue,
			TypedSearchAttributes: temporal.NewSearchAttributes(workflows.AttrAccountID.ValueSet(a.acc.ID)),
		}, workflows.ExportWorkflowName, workflows.ExportInput{Account: a.acc})
		cancel()
		var started *serviceerror.WorkflowExecutionAlreadyStarted
		if err == nil || errors.As(err, &started) {
			return nil
		}
		if !sleep(ctx, 2*time.Second) {
			return err
		}
	}
}

// waitDump polls the dump until it closes, scanning what the server shows of it (pending
// activities' heartbeat details, failures) for secrets on the way.
func (c *campaign) waitDump(ctx context.Context, id string) (enumspb.WorkflowExecutionStatus, error) {
	for {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		d, err := c.tc.DescribeWorkflowExecution(dctx, id, "")
		cancel()
		if err == nil {
			c.secrets.scanDescribe(id, d)
			if st := d.GetWorkflowExecutionInfo().GetStatus(); st != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
				return st, nil
			}
		}
		if !sleep(ctx, 2*time.Second) {
			return 0, ctx.Err()
		}
	}
}

// result fetches a closed dump's result, retrying while the server is down.
func (c *campaign) result(ctx context.Context, id string, res *workflows.ExportResult) error {
	var err error
	for attempt := 0; attempt < 30; attempt++ {
		gctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = c.tc.GetWorkflow(gctx, id, "").Get(gctx, res)
		cancel()
		if err == nil || !isRPCError(err) {
			return err
		}
		if !sleep(ctx, 2*time.Second) {
			break
		}
	}
	return err
}

// failureCause is why a closed dump did not complete.
func (c *campaign) failureCause(ctx context.Context, id string) string {
	var res workflows.ExportResult
	if err := c.result(ctx, id, &res); err != nil {
		return err.Error()
	}
	return "no error"
}

// stuckDetail describes a dump that overran its deadline: its state and pending activities.
func (c *campaign) stuckDetail(ctx context.Context, id string) string {
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var b strings.Builder
	if v, err := c.tc.QueryWorkflow(qctx, id, "", workflows.QueryProgress); err == nil {
		var p workflows.Progress
		if v.Get(&p) == nil {
			fmt.Fprintf(&b, "\n    state %s", p.State)
			names := make([]string, 0, len(p.Tables))
			for n := range p.Tables {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				t := p.Tables[n]
				fmt.Fprintf(&b, "\n    table %s: %s, %d files, %d rows, %d passes %s", n, t.State, t.Files, t.Rows, t.Passes, firstLine(t.LastError))
			}
		}
	}
	if d, err := c.tc.DescribeWorkflowExecution(qctx, id, ""); err == nil {
		for _, pa := range d.GetPendingActivities() {
			fmt.Fprintf(&b, "\n    pending %s: attempt %d, state %s, last failure: %s", pa.GetActivityType().GetName(),
				pa.GetAttempt(), pa.GetState(), firstLine(pa.GetLastFailure().GetMessage()))
		}
	}
	return b.String()
}

func (c *campaign) terminate(ctx context.Context, id string) {
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_ = c.tc.TerminateWorkflow(tctx, id, "", "chaos: dump overran its deadline")
}

// scanSecrets searches every workflow's full history and every worker log line for every
// secret: the stack's static secrets and every credential the S3 proxy saw.
func (c *campaign) scanSecrets(ctx context.Context) {
	for _, s := range c.s3.Secrets() {
		c.secrets.add(secret{what: s.What, value: s.Value})
	}
	c.resultsMu.Lock()
	ids := append([]string(nil), c.workflows...)
	c.resultsMu.Unlock()
	// Also every other workflow the server knows (none are expected).
	known := map[string]bool{}
	for _, id := range ids {
		known[id] = true
	}
	var token []byte
	for page := 0; page < 100; page++ {
		lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		resp, err := c.tc.ListWorkflow(lctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: "default", PageSize: 500, NextPageToken: token})
		cancel()
		if err != nil {
			c.logf("could not list workflows: %v", err)
			break
		}
		for _, e := range resp.GetExecutions() {
			if id := e.GetExecution().GetWorkflowId(); !known[id] {
				ids = append(ids, id)
				known[id] = true
			}
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	events := 0
	for _, id := range ids {
		hctx, cancel := context.WithTimeout(ctx, time.Minute)
		n, err := c.secrets.scanHistory(hctx, c.tc, id, "")
		cancel()
		events += n
		if err != nil {
			c.mismatch("could not read the history of %s: %v", id, err)
		}
	}
	lines := 0
	for _, f := range c.pool.logFiles() {
		n, err := c.secrets.scanFile(f)
		lines += n
		if err != nil {
			c.mismatch("could not read worker log %s: %v", f, err)
		}
	}
	for _, f := range c.secrets.findings() {
		c.mismatch("secret leaked: %s", f)
	}
	c.logf("searched %d secrets in %d history events of %d workflows and %d worker log lines: %d found",
		c.secrets.count(), events, len(ids), lines, len(c.secrets.findings()))
}

// summary gathers the counts.
func (c *campaign) summary() *Summary {
	s := &Summary{Seed: c.cfg.Seed, Elapsed: time.Since(c.started), Faults: map[string]int{}, Updates: map[string]int{}}
	for k, n := range c.s3.Counts() {
		s.Faults[string(k)] = n
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if counts, err := c.bqFaults(ctx, http.MethodGet, nil); err == nil {
		for k, n := range counts {
			s.Faults["bq_"+k] = n
		}
	} else {
		c.mismatch("could not read the Storage Read fault counts: %v", err)
	}
	c.faultsMu.Lock()
	for k, n := range c.faults {
		s.Faults[k] = n
	}
	for k, n := range c.updates {
		s.Updates[k] = n
	}
	s.RoundsSkipped = c.harnessSkips
	c.faultsMu.Unlock()
	c.resultsMu.Lock()
	defer c.resultsMu.Unlock()
	for _, d := range c.dumps {
		switch d.state {
		case "complete":
			s.DumpsComplete++
		case "failed":
			s.DumpsFailed++
		default:
			s.DumpsTimedOut++
		}
		s.Rows += d.check.rows
		s.Objects += d.check.objects
		s.CRCChecked += d.check.crcChecked
		s.CRCComposite += d.check.crcComposite
	}
	s.SecretsChecked = c.secrets.count()
	s.ReceiptsConsumed = c.receiptsConsumed
	s.StreamGroups = int(c.groupsExported.Load())
	s.Mismatches = append([]string(nil), c.mismatches...)
	s.MinFaults = c.cfg.MinFaults
	return s
}

// printSummary prints the table and the last line.
func (c *campaign) printSummary(s *Summary) {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	w := c.out
	fmt.Fprintf(w, "\n=== chaos summary (seed %d, %s) ===\n", s.Seed, s.Elapsed.Round(time.Second))
	fmt.Fprintf(w, "%-52s %6s\n", "fault", "count")
	kinds := make([]string, 0, len(s.Faults))
	for k := range s.Faults {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Fprintf(w, "%-52s %6d\n", k, s.Faults[k])
	}
	fmt.Fprintf(w, "%-52s %6d\n", "total", s.TotalFaults())
	if len(s.Updates) > 0 {
		fmt.Fprintf(w, "\n%-52s %6s\n", "update outcome", "count")
		outs := make([]string, 0, len(s.Updates))
		for k := range s.Updates {
			outs = append(outs, k)
		}
		sort.Strings(outs)
		for _, k := range outs {
			fmt.Fprintf(w, "%-52s %6d\n", k, s.Updates[k])
		}
	}
	fmt.Fprintf(w, "\n%-52s %6d\n%-52s %6d\n%-52s %6d\n", "dumps complete", s.DumpsComplete, "dumps failed", s.DumpsFailed,
		"dumps not complete by their deadline", s.DumpsTimedOut)
	fmt.Fprintf(w, "%-52s %6s\n%-52s %6d\n", "rows verified (DuckDB vs source)", humanize.Count(s.Rows), "objects verified", s.Objects)
	fmt.Fprintf(w, "%-52s %6d\n", "receipt.json writes checked as they landed", s.ReceiptsConsumed)
	fmt.Fprintf(w, "%-52s %6d\n", "stream groups exported (tables split)", s.StreamGroups)
	if s.RoundsSkipped > 0 {
		fmt.Fprintf(w, "%-52s %6d\n", "rounds skipped: the emulator kept the source", s.RoundsSkipped)
	}
	fmt.Fprintf(w, "%-52s %6d\n%-52s %6d\n", "CRC32C compared", s.CRCChecked, "CRC32C composite (multipart, not compared)", s.CRCComposite)
	fmt.Fprintf(w, "%-52s %6d\n%-52s %6d\n", "secrets searched in histories and logs", s.SecretsChecked, "mismatches", len(s.Mismatches))
	if len(s.Mismatches) > 0 {
		fmt.Fprintln(w, "\nmismatches:")
		for _, m := range s.Mismatches {
			fmt.Fprintln(w, "  - "+m)
		}
	}
	short := ""
	if s.TotalFaults() < s.MinFaults {
		short = fmt.Sprintf(" (FEWER than the %d required: the campaign proved too little)", s.MinFaults)
	}
	fmt.Fprintf(w, "\nchaos: %d faults%s, %d dumps, %s rows, %d mismatches\n", s.TotalFaults(), short,
		s.DumpsComplete+s.DumpsFailed+s.DumpsTimedOut, humanize.Count(s.Rows), len(s.Mismatches))
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// sleep waits d or until ctx ends; it reports whether the wait completed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// quietLogger keeps the Temporal client's retries during server restarts out of the output.
type quietLogger struct{}

func (quietLogger) Debug(string, ...interface{}) {}
func (quietLogger) Info(string, ...interface{})  {}
func (quietLogger) Warn(string, ...interface{})  {}
func (quietLogger) Error(string, ...interface{}) {}
