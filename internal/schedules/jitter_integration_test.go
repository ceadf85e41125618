//go:build integration

package schedules

import (
	"context"
	"testing"
	"time"

	"github.com/dreamdata/destination-aws-s3/internal/config"
)

// TestBackfillWithJitter: the server matches backfilled times by their jittered time, so a
// range tight around a scheduled time (03:59-04:01) took nothing once sync wrote a jitter;
// Backfill widens the range by the jitter (BackfillEnd) and the dump starts.
func TestBackfillWithJitter(t *testing.T) {
	ctx := context.Background()
	c := startTemporal(t)
	a := config.Account{ID: "jit", Bucket: "b", RoleARN: "arn:aws:iam::123456789012:role/x", BigQuery: config.BigQuerySource{Project: "p", Dataset: "d"}}
	a.ApplyDefaults()
	if _, err := Reconcile(ctx, c, &config.File{Accounts: []config.Account{a}}, Options{Jitter: DefaultJitter}, SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	in, err := Describe(ctx, c, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("next runs with jitter %s: %v", in.Jitter, in.NextRuns)
	y := time.Now().UTC().AddDate(0, 0, -1)
	at := time.Date(y.Year(), y.Month(), y.Day(), 4, 0, 0, 0, time.UTC)
	res, err := Backfill(ctx, c, a.ID, at.Add(-time.Minute), at.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("backfill: %+v", res)
	if len(res.Started) == 0 {
		t.Error("the backfill started no dump")
	}
}
