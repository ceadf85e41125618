package workflows

import "go.temporal.io/sdk/temporal"

// Every name the worker, the starter and the Temporal UI share lives here.
const (
	// TaskQueue is where workers poll for dumps.
	TaskQueue = "destination-aws-s3"
	// ExportWorkflowName is the registered name of ExportAccount.
	ExportWorkflowName = "ExportAccount"
	// ScheduleIDPrefix + account id is the account's schedule id, and the prefix of the
	// workflow ids it starts (Temporal appends the scheduled time).
	ScheduleIDPrefix = "s3-export-"

	// SignalRerun re-exports the whole dump or chosen tables and rewrites the receipt.
	SignalRerun = "rerun"
	// SignalRetry resumes a dump waiting for a fix (state waiting_for_fix).
	SignalRetry = "retry"
	// UpdateRerun re-exports chosen tables (or all) of a dump that has not started writing
	// its receipt, at a fresh snapshot; its validator rejects unknown tables and a dump
	// whose receipt is being or has been written. It answers with what will run.
	UpdateRerun = "rerun"
	// UpdateRetry resumes a parked dump; its validator rejects it when nothing is parked.
	UpdateRetry = "retry"
	// QueryProgress returns the dump's per-table Progress.
	QueryProgress = "progress"
)

// Search attributes an operator filters dumps by in the Web UI. They must be registered on
// the namespace (the dev stack does it; see README for production).
var (
	AttrAccountID   = temporal.NewSearchAttributeKeyKeyword("AccountId")
	AttrDumpFolder  = temporal.NewSearchAttributeKeyKeyword("DumpFolder")
	AttrExportState = temporal.NewSearchAttributeKeyKeyword("ExportState")
)

// ScheduleID is the id of an account's schedule.
func ScheduleID(account string) string { return ScheduleIDPrefix + account }
