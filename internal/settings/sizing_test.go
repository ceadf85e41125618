package settings

import (
	"math"
	"strings"
	"testing"
)

const mib, gib = 1 << 20, 1 << 30

// defaults is the production shape of one export: 2 streams, 32 MiB row groups, 256 MiB
// shards, one ready shard, a 2 GiB buffer.
func defaults(cpus int) SizingInput {
	return SizingInput{CPUs: cpus, Streams: 2, RowGroupBytes: 32 * mib, ShardTargetBytes: 256 * mib, ReadyShards: 1, DefaultBufferBytes: 2 * gib, MemorySource: "test"}
}

func TestExportEstimates(t *testing.T) {
	// 2 streams × (2 × (32 MiB row group + 8 MiB batch) + 1 MiB write buffer) + 8 MiB upload.
	if got := ExportMemory(2, 32*mib); got != 170*mib {
		t.Errorf("ExportMemory = %s, want 170MiB", FormatBytes(got))
	}
	// (2 streams + 1 ready + 1 uploading) × (256 MiB + 32 MiB).
	if got := ExportStaging(2, 1, 256*mib, 32*mib); got != 1152*mib {
		t.Errorf("ExportStaging = %s, want 1152MiB", FormatBytes(got))
	}
}

func TestSize(t *testing.T) {
	for _, tc := range []struct {
		name      string
		in        func(*SizingInput)
		exports   int
		limitedBy string
		budget    int64
		buffer    int64
		tasks     int
		warning   string
	}{
		{"cores bound a roomy worker", func(in *SizingInput) { in.MemoryBudget = 4 * gib },
			4, "cpu", 4 * (1152*mib + 2*gib), 2 * gib, 4, ""},
		{"memory bounds a small container", func(in *SizingInput) { in.CPUs, in.MemoryBudget = 8, 1*gib },
			4, "memory", 4 * (1152*mib + 2*gib), 2 * gib, 16, ""}, // (1024 - 256) / 170 = 4
		{"too little memory still runs one export", func(in *SizingInput) { in.MemoryBudget = 300 * mib },
			1, "memory", 1152*mib + 2*gib, 2 * gib, 4, "below one export's estimate"},
		{"free disk bounds the exports", func(in *SizingInput) { in.MemoryBudget, in.StagingFree = 4*gib, 3*gib },
			2, "staging disk", 2304 * mib, 1, 4, ""}, // 75% of 3 GiB holds two exports' shards in flight and no buffer
		{"an explicit budget bounds derived exports", func(in *SizingInput) { in.CPUs, in.StagingBudget = 8, 10*gib },
			8, "staging disk", 10 * gib, 128 * mib, 16, ""}, // 10 GiB / 8 = 1280 MiB each, 1152 in flight
		{"explicit exports are kept, with a warning past memory", func(in *SizingInput) { in.MemoryBudget, in.MaxTableExports = 1*gib, 6 },
			6, "flag", 6 * (1152*mib + 2*gib), 2 * gib, 4, "may run out of memory"},
		{"explicit workflow tasks", func(in *SizingInput) { in.MaxWorkflowTasks = 10 },
			4, "cpu", 4 * (1152*mib + 2*gib), 2 * gib, 10, ""},
		{"one core still gets two workflow task slots", func(in *SizingInput) { in.CPUs = 1 },
			2, "cpu", 2 * (1152*mib + 2*gib), 2 * gib, 2, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := defaults(2)
			tc.in(&in)
			s, err := Size(in)
			if err != nil {
				t.Fatal(err)
			}
			if s.MaxTableExports != tc.exports || s.LimitedBy != tc.limitedBy || s.StagingBudget != tc.budget || s.BufferBytes != tc.buffer || s.MaxWorkflowTasks != tc.tasks {
				t.Errorf("got %d exports (%s), budget %s, buffer %s, %d workflow tasks; want %d (%s), %s, %s, %d",
					s.MaxTableExports, s.LimitedBy, FormatBytes(s.StagingBudget), FormatBytes(s.BufferBytes), s.MaxWorkflowTasks,
					tc.exports, tc.limitedBy, FormatBytes(tc.budget), FormatBytes(tc.buffer), tc.tasks)
			}
			if got := strings.Join(s.Warnings, "\n"); (tc.warning == "") != (got == "") || !strings.Contains(got, tc.warning) {
				t.Errorf("warnings %q, want %q", got, tc.warning)
			}
			// Whatever the inputs, the exports' shards in flight and buffers fit the budget.
			if used := int64(s.MaxTableExports) * (s.ExportStaging + s.BufferBytes); used > s.StagingBudget && s.BufferBytes > 1 {
				t.Errorf("%d exports × (%s + %s) exceed the budget %s", s.MaxTableExports, FormatBytes(s.ExportStaging), FormatBytes(s.BufferBytes), FormatBytes(s.StagingBudget))
			}
			if len(s.LogAttrs())%2 != 0 {
				t.Errorf("LogAttrs has an odd length")
			}
		})
	}
}

func TestSizeRefusesATooSmallStagingBudget(t *testing.T) {
	in := defaults(2)
	in.MaxTableExports, in.StagingBudget = 4, 2*gib
	_, err := Size(in)
	want := "4 table exports × (2 streams + 1 ready + 1 uploading) shards × (256MiB shard target + 32MiB row group a shard may overshoot by) = 4 × 4 × 288MiB = 4608MiB"
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "2GiB (--staging-budget-bytes, STAGING_BUDGET_BYTES)") {
		t.Fatalf("Size = %v\nwant the arithmetic %q", err, want)
	}

	// A disk too full for even one export is refused too, pointing at the disk.
	in = defaults(2)
	in.StagingFree = 1 * gib
	_, err = Size(in)
	if err == nil || !strings.Contains(err.Error(), "of the 1GiB free in the staging directory") || !strings.Contains(err.Error(), "1 × 4 × 288MiB = 1152MiB") {
		t.Fatalf("Size = %v, want a refusal naming the free space", err)
	}

	// Absurd settings are refused, not wrapped into a negative budget.
	in = defaults(2)
	in.MaxTableExports, in.StagingFree = math.MaxInt, 100*gib
	if _, err := Size(in); err == nil {
		t.Fatal("Size accepted MaxInt exports on 100 GiB of disk")
	}
}

func TestSizeRejectsBadInputs(t *testing.T) {
	for name, f := range map[string]func(*SizingInput){
		"no streams":           func(in *SizingInput) { in.Streams = 0 },
		"negative row group":   func(in *SizingInput) { in.RowGroupBytes = -1 },
		"no shard target":      func(in *SizingInput) { in.ShardTargetBytes = 0 },
		"negative exports":     func(in *SizingInput) { in.MaxTableExports = -1 },
		"one workflow task":    func(in *SizingInput) { in.MaxWorkflowTasks = 1 },
		"negative budget":      func(in *SizingInput) { in.StagingBudget = -1 },
		"negative memory":      func(in *SizingInput) { in.MemoryBudget = -1 },
		"no ready shard count": func(in *SizingInput) { in.ReadyShards = 0 },
	} {
		in := defaults(2)
		f(&in)
		if _, err := Size(in); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
