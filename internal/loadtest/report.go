package loadtest

import (
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/dreamdata/destination-aws-s3/internal/humanize"
)

// Report is the outcome of one load test.
type Report struct {
	Accounts     int
	RowsPerTable int // base rows per table (see TableRows)
	Workers      int
	// WorkerSizing is the worker's own "worker sizing" log line, shortened.
	WorkerSizing string

	Dumps    int // started
	Complete int // completed with a receipt
	Failures []string

	TablesExpected int // accounts × tables
	TablesExported int // tables in the complete dumps' results
	Sessions       int // CreateReadSession calls the Storage Read server answered
	ReadRows       int // ReadRows calls
	// Reopened lists the tables with more than one read session ("dataset.table ×n").
	Reopened []string

	Verified       int // dumps checked against their receipt and source
	VerifyProblems []string
	Rows, Bytes    int64
	Objects        int

	WorkerErrors   []string // ERROR lines of the worker's log
	WorkerWarnings int      // WARN lines of the worker's log (retries, say): reported, not failed
	WorkerExited   bool     // the worker process ended before the test did

	PeakRSS        int64 // VmHWM at the end: the kernel's own peak
	PeakRSSSampled int64 // largest VmRSS sampled
	PeakStaging    int64 // largest staging directory sampled

	StartSpread       time.Duration // from the first start request to the last answered
	TimeToLastReceipt time.Duration // from the first start request to the last root receipt written
	MedianReceipt     time.Duration // the same, to the median dump's receipt
	FirstReceipt      time.Duration // the same, to the first dump's receipt
	Verify            time.Duration // the verification after the run
}

// Errors counts everything that went wrong: failed or missing dumps, verification problems,
// worker error lines and an early worker exit.
func (r *Report) Errors() int {
	n := max(r.Dumps-r.Complete, len(r.Failures)) + len(r.VerifyProblems) + len(r.WorkerErrors)
	if r.WorkerExited {
		n++
	}
	return n
}

// OK is whether the load test passed: every dump complete and exact, no error, and exactly one
// read session per exported table.
func (r *Report) OK() bool {
	return r.Dumps > 0 && r.Complete == r.Dumps && r.Verified == r.Complete && r.Errors() == 0 &&
		r.TablesExported == r.TablesExpected && r.Sessions == r.TablesExported
}

// DumpsPerMinute is the complete dumps over the time to the last receipt.
func (r *Report) DumpsPerMinute() float64 {
	if r.TimeToLastReceipt <= 0 {
		return 0
	}
	return float64(r.Complete) / r.TimeToLastReceipt.Minutes()
}

// Format prints the report.
func (r *Report) Format(w io.Writer) {
	verdict := "PASS"
	if !r.OK() {
		verdict = "FAIL"
	}
	sessions := "equal"
	if r.Sessions != r.TablesExported {
		sessions = fmt.Sprintf("DIFFERENT by %+d", r.Sessions-r.TablesExported)
	}
	fmt.Fprintf(w, "\nload test: %d accounts triggered at once, %d worker process (default settings), ~%d rows per table\n", r.Accounts, r.Workers, r.RowsPerTable)
	if r.WorkerSizing != "" {
		fmt.Fprintf(w, "  worker sizing           %s\n", r.WorkerSizing)
	}
	fmt.Fprintf(w, "  dumps complete          %d/%d (verified exact: %d)\n", r.Complete, r.Dumps, r.Verified)
	fmt.Fprintf(w, "  errors                  %d (failed dumps %d, verification problems %d, worker error lines %d%s)\n",
		r.Errors(), max(r.Dumps-r.Complete, len(r.Failures)), len(r.VerifyProblems), len(r.WorkerErrors), map[bool]string{true: ", worker exited early", false: ""}[r.WorkerExited])
	fmt.Fprintf(w, "  read sessions opened    %d vs tables exported %d (%d expected): %s; %d ReadRows calls\n",
		r.Sessions, r.TablesExported, r.TablesExpected, sessions, r.ReadRows)
	fmt.Fprintf(w, "  worker log              %d error lines, %d warnings\n", len(r.WorkerErrors), r.WorkerWarnings)
	fmt.Fprintf(w, "  rows / objects / bytes  %s / %s / %s\n", humanize.Count(r.Rows), humanize.Count(int64(r.Objects)), mib(r.Bytes))
	fmt.Fprintf(w, "  worker peak RSS         %s (VmHWM; largest VmRSS sampled %s)\n", mib(r.PeakRSS), mib(r.PeakRSSSampled))
	fmt.Fprintf(w, "  peak staging disk       %s\n", mib(r.PeakStaging))
	fmt.Fprintf(w, "  starts issued in        %s\n", round(r.StartSpread))
	fmt.Fprintf(w, "  time to last receipt    %s (first %s, median %s)\n", round(r.TimeToLastReceipt), round(r.FirstReceipt), round(r.MedianReceipt))
	fmt.Fprintf(w, "  dumps per minute        %.1f\n", r.DumpsPerMinute())
	fmt.Fprintf(w, "  verification took       %s\n", round(r.Verify))
	list := func(what string, items []string) {
		if len(items) == 0 {
			return
		}
		fmt.Fprintf(w, "  %s (%d):\n", what, len(items))
		for i, s := range items {
			if i == 10 {
				fmt.Fprintf(w, "    ... and %d more\n", len(items)-10)
				break
			}
			fmt.Fprintf(w, "    %s\n", s)
		}
	}
	list("failed dumps", r.Failures)
	list("verification problems", r.VerifyProblems)
	list("tables read more than once", r.Reopened)
	list("worker error lines", r.WorkerErrors)
	fmt.Fprintf(w, "%s\n", verdict)
}

// reopened lists the tables with more than one session, sorted.
func reopened(perTable map[string]int) []string {
	var out []string
	for t, n := range perTable {
		if n > 1 {
			out = append(out, fmt.Sprintf("%s ×%d", t, n))
		}
	}
	sort.Strings(out)
	return out
}

// median of durations (0 for none).
func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func round(d time.Duration) time.Duration {
	if d >= 10*time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

func mib(b int64) string {
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}
