package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"github.com/apache/arrow-go/v18/arrow"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// smallTable creates ds.<name> (id INTEGER, s STRING) if needed and appends rows [from, to).
func smallTable(ctx context.Context, t *testing.T, bq *bigquery.Client, name string, from, to int) {
	t.Helper()
	schema := bigquery.Schema{{Name: "id", Type: bigquery.IntegerFieldType}, {Name: "s", Type: bigquery.StringFieldType}}
	tbl := bq.Dataset(testDataset).Table(name)
	if from == 0 {
		if err := bq.Dataset(testDataset).Create(ctx, &bigquery.DatasetMetadata{}); err != nil {
			t.Fatal(err)
		}
		if err := tbl.Create(ctx, &bigquery.TableMetadata{Schema: schema}); err != nil {
			t.Fatal(err)
		}
	}
	var savers []*bigquery.ValuesSaver
	for i := from; i < to; i++ {
		savers = append(savers, &bigquery.ValuesSaver{Schema: schema, InsertID: fmt.Sprint(i),
			Row: []bigquery.Value{int64(i), fmt.Sprintf("row-%d-%s", i, strings.Repeat("x", 20))}})
	}
	if err := tbl.Inserter().Put(ctx, savers); err != nil {
		t.Fatal(err)
	}
}

// TestSessionEstimates checks that a snapshot session reports its row count and a byte size
// that grows with the rows, as BigQuery's sessions do; without snapshots the emulator's
// estimates (none) pass through.
func TestSessionEstimates(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	t.Run("snapshot", func(t *testing.T) {
		st := startChaosStack(t, Config{MaxStreams: 2, SnapshotSessions: true})
		bq := bqClient(ctx, t, st.HTTPAddr)
		rc := storageClient(ctx, t, st.GRPCAddr)
		smallTable(ctx, t, bq, "est", 0, 100)
		small, err := rc.CreateReadSession(ctx, tableSessionRequest("est", 2))
		if err != nil {
			t.Fatal(err)
		}
		smallTable(ctx, t, bq, "est", 100, 400)
		big, err := rc.CreateReadSession(ctx, tableSessionRequest("est", 2))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("100 rows: %d bytes; 400 rows: %d bytes", small.GetEstimatedTotalBytesScanned(), big.GetEstimatedTotalBytesScanned())
		if got := small.GetEstimatedRowCount(); got != 100 {
			t.Errorf("100-row session estimates %d rows", got)
		}
		if got := big.GetEstimatedRowCount(); got != 400 {
			t.Errorf("400-row session estimates %d rows", got)
		}
		if s, b := small.GetEstimatedTotalBytesScanned(), big.GetEstimatedTotalBytesScanned(); s <= 0 || b <= s {
			t.Errorf("byte estimates %d (100 rows) and %d (400 rows), want positive and growing", s, b)
		}
		// The estimate is the session's, across its streams.
		n := 0
		for _, s := range big.GetStreams() {
			rows, _, err := readAll(ctx, t, rc, big.GetArrowSchema().GetSerializedSchema(), s.GetName(), 0)
			if err != nil {
				t.Fatal(err)
			}
			n += len(rows)
		}
		if int64(n) != big.GetEstimatedRowCount() {
			t.Errorf("streams hold %d rows, the session estimated %d", n, big.GetEstimatedRowCount())
		}
	})
	t.Run("no snapshot", func(t *testing.T) {
		st := startChaosStack(t, Config{})
		smallTable(ctx, t, bqClient(ctx, t, st.HTTPAddr), "est", 0, 10)
		sess, err := storageClient(ctx, t, st.GRPCAddr).CreateReadSession(ctx, tableSessionRequest("est", 1))
		if err != nil {
			t.Fatal(err)
		}
		// The emulator (v0.8.1) estimates nothing, and the proxy invents nothing: whatever
		// comes through is the emulator's.
		t.Logf("estimates without snapshots: %d rows, %d bytes", sess.GetEstimatedRowCount(), sess.GetEstimatedTotalBytesScanned())
		if n := sess.GetEstimatedRowCount(); n != 0 && n != 10 {
			t.Errorf("session of a 10-row table estimates %d rows", n)
		}
	})
}

// TestReadThrottle reads a stream under --read-rows-per-second: it takes at least about
// rows/rate (only a lower bound: machines are noisy), and a client that gives up mid-read
// gets its answer at once.
func TestReadThrottle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const rows, rate = 100, 50
	if cfg, err := parseFlags([]string{"--read-rows-per-second", "50"}, io.Discard); err != nil || cfg.ReadRowsPerSecond != 50 {
		t.Errorf("--read-rows-per-second 50: %+v, %v", cfg.ReadRowsPerSecond, err)
	}
	if _, err := parseFlags([]string{"--read-rows-per-second", "-1"}, io.Discard); err == nil {
		t.Error("--read-rows-per-second -1 accepted")
	}
	st := startChaosStack(t, Config{ReadRowsPerSecond: rate, BatchRows: 10})
	smallTable(ctx, t, bqClient(ctx, t, st.HTTPAddr), "slow", 0, rows)
	rc := storageClient(ctx, t, st.GRPCAddr)
	sess, err := rc.CreateReadSession(ctx, tableSessionRequest("slow", 1))
	if err != nil {
		t.Fatal(err)
	}
	stream := sess.GetStreams()[0].GetName()
	start := time.Now()
	got, _, err := readAll(ctx, t, rc, sess.GetArrowSchema().GetSerializedSchema(), stream, 0)
	took := time.Since(start)
	if err != nil || len(got) != rows {
		t.Fatalf("read %d rows, %v; want %d", len(got), err, rows)
	}
	least := time.Duration(0.8 * float64(rows) / rate * float64(time.Second))
	t.Logf("read %d rows at %d rows/s in %v", rows, rate, took)
	if took < least {
		t.Errorf("read %d rows at %d rows/s in %v, want at least %v", rows, rate, took, least)
	}

	cctx, ccancel := context.WithCancel(ctx)
	defer ccancel()
	rs, err := rc.ReadRows(cctx, &storagepb.ReadRowsRequest{ReadStream: stream})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rs.Recv(); err != nil {
		t.Fatal(err)
	}
	ccancel()
	start = time.Now()
	for err == nil {
		_, err = rs.Recv()
	}
	if status.Code(err) != codes.Canceled {
		t.Errorf("cancelled read ends with %v, want Canceled", err)
	}
	t.Logf("cancelled read ended %v after the cancel", time.Since(start))
}

// pacedStream is a ReadRows server stream that records when each response was sent.
type pacedStream struct {
	grpc.ServerStream
	ctx  context.Context
	sent chan time.Time
}

func (s *pacedStream) Context() context.Context { return s.ctx }

func (s *pacedStream) Send(*storagepb.ReadRowsResponse) error {
	s.sent <- time.Now()
	return nil
}

// TestReadThrottleCancel checks the server side of a cancelled throttled read: the ReadRows
// handler, asleep between responses, returns Canceled as soon as its call is cancelled instead
// of pacing out the rest of the stream.
func TestReadThrottleCancel(t *testing.T) {
	rec := testRecord(t) // 10 rows
	schemaMsg, err := schemaMessage(rec.Schema())
	if err != nil {
		t.Fatal(err)
	}
	snap := &tableSnapshot{schemaMsg: schemaMsg, records: []arrow.RecordBatch{rec}, rows: rec.NumRows()}
	p := &readProxy{batchRows: 1, rowsPerSec: 1, log: newLogger(&testWriter{t}, "info"),
		streams: map[string]*proxyStream{"s": {upstream: "s", count: 1, session: &proxySession{name: "sess", snapshot: snap}}}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream := &pacedStream{ctx: ctx, sent: make(chan time.Time, 10)}
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- p.ReadRows(&storagepb.ReadRowsRequest{ReadStream: "s"}, stream) }()

	// At 1 row/s the first one-row response is due a second after the call began.
	first := <-stream.sent
	if d := first.Sub(start); d < 800*time.Millisecond {
		t.Errorf("first response after %v, want about 1s", d)
	}
	cancel()
	cancelled := time.Now()
	select {
	case err := <-done:
		if status.Code(err) != codes.Canceled {
			t.Errorf("ReadRows returned %v, want Canceled", err)
		}
		t.Logf("ReadRows returned %v after the cancel", time.Since(cancelled))
	case <-time.After(5 * time.Second): // the uncancelled stream has 9s to go
		t.Fatal("ReadRows kept pacing after its call was cancelled")
	}
	if n := len(stream.sent); n > 1 {
		t.Errorf("%d responses sent after the cancel", n)
	}
}
