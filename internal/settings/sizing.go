package settings

import (
	"fmt"
	"math"
)

// Estimates a worker's sizing rests on. They err high: a worker that takes a little less
// work than it could leaves it queued in Temporal for another worker, one that takes too much
// is OOM-killed and every table it was running starts over on a new read session.
const (
	// MemoryFloorBytes is a worker's memory with no table running: the Go runtime, the
	// BigQuery, S3, STS and Temporal clients, the sticky workflow cache and the metrics.
	MemoryFloorBytes = 256 << 20
	// ArrowBatchBytes is the decoded Storage Read response a stream holds while it encodes
	// it. BigQuery's responses are usually a few MiB (bqsource.MaxResponseBytes admits up to
	// 256 MiB, which a table of very wide rows may approach: lower --memory-budget for those).
	ArrowBatchBytes = 8 << 20
	// GCHeadroom is the heap's growth over its live data before a collection (GOGC=100):
	// every live byte of a row group costs two of the process's memory.
	GCHeadroom = 2
	// ShardWriteBufferBytes is the buffered writer in front of each stream's shard file.
	ShardWriteBufferBytes = 1 << 20
	// UploadBufferBytes is one upload's memory: the checksum pass's read buffer and the HTTP
	// buffers of its concurrent parts. Parts are read from the staged file in place, never
	// held whole, so this does not grow with the shard size.
	UploadBufferBytes = 8 << 20
	// ExportsPerCPU bounds a derived --max-table-exports by cores. An export encodes only
	// part of the time (it also waits on BigQuery and S3), so two per core keep the cores
	// busy; more would only slow every export on the worker down together, while other
	// workers with free slots could have taken the work.
	ExportsPerCPU = 2
	// WorkflowTasksPerCPU sets the default --max-workflow-tasks. An ExportAccount workflow
	// task is a short burst of deterministic code and one RPC; two per core overlap the RPC
	// with work. More would queue inside the worker, where the workflow task timeout runs and
	// replays take CPU from the encoders, instead of in Temporal, where nothing times out.
	WorkflowTasksPerCPU = 2
	// MinWorkflowTasks is the Temporal SDK's least: a worker with one workflow task slot
	// would poll only its sticky queue (the SDK panics on 1).
	MinWorkflowTasks = 2
	// StagingFreePercent is the share of the staging file system's free space at start that
	// a derived staging budget takes: the rest is margin for the disk's other users, whose
	// use may grow while the worker runs.
	StagingFreePercent = 75
)

// SizingInput is what a worker's sizing is derived from: the machine, the shape of one table
// export, and the operator's choices. Zero in MaxTableExports, MaxWorkflowTasks and
// StagingBudget means derive it.
type SizingInput struct {
	// CPUs is runtime.GOMAXPROCS(0).
	CPUs int
	// MemoryBudget is the memory the worker may use (MemoryLimit, or the operator's
	// --memory-budget); 0 means unknown, and memory then does not bound the exports.
	MemoryBudget int64
	// MemorySource says where MemoryBudget comes from, for the log.
	MemorySource string
	// StagingFree is the free space of the staging directory's file system; 0 means unknown.
	StagingFree int64

	// Streams, RowGroupBytes, ShardTargetBytes and ReadyShards are one export's shape, as
	// the exporter runs it (defaults resolved, none zero).
	Streams          int
	RowGroupBytes    int64
	ShardTargetBytes int64
	ReadyShards      int
	// DefaultBufferBytes is the exporter's own bound on shards waiting for an earlier
	// stream: a derived staging budget gives no export more than this.
	DefaultBufferBytes int64

	MaxTableExports  int
	MaxWorkflowTasks int
	StagingBudget    int64
}

// Sizing is how much work a worker takes at once, with every figure it rests on.
type Sizing struct {
	In SizingInput
	// ExportMemory is the estimated memory of one table export (see ExportMemory).
	ExportMemory int64
	// MaxTableExports is the worker's activity slots. LimitedBy names what set it: "flag",
	// "cpu", "memory" or "staging disk". CPULimit, MemoryLimit and DiskLimit are the
	// exports each resource allows (0: not known, so no limit).
	MaxTableExports                  int
	LimitedBy                        string
	CPULimit, MemoryLimit, DiskLimit int
	MaxWorkflowTasks                 int
	// StagingBudget is the disk all the worker's staged shards may take; StagingDerived says
	// the operator did not set it.
	StagingBudget  int64
	StagingDerived bool
	// ExportStaging is one export's shards in flight (see ExportStaging).
	ExportStaging int64
	// BufferBytes is each export's Exporter.BufferBytes: its share of the staging budget
	// past its shards in flight. Never 0, which the exporter reads as its 2 GiB default.
	BufferBytes int64
	// Warnings are choices the operator should know about; the worker logs each.
	Warnings []string
}

// ExportMemory estimates one table export's memory: each stream holds the row group it is
// encoding and the Arrow batch it encodes from, doubled by the garbage collector's headroom,
// plus its shard file's write buffer; the upload adds its buffers.
func ExportMemory(streams int, rowGroupBytes int64) int64 {
	perStream := add(mul(GCHeadroom, add(rowGroupBytes, ArrowBatchBytes)), ShardWriteBufferBytes)
	return add(mul(int64(streams), perStream), UploadBufferBytes)
}

// ExportStaging is the exporter's bound on one export's local disk besides its buffer: a
// shard being written per stream, the ready shards and the one uploading, each at most the
// shard target plus the row group it may overshoot by.
func ExportStaging(streams, readyShards int, shardTargetBytes, rowGroupBytes int64) int64 {
	return mul(int64(streams+readyShards+1), add(shardTargetBytes, rowGroupBytes))
}

// Size derives a worker's sizing. Explicit choices are kept (a warning says when one exceeds
// what memory or cores suggest), derived ones take the least that cores, memory and staging
// disk allow, at least one. It fails when an input is out of range or when the staging
// budget cannot hold every export's shards in flight, with the arithmetic in the error.
func Size(in SizingInput) (Sizing, error) {
	if err := in.validate(); err != nil {
		return Sizing{}, err
	}
	in.CPUs = max(in.CPUs, 1)
	s := Sizing{In: in,
		ExportMemory:  ExportMemory(in.Streams, in.RowGroupBytes),
		ExportStaging: ExportStaging(in.Streams, in.ReadyShards, in.ShardTargetBytes, in.RowGroupBytes),
		CPULimit:      ExportsPerCPU * in.CPUs,
	}
	if in.MemoryBudget > 0 {
		s.MemoryLimit = int(max(1, (in.MemoryBudget-MemoryFloorBytes)/s.ExportMemory))
		if in.MemoryBudget < MemoryFloorBytes+s.ExportMemory {
			s.Warnings = append(s.Warnings, fmt.Sprintf("the memory budget %s (%s) is below one export's estimate, %s floor + %s: running one export at a time anyway",
				approxBytes(in.MemoryBudget), in.MemorySource, approxBytes(MemoryFloorBytes), approxBytes(s.ExportMemory)))
		}
	}
	if disk := s.diskForLimit(); disk > 0 {
		s.DiskLimit = int(max(1, disk/s.ExportStaging))
	}

	if in.MaxTableExports > 0 {
		s.MaxTableExports, s.LimitedBy = in.MaxTableExports, "flag"
		if s.MemoryLimit > 0 && in.MaxTableExports > s.MemoryLimit {
			s.Warnings = append(s.Warnings, fmt.Sprintf("--max-table-exports %d exceeds the %d exports the memory budget %s (%s) holds at about %s each past a %s floor: the worker may run out of memory",
				in.MaxTableExports, s.MemoryLimit, approxBytes(in.MemoryBudget), in.MemorySource, approxBytes(s.ExportMemory), approxBytes(MemoryFloorBytes)))
		}
	} else {
		s.MaxTableExports, s.LimitedBy = s.CPULimit, "cpu"
		if s.MemoryLimit > 0 && s.MemoryLimit < s.MaxTableExports {
			s.MaxTableExports, s.LimitedBy = s.MemoryLimit, "memory"
		}
		if s.DiskLimit > 0 && s.DiskLimit < s.MaxTableExports {
			s.MaxTableExports, s.LimitedBy = s.DiskLimit, "staging disk"
		}
	}
	exports := int64(s.MaxTableExports)

	s.StagingBudget = in.StagingBudget
	if s.StagingBudget == 0 {
		// Past the exporter's own buffer bound a larger budget buys nothing.
		s.StagingDerived = true
		s.StagingBudget = mul(exports, add(s.ExportStaging, in.DefaultBufferBytes))
		if free := s.diskForLimit(); free > 0 {
			s.StagingBudget = min(s.StagingBudget, free)
		}
	}
	if need := mul(exports, s.ExportStaging); s.StagingBudget < need {
		return Sizing{}, fmt.Errorf("the staging budget %s cannot hold every table export's shards in flight: "+
			"%d table exports × (%d streams + %d ready + 1 uploading) shards × (%s shard target + %s row group a shard may overshoot by) = %d × %d × %s = %s; "+
			"raise the budget, or lower --max-table-exports, --max-streams or --shard-target-bytes",
			s.stagingBudgetText(), exports, in.Streams, in.ReadyShards, approxBytes(in.ShardTargetBytes), approxBytes(in.RowGroupBytes),
			exports, in.Streams+in.ReadyShards+1, approxBytes(add(in.ShardTargetBytes, in.RowGroupBytes)), approxBytes(need))
	}
	s.BufferBytes = max(1, s.StagingBudget/exports-s.ExportStaging)

	s.MaxWorkflowTasks = in.MaxWorkflowTasks
	if s.MaxWorkflowTasks == 0 {
		s.MaxWorkflowTasks = max(MinWorkflowTasks, WorkflowTasksPerCPU*in.CPUs)
	}
	return s, nil
}

// diskForLimit is the disk the exports may be sized to: the operator's budget, or the
// share of the free space a derived budget takes; 0 when neither is known.
func (s *Sizing) diskForLimit() int64 {
	if s.In.StagingBudget > 0 {
		return s.In.StagingBudget
	}
	return mul(s.In.StagingFree, StagingFreePercent) / 100
}

// stagingBudgetText names the staging budget and where it comes from.
func (s *Sizing) stagingBudgetText() string {
	if !s.StagingDerived {
		return approxBytes(s.StagingBudget) + " (--staging-budget-bytes, STAGING_BUDGET_BYTES)"
	}
	if s.In.StagingFree > 0 {
		return fmt.Sprintf("%s (derived: at most %d%% of the %s free in the staging directory; set --staging-budget-bytes or STAGING_BUDGET_BYTES, or give --temp-dir a larger disk)",
			approxBytes(s.StagingBudget), StagingFreePercent, approxBytes(s.In.StagingFree))
	}
	return approxBytes(s.StagingBudget) + " (derived)"
}

// MemoryEstimate is the worker's estimated peak memory with every export slot busy.
func (s *Sizing) MemoryEstimate() int64 {
	return add(MemoryFloorBytes, mul(int64(s.MaxTableExports), s.ExportMemory))
}

// LogAttrs are every figure of the sizing as slog key-value pairs, for the one line a worker
// logs at start.
func (s *Sizing) LogAttrs() []any {
	limit := func(n int) any {
		if n == 0 {
			return "unknown"
		}
		return n
	}
	staging := "--staging-budget-bytes"
	if s.StagingDerived {
		staging = "derived"
	}
	return []any{
		"cpus", s.In.CPUs,
		"max_table_exports", s.MaxTableExports, "exports_limited_by", s.LimitedBy,
		"exports_cpu_limit", s.CPULimit, "exports_memory_limit", limit(s.MemoryLimit), "exports_disk_limit", limit(s.DiskLimit),
		"max_workflow_tasks", s.MaxWorkflowTasks,
		"max_streams", s.In.Streams, "row_group", approxBytes(s.In.RowGroupBytes), "shard_target", approxBytes(s.In.ShardTargetBytes), "ready_shards", s.In.ReadyShards,
		"memory_budget", approxBytes(s.In.MemoryBudget), "memory_source", s.In.MemorySource,
		"memory_floor", approxBytes(MemoryFloorBytes), "export_memory", approxBytes(s.ExportMemory), "memory_estimate", approxBytes(s.MemoryEstimate()),
		"staging_budget", approxBytes(s.StagingBudget), "staging_source", staging, "staging_free", approxBytes(s.In.StagingFree),
		"export_staging", approxBytes(s.ExportStaging), "buffer_per_export", approxBytes(s.BufferBytes),
	}
}

func (in *SizingInput) validate() error {
	switch {
	case in.Streams < 1:
		return fmt.Errorf("--max-streams (MAX_STREAMS) must be at least 1, not %d", in.Streams)
	case in.RowGroupBytes <= 0:
		return fmt.Errorf("--row-group-bytes (ROW_GROUP_BYTES) must be positive, not %d", in.RowGroupBytes)
	case in.ShardTargetBytes <= 0:
		return fmt.Errorf("--shard-target-bytes (SHARD_TARGET_BYTES) must be positive, not %d", in.ShardTargetBytes)
	case in.ReadyShards < 1:
		return fmt.Errorf("ready shards must be at least 1, not %d", in.ReadyShards)
	case in.MaxTableExports < 0:
		return fmt.Errorf("--max-table-exports (MAX_TABLE_EXPORTS) must be positive, or 0 to derive it, not %d", in.MaxTableExports)
	case in.MaxWorkflowTasks < 0 || in.MaxWorkflowTasks == 1:
		return fmt.Errorf("--max-workflow-tasks (MAX_WORKFLOW_TASKS) must be at least %d (the Temporal SDK polls the shared queue only with a second slot), or 0 to derive it, not %d",
			MinWorkflowTasks, in.MaxWorkflowTasks)
	case in.StagingBudget < 0:
		return fmt.Errorf("--staging-budget-bytes (STAGING_BUDGET_BYTES) must not be negative, not %d", in.StagingBudget)
	case in.MemoryBudget < 0:
		return fmt.Errorf("--memory-budget (MEMORY_BUDGET_BYTES) must not be negative, not %d", in.MemoryBudget)
	}
	return nil
}

// add and mul saturate at MaxInt64, so absurd settings meet a clear refusal, not a wrapped
// negative budget.
func add(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

func mul(a, b int64) int64 {
	if a != 0 && b > math.MaxInt64/a {
		return math.MaxInt64
	}
	return a * b
}
