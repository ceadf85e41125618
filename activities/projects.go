package activities

import (
	"context"
	"sync"
	"time"

	"github.com/dreamdata/destination-aws-s3/internal/config"
	"github.com/dreamdata/destination-aws-s3/internal/failure"
)

// projectWait is how long a table export waits for its billing project's slot before it
// hands its activity slot back: the export fails as BigQueryThrottled and Temporal retries it
// with backoff, so tables of other projects run meanwhile.
const projectWait = 30 * time.Second

// ProjectLimiter caps the table exports one worker runs at once per BigQuery billing project:
// the Storage Read API's quotas (read sessions created, concurrent streams) are per project.
// The fleet's cap is the workers times this.
type ProjectLimiter struct {
	max int
	// billing is the worker's billing project; empty bills each table's own project.
	billing string

	mu   sync.Mutex
	used map[string]int
	free chan struct{} // closed and replaced whenever a slot is released
}

// NewProjectLimiter allows max exports per billing project; max ≤ 0 means no cap (nil).
func NewProjectLimiter(max int, billingProject string) *ProjectLimiter {
	if max <= 0 {
		return nil
	}
	return &ProjectLimiter{max: max, billing: billingProject, used: map[string]int{}, free: make(chan struct{})}
}

// project is the billing project of an account's read sessions.
func (l *ProjectLimiter) project(acc config.Account) string {
	if l.billing != "" {
		return l.billing
	}
	return acc.BigQuery.Project
}

// acquire takes a slot of the account's billing project, waiting at most wait. It returns
// the release, or a BigQueryThrottled failure.
func (l *ProjectLimiter) acquire(ctx context.Context, acc config.Account, table string, wait time.Duration) (release func(), err error) {
	if l == nil {
		return func() {}, nil
	}
	p := l.project(acc)
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	for {
		l.mu.Lock()
		if l.used[p] < l.max {
			l.used[p]++
			l.mu.Unlock()
			var once sync.Once
			return func() { once.Do(func() { l.release(p) }) }, nil
		}
		free := l.free
		l.mu.Unlock()
		select {
		case <-free:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timeout.C:
			return nil, failure.New(failure.KindBigQueryThrottled, nil,
				"table %s waits: billing project %s already has %d table exports on this worker (MAX_EXPORTS_PER_BILLING_PROJECT); it is retried with backoff",
				table, p, l.max)
		}
	}
}

func (l *ProjectLimiter) release(p string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.used[p]--; l.used[p] <= 0 {
		delete(l.used, p)
	}
	close(l.free)
	l.free = make(chan struct{})
}
