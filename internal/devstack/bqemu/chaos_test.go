package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	gax "github.com/googleapis/gax-go/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func startChaosStack(t *testing.T, cfg Config) *Stack {
	t.Helper()
	cfg.Project = testProject
	cfg.LogLevel = "error"
	cfg.Logger = newLogger(&testWriter{t}, "info")
	if cfg.BatchRows == 0 {
		cfg.BatchRows = testBatchRows
	}
	st, err := Start(cfg)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return st
}

// TestSeveralStreams reads a table through a session of several streams: the streams are
// disjoint, their union is the table, each deals rows in chunks, and offsets count rows within
// the stream.
func TestSeveralStreams(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const chunk = 100
	st := startChaosStack(t, Config{MaxStreams: 3, StreamChunkRows: chunk, BatchRows: 64})
	loadTable(ctx, t, bqClient(ctx, t, st.HTTPAddr))
	rc := storageClient(ctx, t, st.GRPCAddr)

	for _, tc := range []struct{ requested, want int32 }{{0, 3}, {1, 1}, {2, 2}, {3, 3}, {10, 3}} {
		sess, err := rc.CreateReadSession(ctx, sessionRequest(tc.requested))
		if err != nil {
			t.Fatal(err)
		}
		if got := len(sess.GetStreams()); got != int(tc.want) {
			t.Errorf("max_stream_count %d: %d streams, want %d", tc.requested, got, tc.want)
		}
	}

	sess, err := rc.CreateReadSession(ctx, sessionRequest(3))
	if err != nil {
		t.Fatal(err)
	}
	schemaMsg := sess.GetArrowSchema().GetSerializedSchema()
	seen := map[int64]int{}
	for k, s := range sess.GetStreams() {
		rows, batches, err := readAll(ctx, t, rc, schemaMsg, s.GetName(), 0)
		if err != nil {
			t.Fatalf("stream %d: %v", k, err)
		}
		for i, b := range batches {
			if b.rows > 64 || b.rows == 0 {
				t.Errorf("stream %d batch %d has %d rows", k, i, b.rows)
			}
		}
		var ids []int64
		for _, r := range rows {
			id := r[0].(int64)
			ids = append(ids, id)
			seen[id]++
			if c := int(id/chunk) % 3; c != k {
				t.Errorf("stream %d holds id %d of chunk owned by stream %d", k, id, c)
			}
		}
		if !sort.SliceIsSorted(ids, func(i, j int) bool { return ids[i] < ids[j] }) {
			t.Errorf("stream %d rows are out of table order", k)
		}
		// An offset resumes within the stream.
		const off = 150
		tail, _, err := readAll(ctx, t, rc, schemaMsg, s.GetName(), off)
		if err != nil {
			t.Fatalf("stream %d offset %d: %v", k, off, err)
		}
		if len(tail) != len(rows)-off || (len(tail) > 0 && tail[0][0] != rows[off][0]) {
			t.Errorf("stream %d offset %d: %d rows starting at %v, want %d starting at %v", k, off, len(tail), tail[0][0], len(rows)-off, rows[off][0])
		}
		if _, _, err := readAll(ctx, t, rc, schemaMsg, s.GetName(), int64(len(rows)+1)); status.Code(err) != codes.OutOfRange {
			t.Errorf("stream %d offset past its end: %v, want OutOfRange", k, err)
		}
	}
	if len(seen) != testRows {
		t.Errorf("streams hold %d distinct rows, want %d", len(seen), testRows)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("id %d is in %d streams", id, n)
		}
	}
}

// TestFaults drives every fault kind through the admin endpoint and checks the status codes
// clients see, the session expiry, and the counts.
func TestFaults(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	st := startChaosStack(t, Config{MaxStreams: 2, BatchRows: 100, AdminAddr: "127.0.0.1:0", FaultSeed: 7})
	loadTable(ctx, t, bqClient(ctx, t, st.HTTPAddr))
	rc := storageClient(ctx, t, st.GRPCAddr)
	admin := func(cfg *FaultConfig) faultState {
		t.Helper()
		method, body := http.MethodGet, []byte(nil)
		if cfg != nil {
			method = http.MethodPut
			body, _ = json.Marshal(cfg)
		}
		req, _ := http.NewRequestWithContext(ctx, method, "http://"+st.AdminAddr+"/faults", bytes.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var s faultState
		if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	sess, err := rc.CreateReadSession(ctx, sessionRequest(2))
	if err != nil {
		t.Fatal(err)
	}
	schemaMsg := sess.GetArrowSchema().GetSerializedSchema()
	stream := sess.GetStreams()[0].GetName()

	admin(&FaultConfig{Rate: 1, Kinds: []string{FaultUnavailable}})
	if _, err := rc.CreateReadSession(ctx, sessionRequest(2), gaxNoRetry()...); status.Code(err) != codes.Unavailable {
		t.Errorf("CreateReadSession with unavailable: %v", err)
	}
	admin(&FaultConfig{Rate: 1, Kinds: []string{FaultExhausted}})
	if _, _, err := readAll(ctx, t, rc, schemaMsg, stream, 0); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("ReadRows with exhausted: %v", err)
	}
	admin(&FaultConfig{Rate: 1, Kinds: []string{FaultCut}})
	rows, _, err := readAll(ctx, t, rc, schemaMsg, stream, 0)
	if status.Code(err) != codes.Unavailable || len(rows) == 0 || len(rows) > 300 {
		t.Errorf("ReadRows with cut: %d rows, %v; want 1-3 responses then Unavailable", len(rows), err)
	}
	admin(&FaultConfig{Rate: 1, Kinds: []string{FaultStall}})
	sctx, scancel := context.WithTimeout(ctx, 2*time.Second)
	rows, _, err = readAll(sctx, t, rc, schemaMsg, stream, 0)
	scancel()
	if status.Code(err) != codes.DeadlineExceeded || len(rows) == 0 {
		t.Errorf("ReadRows with stall: %d rows, %v; want some rows, then nothing until the client gives up", len(rows), err)
	}
	admin(&FaultConfig{Rate: 1, Kinds: []string{FaultExpire}})
	if _, _, err := readAll(ctx, t, rc, schemaMsg, stream, 0); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("ReadRows with expire: %v", err)
	}
	admin(&FaultConfig{Rate: 0})
	// The session stays expired, for every stream of it; a new session reads.
	for _, s := range sess.GetStreams() {
		if _, _, err := readAll(ctx, t, rc, schemaMsg, s.GetName(), 0); status.Code(err) != codes.FailedPrecondition {
			t.Errorf("ReadRows on the expired session: %v", err)
		} else {
			t.Logf("expired session answers: %v", err)
		}
	}
	fresh, err := rc.CreateReadSession(ctx, sessionRequest(1))
	if err != nil {
		t.Fatal(err)
	}
	if rows, _, err := readAll(ctx, t, rc, schemaMsg, fresh.GetStreams()[0].GetName(), 0); err != nil || len(rows) != testRows {
		t.Errorf("new session: %d rows, %v", len(rows), err)
	}
	got := admin(nil).Counts
	want := map[string]int{FaultUnavailable: 1, FaultExhausted: 1, FaultCut: 1, FaultExpire: 1, FaultStall: 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("counts %v, want %v", got, want)
	}
}

// TestSessionTTL checks that a session expires after the configured TTL, and says so in its
// ExpireTime.
func TestSessionTTL(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	st := startChaosStack(t, Config{SessionTTL: 2 * time.Second})
	loadTable(ctx, t, bqClient(ctx, t, st.HTTPAddr))
	rc := storageClient(ctx, t, st.GRPCAddr)
	sess, err := rc.CreateReadSession(ctx, sessionRequest(1))
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(sess.GetExpireTime().AsTime()); d <= 0 || d > 2*time.Second {
		t.Errorf("expire time in %v, want within 2s", d)
	}
	schemaMsg := sess.GetArrowSchema().GetSerializedSchema()
	if _, _, err := readAll(ctx, t, rc, schemaMsg, sess.GetStreams()[0].GetName(), 0); err != nil {
		t.Fatalf("read before expiry: %v", err)
	}
	time.Sleep(time.Until(sess.GetExpireTime().AsTime()) + 100*time.Millisecond)
	if _, _, err := readAll(ctx, t, rc, schemaMsg, sess.GetStreams()[0].GetName(), 0); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("read after expiry: %v, want FailedPrecondition", err)
	}
}

// TestSameTableNameInTwoDatasets reads tables of the same name in two datasets: each session
// reads its own dataset's table (the emulator alone reads the first such table for both; see
// qualifiedReadOptions).
func TestSameTableNameInTwoDatasets(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	st := startChaosStack(t, Config{})
	bq := bqClient(ctx, t, st.HTTPAddr)
	rc := storageClient(ctx, t, st.GRPCAddr)
	schema := bigquery.Schema{{Name: "id", Type: bigquery.IntegerFieldType}}
	for d, n := range map[string]int{"one": 3, "two": 5} {
		if err := bq.Dataset(d).Create(ctx, &bigquery.DatasetMetadata{}); err != nil {
			t.Fatal(err)
		}
		tbl := bq.Dataset(d).Table("same")
		if err := tbl.Create(ctx, &bigquery.TableMetadata{Schema: schema}); err != nil {
			t.Fatal(err)
		}
		var savers []*bigquery.ValuesSaver
		for i := range n {
			savers = append(savers, &bigquery.ValuesSaver{Schema: schema, InsertID: fmt.Sprint(i), Row: []bigquery.Value{int64(i)}})
		}
		if err := tbl.Inserter().Put(ctx, savers); err != nil {
			t.Fatal(err)
		}
	}
	for d, n := range map[string]int{"one": 3, "two": 5} {
		req := &storagepb.CreateReadSessionRequest{Parent: "projects/" + testProject, ReadSession: &storagepb.ReadSession{
			Table: fmt.Sprintf("projects/%s/datasets/%s/tables/same", testProject, d), DataFormat: storagepb.DataFormat_ARROW}}
		sess, err := rc.CreateReadSession(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		rows, _, err := readAll(ctx, t, rc, sess.GetArrowSchema().GetSerializedSchema(), sess.GetStreams()[0].GetName(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != n {
			t.Errorf("dataset %s: %d rows, want %d", d, len(rows), n)
		}
		q := queryRows(ctx, t, bq, fmt.Sprintf("SELECT COUNT(*) FROM `%s.same`", d))
		t.Logf("dataset %s: storage read %d rows, query counts %v, want %d", d, len(rows), q, n)
	}
}

// gaxNoRetry turns off the client library's own retries, so a test sees the first answer.
func gaxNoRetry() []gax.CallOption {
	return []gax.CallOption{gax.WithRetry(func() gax.Retryer { return nil })}
}

// TestSnapshotSessions changes a table between two sessions: each reads the rows of its own
// creation time, across all its streams; a session pushed out of the snapshot budget expires.
func TestSnapshotSessions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, tc := range []struct {
		name  string
		limit int64
	}{{"within budget", 0}, {"over budget", 1}} {
		t.Run(tc.name, func(t *testing.T) {
			st := startChaosStack(t, Config{MaxStreams: 2, SnapshotSessions: true, SnapshotBytes: tc.limit})
			bq := bqClient(ctx, t, st.HTTPAddr)
			loadTable(ctx, t, bq)
			rc := storageClient(ctx, t, st.GRPCAddr)
			count := func(sess *storagepb.ReadSession) (int, error) {
				n := 0
				for _, s := range sess.GetStreams() {
					rows, _, err := readAll(ctx, t, rc, sess.GetArrowSchema().GetSerializedSchema(), s.GetName(), 0)
					if err != nil {
						return n, err
					}
					n += len(rows)
				}
				return n, nil
			}
			before, err := rc.CreateReadSession(ctx, sessionRequest(2))
			if err != nil {
				t.Fatal(err)
			}
			queryRows(ctx, t, bq, "DELETE FROM ds.all_types WHERE id >= 2000")
			after, err := rc.CreateReadSession(ctx, sessionRequest(2))
			if err != nil {
				t.Fatal(err)
			}
			if n, err := count(after); err != nil || n != 2000 {
				t.Errorf("session after the change: %d rows, %v; want 2000", n, err)
			}
			n, err := count(before)
			switch {
			case tc.limit == 0 && (err != nil || n != testRows):
				t.Errorf("session before the change: %d rows, %v; want its snapshot's %d", n, err, testRows)
			case tc.limit == 1 && status.Code(err) != codes.FailedPrecondition:
				t.Errorf("session pushed out of the budget: %d rows, %v; want FailedPrecondition (expired)", n, err)
			}
		})
	}
}
