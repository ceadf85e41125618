package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"

	"github.com/dreamdata/destination-aws-s3/internal/bqsource"
	"github.com/dreamdata/destination-aws-s3/internal/config"
	"github.com/dreamdata/destination-aws-s3/internal/export"
	"github.com/dreamdata/destination-aws-s3/internal/failure"
	"github.com/dreamdata/destination-aws-s3/internal/layout"
	"github.com/dreamdata/destination-aws-s3/internal/receipt"
)

// Stream groups. A BigQuery read session lives six hours, and a table's shard boundaries
// belong to its session: a table one worker cannot read and upload within a session would
// start again on a new one forever. Such a table is split: one session, its streams dealt to
// stream groups, each exported by its own ExportStreamGroup activity on whichever worker has
// a slot, all within the session's life. Group g of n writes the table's shards g, g+n,
// g+2n, ... (export.Interleave); once all are done, PadShards writes empty shards where a
// shorter group left a hole, so the table's shards stay numbered 0, 1, 2, ... without gaps,
// as the receipt contract promises.
const (
	// DefaultSplitBytes is how many bytes (BigQuery's estimate of the bytes a read session
	// scans) one stream group is given. A worker exports a few tens of MiB/s, so a group
	// this size uploads in two to three hours, well inside a session's life.
	DefaultSplitBytes = 256 << 30
	// DefaultMaxStreamGroups bounds the groups of one table: each takes an activity slot
	// somewhere in the fleet while the session lives.
	DefaultMaxStreamGroups = 8
)

// SplitPlan is what ExportTable returns instead of shards when the table is split: the
// session every group reads, and how many groups.
type SplitPlan struct {
	Session *bqsource.Session `json:"session"`
	Groups  int               `json:"groups"`
	// MinShards is the table's shard high-water mark from earlier passes and attempts: the
	// groups and their padding together cover every index below it.
	MinShards int `json:"min_shards"`
}

// ExportGroupInput is one stream group of a split table.
type ExportGroupInput struct {
	Account      config.Account
	Table        string
	DumpFolder   string
	SnapshotTime time.Time
	// Session is the table's whole read session (SplitPlan.Session).
	Session *bqsource.Session
	Group   int
	Groups  int
	// MinShards is this group's own high-water mark (counted in its shards, not the table's
	// indexes) from earlier attempts.
	MinShards int
	// Resume is where a parked attempt of this group stopped.
	Resume *export.Progress `json:",omitempty"`
}

// PadShardsInput asks for empty shards at a split table's holes.
type PadShardsInput struct {
	Account    config.Account
	Table      string
	DumpFolder string
	// ArrowSchema is the session's schema: an empty shard still has the table's columns.
	ArrowSchema []byte
	Groups      int
	Ranges      []PadRange
}

// PadRange is one group's missing shards: its own shards From to To-1.
type PadRange struct {
	Group int `json:"group"`
	From  int `json:"from"`
	To    int `json:"to"`
}

func (a *Activities) splitBytes() int64 {
	if a.SplitBytes <= 0 {
		return DefaultSplitBytes
	}
	return a.SplitBytes
}

func (a *Activities) maxStreamGroups() int {
	if a.MaxStreamGroups <= 0 {
		return DefaultMaxStreamGroups
	}
	return a.MaxStreamGroups
}

// groupsFor is how many stream groups a table read by s needs: by BigQuery's size estimate,
// at least minGroups, at most MaxStreamGroups.
func (a *Activities) groupsFor(s *bqsource.Session, minGroups int) int {
	g := max(minGroups, 1)
	if s.EstimatedBytes > 0 {
		g = max(g, int((s.EstimatedBytes+a.splitBytes()-1)/a.splitBytes()))
	}
	return min(g, a.maxStreamGroups())
}

// planGroups decides whether a table whose fresh session is s is split. A split table needs
// streams for every group, so it may open a session with more streams; the session to read
// is returned either way, with the plan when the table is split.
func (a *Activities) planGroups(ctx context.Context, ref bqsource.TableRef, in ExportTableInput, s *bqsource.Session, minGroups, minShards int, log tlog.Logger) (*bqsource.Session, *SplitPlan, error) {
	g := a.groupsFor(s, minGroups)
	if g <= 1 {
		return s, nil, nil
	}
	if want := g * a.maxStreams(); len(s.Streams) < want {
		more, err := a.Source.Open(ctx, ref, in.SnapshotTime, want)
		if err != nil {
			return nil, nil, err
		}
		log.Info("read session opened again with more streams for stream groups", "streams", len(more.Streams), "was", len(s.Streams))
		s = more
	}
	if g = min(g, len(s.Streams)); g <= 1 {
		return s, nil, nil
	}
	log.Info("table split into stream groups", "groups", g, "streams", len(s.Streams), "estimated_bytes", s.EstimatedBytes, "min_groups", minGroups)
	return s, &SplitPlan{Session: s, Groups: g, MinShards: minShards}, nil
}

// SessionMargins are sessionStopMargin and sessionRestartMargin for s, shrunk for a session
// that lives less than six hours (a test proxy's): the same shares of its life.
func SessionMargins(s *bqsource.Session) (stop, restart time.Duration) {
	stop, restart = sessionStopMargin, sessionRestartMargin
	if s == nil || s.Opened.IsZero() || s.ExpireTime.IsZero() {
		return stop, restart
	}
	const sixHours = 6 * time.Hour
	if life := s.ExpireTime.Sub(s.Opened); life > 0 && life < sixHours {
		stop = time.Duration(float64(stop) * float64(life) / float64(sixHours))
		restart = time.Duration(float64(restart) * float64(life) / float64(sixHours))
	}
	return stop, restart
}

// ExportStreamGroup exports one stream group of a split table, heartbeating and resuming
// like ExportTable. When the session runs out (it expires, or is too close to its expiry to
// start another upload), it fails for good with ReadSessionExpired: its streams cannot be
// read on any other session, so the workflow starts the table again on a new session with
// more groups.
func (a *Activities) ExportStreamGroup(ctx context.Context, in ExportGroupInput) (TableResult, error) {
	acc := in.Account
	name := fmt.Sprintf("%s (stream group %d of %d)", in.Table, in.Group+1, in.Groups)
	log := tlog.With(activity.GetLogger(ctx), "account", acc.ID, "dump", in.DumpFolder, "table", in.Table, "group", in.Group, "groups", in.Groups)
	started := a.now()
	var p export.Progress
	switch {
	case activity.HasHeartbeatDetails(ctx):
		if err := activity.GetHeartbeatDetails(ctx, &p); err != nil {
			return TableResult{}, a.failed(in.Table, failure.New(failure.KindProgressUnreadable, err,
				"table %s: the progress an earlier attempt recorded cannot be read (a worker of another version?); start a new dump with `starter run`", name),
				FailureDetails{Reserved: in.MinShards})
		}
	case in.Resume != nil && in.Resume.Session != nil:
		p = *in.Resume
	case in.Session == nil:
		return TableResult{}, a.failed(in.Table, failure.New(failure.KindInvalidAccount, nil, "table %s: no read session to export", name))
	default:
		p = export.Progress{Session: in.Session.Group(in.Group, in.Groups)}
	}
	minShards := max(in.MinShards, p.Reserved)
	stop, _ := SessionMargins(p.Session)
	expire := p.Session.ExpireTime
	// sessionOver ends the group for good: its streams cannot be read on another session.
	// ranOut tells a session too short for the group (the table splits again into more
	// groups) from one BigQuery lost early (the same groups again on a new session).
	sessionOver := func(err error, ranOut bool) (TableResult, error) {
		a.Metrics.Failed(in.Table, string(failure.KindSessionExpired))
		msg := fmt.Sprintf("table %s: its read session (expiring %s) ran out before this group was uploaded: the table starts again on a new session with more stream groups",
			name, expire.Format(time.RFC3339))
		if !ranOut {
			msg = fmt.Sprintf("table %s: BigQuery no longer serves its read session (it would have expired %s): the table starts again on a new session", name, expire.Format(time.RFC3339))
		}
		if err != nil {
			msg += ": " + err.Error()
		}
		return TableResult{}, temporal.NewApplicationErrorWithOptions(msg, string(failure.KindSessionExpired),
			temporal.ApplicationErrorOptions{NonRetryable: true, Details: []any{FailureDetails{Reserved: max(minShards, p.Reserved), SessionRanOut: ranOut}}})
	}
	if p.Stream < len(p.Session.Streams) && !expire.IsZero() && !a.now().Before(expire.Add(-stop)) {
		return sessionOver(nil, true)
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	hb := newHeartbeater(ctx, name, a.leaseOf(ctx, time.Now()), p, a.stallTimeout(), time.Now, cancel)
	defer hb.stop()
	release, err := a.Projects.acquire(ctx, acc, in.Table, projectWait)
	if err != nil {
		return a.exportFailed(ctx, in.Table, name, hb, minShards, err)
	}
	defer release()
	fields, err := p.Session.Fields()
	if err != nil {
		return a.exportFailed(ctx, in.Table, name, hb, minShards, failure.New(failure.KindUnsupportedSchema, err, "table %s: the read session's schema cannot be described", in.Table))
	}
	log.Info("exporting stream group", "streams", len(p.Session.Streams), "shards_done", len(p.Files), "stream", p.Stream, "offset", p.Offset)
	job := export.Job{Table: in.Table, Prefix: acc.Prefix, DumpFolder: in.DumpFolder, Extension: acc.FileExtension,
		MinShards: minShards, Now: a.now, Touch: hb.touch, Interleave: export.Interleave{Group: in.Group, Of: in.Groups}}
	if !expire.IsZero() {
		job.UploadUntil = expire.Add(-stop)
	}
	files, err := a.exporter(acc, hb).Run(ctx, job, &p, a.recorder(in.Table, hb, log))
	if err != nil {
		if errors.Is(err, export.ErrUploadWindowClosed) || failure.KindOf(err) == failure.KindSessionExpired {
			hb.record(p)
			_, restart := SessionMargins(p.Session)
			ranOut := errors.Is(err, export.ErrUploadWindowClosed) || !expire.IsZero() && !a.now().Before(expire.Add(-restart))
			return sessionOver(err, ranOut)
		}
		return a.exportFailed(ctx, in.Table, name, hb, minShards, err)
	}
	res := a.tableResult(in.Table, in.DumpFolder, acc, files, fields, in.SnapshotTime)
	log.Info("stream group exported", "files", len(files), "rows", res.RowCount, "took", a.now().Sub(started).Round(time.Second))
	return res, nil
}

// PadShards writes an empty shard (the table's columns, no row) at every index of the
// ranges, and returns them per range. Empty shards are alike, so this is quick.
func (a *Activities) PadShards(ctx context.Context, in PadShardsInput) ([]export.Shards, error) {
	defer keepAlive(ctx)()
	fence := attemptFence(ctx, fmt.Sprintf("the padding shards of table %s were", in.Table))
	e := &export.Exporter{Writer: fencedWriter{w: a.Destinations.Writer(Target(in.Account)), fence: fence}, RowGroupBytes: a.RowGroupBytes, TempDir: a.TempDir}
	out := make([]export.Shards, len(in.Ranges))
	for i, r := range in.Ranges {
		if r.To <= r.From {
			continue
		}
		// Run writes the padding from the shards it is told exist up to MinShards.
		p := export.Progress{Session: &bqsource.Session{ArrowSchema: in.ArrowSchema}, Files: make(export.Shards, r.From), Reserved: r.To}
		job := export.Job{Table: in.Table, Prefix: in.Account.Prefix, DumpFolder: in.DumpFolder, Extension: in.Account.FileExtension,
			MinShards: r.To, Interleave: export.Interleave{Group: r.Group, Of: in.Groups}}
		files, err := e.Run(ctx, job, &p, func(export.Progress) {})
		if err != nil {
			return nil, a.failed(in.Table, err)
		}
		out[i] = files[r.From:]
	}
	activity.GetLogger(ctx).Info("padding shards written", "account", in.Account.ID, "dump", in.DumpFolder, "table", in.Table, "ranges", len(in.Ranges))
	return out, nil
}

// exporter is the data path of one attempt, its writes fenced by the attempt's lease.
func (a *Activities) exporter(acc config.Account, hb *heartbeater) *export.Exporter {
	return &export.Exporter{
		Reader:           a.Source,
		Writer:           fencedWriter{w: a.Destinations.Writer(Target(acc)), fence: hb.fence, reserved: hb.awaitReserved},
		TargetShardBytes: a.TargetShardBytes,
		RowGroupBytes:    a.RowGroupBytes,
		TempDir:          a.TempDir,
		MaxStreams:       a.maxStreams(),
		BufferBytes:      a.BufferBytes,
	}
}

// recorder heartbeats each progress and counts each uploaded shard.
func (a *Activities) recorder(table string, hb *heartbeater, log tlog.Logger) func(export.Progress) {
	return func(next export.Progress) {
		uploaded := len(next.Files) > len(hb.progress().Files)
		hb.record(next)
		if n := len(next.Files); uploaded && n > 0 {
			a.Metrics.ShardUploaded(table, next.Files[n-1].Rows, next.Files[n-1].Bytes)
			log.Info("shard uploaded", "shards", n, "rows", next.Rows())
		}
	}
}

// exportFailed turns a failed export attempt into its error, with where it stopped.
// name is the table, or the table and its stream group.
func (a *Activities) exportFailed(ctx context.Context, table, name string, hb *heartbeater, minShards int, err error) (TableResult, error) {
	last := hb.progress()
	if cause := context.Cause(ctx); errors.Is(cause, errStalled) {
		err = failure.New(failure.KindStalled, err, "table %s: no row read and no byte sent for %s (stream %d, row %d): the BigQuery read or the S3 upload stalled; it is retried from its last shard",
			name, a.stallTimeout(), last.Stream, last.Offset)
	}
	d := FailureDetails{Reserved: max(last.Reserved, minShards)}
	if last.Session != nil {
		d.Resume = &last
	}
	return TableResult{}, a.failed(table, err, d)
}

// tableResult is a finished export's contribution to the receipt.
func (a *Activities) tableResult(table, dumpFolder string, acc config.Account, files export.Shards, fields []receipt.Field, snapshot time.Time) TableResult {
	res := TableResult{Table: table, Folder: layout.TableFolder(acc.Prefix, dumpFolder, table), Files: files, Schema: fields, SnapshotTime: snapshot}
	for _, f := range files {
		res.RowCount += f.Rows
	}
	return res
}
