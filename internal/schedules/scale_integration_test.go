//go:build integration

package schedules

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/dreamdata/destination-aws-s3/internal/config"
	"github.com/dreamdata/destination-aws-s3/internal/temporalconn/conntest"
)

// TestSyncScale syncs many accounts' schedules against a Temporal dev server of its own (no
// worker: schedules only start dumps at 04:00 and 15:00) and logs the time and rate of each
// phase. It measures, it does not assert a time: machines differ. The fleet size is
// SCHEDULES_SYNC_ACCOUNTS (default 2000); for the 10,000-account figure:
//
//	SCHEDULES_SYNC_ACCOUNTS=10000 go test -tags integration -count=1 -timeout 30m -run TestSyncScale -v ./internal/schedules/
func TestSyncScale(t *testing.T) {
	n := 2000
	if v := os.Getenv("SCHEDULES_SYNC_ACCOUNTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 2 {
			t.Fatalf("SCHEDULES_SYNC_ACCOUNTS=%q is not a count of at least 2", v)
		}
	}
	ctx := context.Background()
	c := startTemporal(t)

	f := &config.File{}
	for i := range n {
		a := config.Account{ID: fmt.Sprintf("scale-%05d", i), Bucket: "scale-bucket", RoleARN: "arn:aws:iam::123456789012:role/dreamdata",
			Prefix: fmt.Sprintf("exports/%d", i), BigQuery: config.BigQuerySource{Project: "p", Dataset: "d"}}
		if i%3 == 0 {
			a.Plan = config.PlanFree
		}
		a.ApplyDefaults()
		f.Accounts = append(f.Accounts, a)
	}
	o := Options{Jitter: DefaultJitter, Spread: 30 * time.Minute}

	phase := func(name string, f *config.File, o Options, s SyncOptions) Report {
		t.Helper()
		var last time.Time
		s.Progress = func(done, total int) {
			if time.Since(last) > 5*time.Second || done == total {
				last = time.Now()
				t.Logf("  %s: %d/%d", name, done, total)
			}
		}
		start := time.Now()
		rep, err := Reconcile(ctx, c, f, o, s)
		el := time.Since(start)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Logf("%s: %d schedules in %s (%.0f/s): created %d, updated %d, unchanged %d, deleted %d, kept %d",
			name, len(rep.Results), el.Round(time.Millisecond), float64(len(rep.Results))/el.Seconds(),
			rep.Count(Created), rep.Count(Updated), rep.Count(Unchanged), rep.Count(Deleted), rep.Count(Kept))
		return rep
	}

	if rep := phase("dry run, empty server", f, o, SyncOptions{DryRun: true}); rep.Count(Created) != n {
		t.Fatalf("dry run plans %d creations, want %d", rep.Count(Created), n)
	}
	if ids, _ := ListIDs(ctx, c); len(ids) != 0 {
		t.Fatalf("a dry run created %d schedules", len(ids))
	}
	if rep := phase("first sync (create)", f, o, SyncOptions{}); rep.Count(Created) != n {
		t.Fatalf("created %d, want %d", rep.Count(Created), n)
	}
	// Visibility catches up asynchronously: the next phases list the schedules.
	waitListed(t, c, n)
	if rep := phase("second sync (unchanged)", f, o, SyncOptions{}); rep.Count(Unchanged) != n {
		t.Fatalf("unchanged %d, want %d", rep.Count(Unchanged), n)
	}
	o2 := o
	o2.TaskQueue = "scale-other-queue"
	if rep := phase("sync with another task queue (update)", f, o2, SyncOptions{}); rep.Count(Updated) != n {
		t.Fatalf("updated %d, want %d", rep.Count(Updated), n)
	}

	// Half the accounts leave the file: kept without --prune, planned and then deleted with it.
	half := &config.File{Accounts: f.Accounts[:n/2]}
	if rep := phase("half the file, no prune", half, o2, SyncOptions{}); rep.Count(Kept) != n-n/2 || rep.Count(Deleted) != 0 {
		t.Fatalf("kept %d deleted %d, want %d kept", rep.Count(Kept), rep.Count(Deleted), n-n/2)
	}
	if rep := phase("half the file, prune, dry run", half, o2, SyncOptions{Prune: true, DryRun: true}); rep.Count(Deleted) != n-n/2 {
		t.Fatalf("dry run plans %d deletions, want %d", rep.Count(Deleted), n-n/2)
	}
	if ids, _ := ListIDs(ctx, c); len(ids) != n {
		t.Fatalf("after the dry run %d schedules, want %d", len(ids), n)
	}
	if rep := phase("half the file, prune", half, o2, SyncOptions{Prune: true}); rep.Count(Deleted) != n-n/2 {
		t.Fatalf("deleted %d, want %d", rep.Count(Deleted), n-n/2)
	}
}

func waitListed(t *testing.T, c client.Client, n int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ids, err := ListIDs(context.Background(), c)
		if err == nil && len(ids) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("visibility lists %d schedules, want %d (%v)", len(ids), n, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// startTemporal runs a Temporal dev server (only Temporal: the devstack's binary) for the test.
func startTemporal(t *testing.T) client.Client {
	t.Helper()
	addr := conntest.DevServer(t, "--search-attribute", "AccountId=Keyword")
	c, err := client.Dial(client.Options{HostPort: addr, Logger: quiet{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

type quiet struct{}

func (quiet) Debug(string, ...interface{}) {}
func (quiet) Info(string, ...interface{})  {}
func (quiet) Warn(string, ...interface{})  {}
func (quiet) Error(string, ...interface{}) {}
