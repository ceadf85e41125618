package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/interceptor"

	"github.com/dreamdata/destination-aws-s3/internal/export"
)

// cleanEnv unsets the worker's numeric variables for the test, so the runner's own
// environment cannot change its outcome.
func cleanEnv(t *testing.T) {
	for _, v := range []string{"SHARD_TARGET_BYTES", "ROW_GROUP_BYTES", "MAX_STREAMS", "MAX_TABLE_EXPORTS", "MAX_WORKFLOW_TASKS",
		"MEMORY_BUDGET_BYTES", "STAGING_BUDGET_BYTES", "S3_FORCE_PATH_STYLE", "S3_CHECKSUM_WHEN_REQUIRED", "WORKER_STOP_TIMEOUT",
		"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE"} {
		t.Setenv(v, "")
	}
}

func TestMalformedEnvironmentStopsTheWorker(t *testing.T) {
	for v, bad := range map[string]string{
		"SHARD_TARGET_BYTES":   "256MB",
		"ROW_GROUP_BYTES":      "32 megabytes",
		"MAX_STREAMS":          "two",
		"MAX_TABLE_EXPORTS":    "4.0",
		"MEMORY_BUDGET_BYTES":  "2G",
		"STAGING_BUDGET_BYTES": "-1GiB",
		"S3_FORCE_PATH_STYLE":  "yes",
		"WORKER_STOP_TIMEOUT":  "30",
	} {
		t.Run(v, func(t *testing.T) {
			cleanEnv(t)
			t.Setenv(v, bad)
			_, err := parseSettings(nil, io.Discard)
			if err == nil || !strings.Contains(err.Error(), v) || !strings.Contains(err.Error(), bad) {
				t.Errorf("%s=%s: %v; want an error naming both", v, bad, err)
			}
		})
	}
}

func TestByteSettingsTakeBinarySuffixes(t *testing.T) {
	cleanEnv(t)
	t.Setenv("SHARD_TARGET_BYTES", "128MiB")
	t.Setenv("STAGING_BUDGET_BYTES", "40GiB")
	ws, err := parseSettings([]string{"--row-group-bytes", "16MiB", "--memory-budget=3GiB"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if ws.shardTarget != 128<<20 || ws.stagingBudget != 40<<30 || ws.rowGroup != 16<<20 || ws.memoryBudget != 3<<30 {
		t.Errorf("got shard %d, staging %d, row group %d, memory %d", ws.shardTarget, ws.stagingBudget, ws.rowGroup, ws.memoryBudget)
	}
	if ws.maxStreams != export.DefaultMaxStreams || ws.maxTableExports != 0 {
		t.Errorf("defaults: %d streams, %d exports", ws.maxStreams, ws.maxTableExports)
	}
	if _, err := parseSettings([]string{"--shard-target-bytes", "256MB"}, io.Discard); err == nil {
		t.Error("a decimal suffix on the command line was accepted")
	}
	if _, err := parseSettings([]string{"-h"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
}

func TestSizingSetsTheWorkerSlots(t *testing.T) {
	cleanEnv(t)
	t.Setenv("MAX_TABLE_EXPORTS", "3")
	t.Setenv("MAX_WORKFLOW_TASKS", "6")
	ws, err := parseSettings([]string{"--staging-budget-bytes", "12GiB", "--memory-budget", "2GiB"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	size, err := sizeWorker(ws, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	opts := workerOptions(size)
	if opts.MaxConcurrentActivityExecutionSize != 3 || opts.MaxConcurrentWorkflowTaskExecutionSize != 6 {
		t.Errorf("worker options %+v", opts)
	}
	// 12 GiB over 3 exports is 4 GiB each: 1152 MiB of shards in flight, the rest buffer.
	if size.BufferBytes != 4<<30-1152<<20 || size.In.MemorySource != "--memory-budget" {
		t.Errorf("buffer %d, memory from %s", size.BufferBytes, size.In.MemorySource)
	}

	// Derived, the slots are bounded and never the SDK's 1,000.
	cleanEnv(t)
	ws, err = parseSettings([]string{"--memory-budget", "1GiB", "--staging-budget-bytes", "100GiB"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if size, err = sizeWorker(ws, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if n := workerOptions(size).MaxConcurrentActivityExecutionSize; n < 1 || n > 4 {
		t.Errorf("a 1 GiB worker takes %d exports at once, want 1 to 4 (768 MiB over the floor at 170 MiB each)", n)
	}
}

func TestTooSmallStagingBudgetRefusesToStart(t *testing.T) {
	cleanEnv(t)
	ws, err := parseSettings([]string{"--max-table-exports", "4", "--staging-budget-bytes", "2GiB", "--shard-target-bytes", "256MiB"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	_, err = sizeWorker(ws, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "4 × 4 × 288MiB = 4608MiB") {
		t.Fatalf("sizeWorker = %v, want a refusal with the arithmetic", err)
	}
}

func TestStopTimeoutVersionAndTemporalOverrides(t *testing.T) {
	cleanEnv(t)
	ws, err := parseSettings(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if ws.stopTimeout != DefaultStopTimeout || ws.temporalOverrides.Address != "" || ws.temporalOverrides.Namespace != "" {
		t.Errorf("defaults: stop %s, overrides %+v", ws.stopTimeout, ws.temporalOverrides)
	}

	// TEMPORAL_ADDRESS is the SDK's to read (with the profile and TLS around it): only flags
	// given on the command line override it.
	t.Setenv("TEMPORAL_ADDRESS", "temporal.internal:7233")
	t.Setenv("WORKER_STOP_TIMEOUT", "2m")
	ws, err = parseSettings([]string{"--temporal-namespace", "exports"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if ws.stopTimeout != 2*time.Minute || ws.temporalOverrides.Address != "" || ws.temporalOverrides.Namespace != "exports" {
		t.Errorf("env: stop %s, overrides %+v", ws.stopTimeout, ws.temporalOverrides)
	}
	ws, err = parseSettings([]string{"--temporal-address=127.0.0.1:7999", "--worker-stop-timeout=5s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if ws.stopTimeout != 5*time.Second || ws.temporalOverrides.Address != "127.0.0.1:7999" {
		t.Errorf("flags: stop %s, overrides %+v", ws.stopTimeout, ws.temporalOverrides)
	}
	if _, err := parseSettings([]string{"--worker-stop-timeout=-1s"}, io.Discard); err == nil {
		t.Error("a negative stop timeout was accepted")
	}

	// --version answers even when the environment is broken.
	t.Setenv("MAX_STREAMS", "two")
	ws, err = parseSettings([]string{"--version"}, io.Discard)
	if err != nil || !ws.showVersion {
		t.Errorf("--version: %v", err)
	}
}

func TestInflightActivitiesAreCountedForTheDrain(t *testing.T) {
	var inflight inflightActivities
	if !inflight.waitIdle(time.Millisecond) || inflight.count() != 0 {
		t.Fatal("idle at start")
	}
	release := make(chan struct{})
	next := &blockingActivity{release: release, started: make(chan struct{}, 2)}
	a := inflight.InterceptActivity(context.Background(), next)
	done := make(chan struct{})
	for range 2 {
		go func() {
			_, _ = a.ExecuteActivity(context.Background(), &interceptor.ExecuteActivityInput{})
			done <- struct{}{}
		}()
	}
	<-next.started
	<-next.started
	if inflight.count() != 2 || inflight.waitIdle(10*time.Millisecond) {
		t.Fatalf("two running: count %d", inflight.count())
	}
	close(release)
	if !inflight.waitIdle(5 * time.Second) {
		t.Fatal("not idle after both returned")
	}
	<-done
	<-done
}

type blockingActivity struct {
	interceptor.ActivityInboundInterceptorBase
	release <-chan struct{}
	started chan struct{}
}

func (b *blockingActivity) ExecuteActivity(context.Context, *interceptor.ExecuteActivityInput) (interface{}, error) {
	b.started <- struct{}{}
	<-b.release
	return nil, nil
}
