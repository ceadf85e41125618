package activities

import (
	"context"
	"testing"
	"time"

	"github.com/dreamdata/destination-aws-s3/internal/config"
	"github.com/dreamdata/destination-aws-s3/internal/failure"
)

func accountIn(project string) config.Account {
	return config.Account{ID: "a-" + project, BigQuery: config.BigQuerySource{Project: project, Dataset: "d"}}
}

func TestProjectLimiterCapsEachBillingProject(t *testing.T) {
	ctx := context.Background()
	l := NewProjectLimiter(1, "")
	first, err := l.acquire(ctx, accountIn("p1"), "events", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// Another project is not held up.
	other, err := l.acquire(ctx, accountIn("p2"), "events", 10*time.Millisecond)
	if err != nil {
		t.Fatalf("another billing project waited: %v", err)
	}
	other()
	// The same project waits, and gives up with a transient, explained failure.
	_, err = l.acquire(ctx, accountIn("p1"), "contacts", 50*time.Millisecond)
	if failure.KindOf(err) != failure.KindBigQueryThrottled || failure.KindBigQueryThrottled.Class() != failure.Transient {
		t.Fatalf("over the cap: %v, want a transient %s", err, failure.KindBigQueryThrottled)
	}
	t.Log(err)
	// A released slot goes to a waiter at once.
	got := make(chan error, 1)
	go func() {
		release, err := l.acquire(ctx, accountIn("p1"), "revenue", 10*time.Second)
		if err == nil {
			release()
		}
		got <- err
	}()
	time.Sleep(20 * time.Millisecond)
	first()
	first() // releasing twice frees one slot only
	if err := <-got; err != nil {
		t.Fatalf("waiter after release: %v", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.used) != 0 {
		t.Errorf("slots left taken: %v", l.used)
	}
}

func TestProjectLimiterWithOneBillingProject(t *testing.T) {
	l := NewProjectLimiter(1, "platform-billing")
	release, err := l.acquire(context.Background(), accountIn("p1"), "events", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	// Every table is billed to the worker's project: one cap for all accounts.
	if _, err := l.acquire(context.Background(), accountIn("p2"), "events", 10*time.Millisecond); failure.KindOf(err) != failure.KindBigQueryThrottled {
		t.Errorf("second export on the one billing project: %v", err)
	}
	if NewProjectLimiter(0, "") != nil {
		t.Error("0 means no cap")
	}
	var none *ProjectLimiter
	if r, err := none.acquire(context.Background(), accountIn("p1"), "events", 0); err != nil || r == nil {
		t.Errorf("no limiter: %v", err)
	}
}
