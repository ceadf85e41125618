package loadtest

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dreamdata/destination-aws-s3/internal/config"
	"github.com/dreamdata/destination-aws-s3/internal/devstack"
)

func TestTableRows(t *testing.T) {
	const base = 3000
	for _, table := range config.DefaultTables {
		seen := map[int]int{}
		for i := 0; i < 100; i++ {
			n := TableRows(base, i, table)
			if table == "revenue" && i%emptyEvery == emptyEvery-1 {
				if n != 0 {
					t.Fatalf("account %d revenue: %d rows, want an empty table", i, n)
				}
				continue
			}
			if n < base || n >= base+base/5 {
				t.Fatalf("account %d %s: %d rows, want [%d, %d)", i, table, n, base, base+base/5)
			}
			if j, dup := seen[n]; dup {
				t.Fatalf("%s: accounts %d and %d both have %d rows (same content)", table, j, i, n)
			}
			seen[n] = i
		}
	}
	if TableRows(0, 3, "events") != 0 || TableRows(1, 3, "events") != 1 {
		t.Fatal("tiny bases")
	}
}

func TestAccounts(t *testing.T) {
	a := newAccount(7)
	if a.ID != "lt-007" || a.Prefix != "loadtest/lt-007" || a.BigQuery.Dataset != "lt_007" || a.KMSKeyARN == "" || len(a.Tables) != len(config.DefaultTables) {
		t.Fatalf("account 7: %+v", a)
	}
	if newAccount(8).KMSKeyARN != "" {
		t.Fatal("account 8 should write without KMS")
	}
	if err := (&config.File{Accounts: []config.Account{newAccount(0), newAccount(1)}}).Validate(); err != nil {
		t.Fatal(err)
	}
	for ds, want := range map[string]int{"lt_007": 7, "lt_099": 99} {
		if i, ok := accountOfDataset(ds, 100); !ok || i != want {
			t.Errorf("%s: %d %v", ds, i, ok)
		}
	}
	for _, ds := range []string{"lt_100", "lt_7", "lt_-01", "chaos_alpha", "lt_abc"} {
		if _, ok := accountOfDataset(ds, 100); ok {
			t.Errorf("%s accepted", ds)
		}
	}
	l := lookup(10, 500)
	tb, ok := l(devstack.Project, "lt_003", "events")
	if !ok || tb.Rows != TableRows(500, 3, "events") || len(tb.Generate()) != tb.Rows || len(tb.Schema) == 0 {
		t.Fatalf("lookup: %+v %v", tb, ok)
	}
	for _, bad := range [][3]string{{"other", "lt_003", "events"}, {devstack.Project, "lt_010", "events"}, {devstack.Project, "lt_003", "nope"}} {
		if _, ok := l(bad[0], bad[1], bad[2]); ok {
			t.Errorf("%v found", bad)
		}
	}
}

func TestStatusBytes(t *testing.T) {
	status := []byte("Name:\tworker\nVmPeak:\t 2000000 kB\nVmHWM:\t  123456 kB\nVmRSS:\t   98765 kB\nThreads:\t12\n")
	for key, want := range map[string]int64{"VmHWM": 123456 << 10, "VmRSS": 98765 << 10, "Threads": 12} {
		if got, ok := statusBytes(status, key); !ok || got != want {
			t.Errorf("%s: %d %v, want %d", key, got, ok, want)
		}
	}
	if _, ok := statusBytes(status, "VmSwap"); ok {
		t.Error("VmSwap found")
	}
	if _, ok := statusBytes([]byte("VmRSS:\t12 GB\n"), "VmRSS"); ok {
		t.Error("unknown unit accepted")
	}
	// This process's own status parses.
	if n, err := procStatus(os.Getpid(), "VmHWM"); err != nil || n <= 0 {
		t.Fatalf("own VmHWM: %d %v", n, err)
	}
}

func TestSamplerPeaks(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name string, n int) {
		if err := os.WriteFile(filepath.Join(dir, name), make([]byte, n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a", 1000)
	write("sub/b", 500)
	s := &sampler{pid: os.Getpid(), dir: dir}
	s.sample()
	if got := s.staging.get(); got != 1500 {
		t.Fatalf("staging %d, want 1500", got)
	}
	os.Remove(filepath.Join(dir, "a"))
	s.sample()
	if rss, st := s.current(); st != 500 || rss <= 0 {
		t.Fatalf("current rss %d staging %d", rss, st)
	}
	if s.staging.get() != 1500 || s.hwm.get() < s.rss.get() || s.rss.get() <= 0 {
		t.Fatalf("peaks: staging %d hwm %d rss %d", s.staging.get(), s.hwm.get(), s.rss.get())
	}
	if dirBytes(filepath.Join(dir, "missing")) != 0 {
		t.Fatal("a missing dir has a size")
	}
	var p peak
	for _, v := range []int64{3, 9, 2} {
		p.observe(v)
	}
	if p.get() != 9 {
		t.Fatal(p.get())
	}
}

func passing() *Report {
	return &Report{Accounts: 100, RowsPerTable: 3000, Workers: 1, Dumps: 100, Complete: 100, Verified: 100,
		TablesExpected: 600, TablesExported: 600, Sessions: 600, ReadRows: 1200,
		Rows: 1_967_100, Objects: 1200, Bytes: 60 << 20,
		PeakRSS: 300 << 20, PeakRSSSampled: 290 << 20, PeakStaging: 3 << 20,
		StartSpread: 120 * time.Millisecond, TimeToLastReceipt: 2 * time.Minute, MedianReceipt: 61 * time.Second, FirstReceipt: 9 * time.Second, Verify: 40 * time.Second}
}

func TestReportVerdict(t *testing.T) {
	r := passing()
	if !r.OK() || r.Errors() != 0 || r.DumpsPerMinute() != 50 {
		t.Fatalf("passing report: ok %v errors %d dpm %v", r.OK(), r.Errors(), r.DumpsPerMinute())
	}
	for name, breakIt := range map[string]func(*Report){
		"a failed dump":          func(r *Report) { r.Complete--; r.Verified--; r.Failures = []string{"lt-003: boom"} },
		"a dump never closed":    func(r *Report) { r.Complete--; r.Verified-- },
		"a verification problem": func(r *Report) { r.VerifyProblems = []string{"lt-001: events: rows"} },
		"an extra session":       func(r *Report) { r.Sessions++ },
		"a table missing":        func(r *Report) { r.TablesExported--; r.Sessions-- },
		"a worker error line":    func(r *Report) { r.WorkerErrors = []string{`{"level":"ERROR"}`} },
		"the worker exited":      func(r *Report) { r.WorkerExited = true },
		"nothing ran":            func(r *Report) { *r = Report{} },
		"a dump not verified":    func(r *Report) { r.Verified-- },
	} {
		r := passing()
		breakIt(r)
		if r.OK() {
			t.Errorf("%s: report passes", name)
		}
	}
	r = passing()
	r.WorkerWarnings = 3
	if !r.OK() {
		t.Error("warnings alone fail the report")
	}
	r = passing()
	r.Complete, r.Verified = 97, 97
	r.Failures = []string{"a", "b"}
	if r.Errors() != 3 {
		t.Errorf("3 dumps not complete, 2 with a failure: %d errors, want 3", r.Errors())
	}
	if (&Report{Complete: 5}).DumpsPerMinute() != 0 {
		t.Error("dumps per minute without a receipt time")
	}
}

func TestReportFormat(t *testing.T) {
	var b bytes.Buffer
	passing().Format(&b)
	out := b.String()
	for _, want := range []string{
		"load test: 100 accounts triggered at once, 1 worker process (default settings), ~3000 rows per table",
		"dumps complete          100/100 (verified exact: 100)",
		"errors                  0 (failed dumps 0, verification problems 0, worker error lines 0)",
		"read sessions opened    600 vs tables exported 600 (600 expected): equal; 1200 ReadRows calls",
		"rows / objects / bytes  1,967,100 / 1,200 / 60.0 MiB",
		"worker peak RSS         300.0 MiB (VmHWM; largest VmRSS sampled 290.0 MiB)",
		"peak staging disk       3.0 MiB",
		"time to last receipt    2m0s (first 9s, median 1m1s)",
		"dumps per minute        50.0",
		"\nPASS\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}

	r := passing()
	r.Sessions = 603
	r.Reopened = reopened(map[string]int{"lt_001.events": 2, "lt_000.companies": 3, "lt_002.revenue": 1})
	for i := 0; i < 12; i++ {
		r.VerifyProblems = append(r.VerifyProblems, "p")
	}
	b.Reset()
	r.Format(&b)
	out = b.String()
	for _, want := range []string{
		"600 (600 expected): DIFFERENT by +3",
		"tables read more than once (2):\n    lt_000.companies ×3\n    lt_001.events ×2\n",
		"verification problems (12):",
		"... and 2 more",
		"\nFAIL\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("failing report lacks %q:\n%s", want, out)
		}
	}
}

func TestHelpers(t *testing.T) {
	if median(nil) != 0 || median([]time.Duration{3, 1, 2}) != 2 {
		t.Error("median")
	}
	if round(12345*time.Millisecond) != 12300*time.Millisecond || round(1234567*time.Microsecond) != 1235*time.Millisecond {
		t.Error("round")
	}
}

func TestWorkerLog(t *testing.T) {
	log := filepath.Join(t.TempDir(), "worker-01.log")
	lines := strings.Join([]string{
		`{"time":"t","level":"INFO","msg":"worker sizing","cpus":2,"max_table_exports":4,"exports_limited_by":"cpu","max_streams":2,"memory_budget":"~22GiB","memory_estimate":"936MiB","staging_budget":"~12GiB","row_group":"32MiB"}`,
		`{"time":"t","level":"WARN","msg":"worker sizing","warning":"memory looks small"}`,
		`not json`,
		`{"time":"t","level":"WARN","msg":"activity retried"}`,
		`{"time":"t","level":"ERROR","msg":"export failed","table":"events"}`,
	}, "\n") + "\n"
	if err := os.WriteFile(log, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	want := "cpus=2 max_table_exports=4 exports_limited_by=cpu max_streams=2 memory_budget=~22GiB memory_estimate=936MiB staging_budget=~12GiB"
	if got := sizingLine([]string{log}); got != want {
		t.Errorf("sizing %q, want %q", got, want)
	}
	errs, warns := logProblems([]string{log, filepath.Join(t.TempDir(), "missing.log")})
	if len(errs) != 1 || !strings.Contains(errs[0], "export failed") || warns != 2 {
		t.Errorf("errors %q warnings %d", errs, warns)
	}
	if shorten("abcdef", 3) != "abc…" || shorten("ab", 3) != "ab" {
		t.Error("shorten")
	}
}
