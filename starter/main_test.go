package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/dreamdata/destination-aws-s3/internal/policy"
	"github.com/dreamdata/destination-aws-s3/internal/schedules"
	"github.com/dreamdata/destination-aws-s3/workflows"
)

var fixedNow = time.Date(2024, 5, 10, 12, 0, 0, 0, time.UTC)

// runCLI runs one command line in-process. Temporal is pointed at a closed port: the tests
// here must fail before dialing, or not need Temporal at all.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	t.Setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")
	var out, errOut bytes.Buffer
	a := &app{out: &out, errOut: &errOut, now: func() time.Time { return fixedNow }}
	code = a.main(context.Background(), args)
	return code, out.String(), errOut.String()
}

const accountsYAML = `accounts:
  - id: acme
    bucket: acme-data
    role_arn: arn:aws:iam::123456789012:role/dreamdata-data-platform
    prefix: exports/dreamdata
    kms_key_arn: arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab
    bigquery: {project: data-platform, dataset: acme}
  - id: globex
    bucket: globex-data
    role_arn: arn:aws:iam::210987654321:role/dreamdata
    bigquery: {project: data-platform, dataset: globex}
`

func accountsFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "accounts.yaml")
	if err := os.WriteFile(p, []byte(accountsYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestHelpExplainsEveryCommand(t *testing.T) {
	code, out, _ := runCLI(t, "-h")
	if code != 0 {
		t.Fatalf("-h exit %d", code)
	}
	commands := [][]string{
		{"schedules", "sync"}, {"schedules", "list"}, {"schedules", "pause"}, {"schedules", "unpause"},
		{"schedules", "trigger"}, {"schedules", "backfill"},
		{"run"}, {"status"}, {"runs"}, {"rerun"}, {"retry"}, {"cancel"}, {"policy"}, {"validate"},
	}
	for _, c := range commands {
		name := strings.Join(c, " ")
		if !strings.Contains(out, name) {
			t.Errorf("usage does not mention %q", name)
		}
		code, help, _ := runCLI(t, append(c, "-h")...)
		if code != 0 {
			t.Errorf("%s -h: exit %d", name, code)
		}
		if !strings.HasPrefix(help, "starter "+name) || !strings.Contains(help, "Flags:") || len(strings.Split(help, "\n")) < 6 {
			t.Errorf("%s -h does not explain itself:\n%s", name, help)
		}
		if len(c) == 1 || c[0] == "schedules" {
			if c[0] != "policy" && c[0] != "validate" && !strings.Contains(help, "-temporal-address") {
				t.Errorf("%s -h lacks the Temporal flags", name)
			}
		}
	}
	if code, out, _ := runCLI(t, "help", "runs"); code != 0 || !strings.HasPrefix(out, "starter runs") {
		t.Errorf("help runs: %d %q", code, out)
	}
	// "schedules" has its own help: its subcommands, one line each.
	for _, args := range [][]string{{"schedules", "-h"}, {"schedules", "--help"}, {"help", "schedules"}} {
		code, out, _ := runCLI(t, args...)
		if code != 0 || !strings.HasPrefix(out, "starter schedules SUBCOMMAND") || !strings.Contains(out, "  backfill ") || strings.Contains(out, "Customer setup") {
			t.Errorf("%v: exit %d\n%s", args, code, out)
		}
	}
	if code, out, _ := runCLI(t, "schedules", "help", "sync"); code != 0 || !strings.HasPrefix(out, "starter schedules sync") || !strings.Contains(out, "-prune") {
		t.Errorf("schedules help sync: %d %q", code, out)
	}
}

func TestMalformedEnvironmentIsAnError(t *testing.T) {
	cases := []struct {
		env, value string
		args       []string
	}{
		{"S3_FORCE_PATH_STYLE", "yes", []string{"validate", "acme", "--accounts", "a.yaml"}},
		{"S3_CHECKSUM_WHEN_REQUIRED", "sometimes", []string{"validate", "acme", "--accounts", "a.yaml"}},
		{"SCHEDULE_JITTER", "ten minutes", []string{"schedules", "sync", "--accounts", "a.yaml"}},
		{"SCHEDULE_SPREAD", "30", []string{"schedules", "sync", "--accounts", "a.yaml"}},
	}
	for _, c := range cases {
		t.Run(c.env, func(t *testing.T) {
			t.Setenv(c.env, c.value)
			code, _, stderr := runCLI(t, c.args...)
			if code != 1 || !strings.Contains(stderr, c.env+"=\""+c.value+"\"") {
				t.Errorf("%s=%q: exit %d, stderr %q: want 1 naming the variable and its value", c.env, c.value, code, stderr)
			}
			// The help still prints.
			if code, _, _ := runCLI(t, append(c.args[:2:2], "-h")...); code != 0 {
				t.Errorf("-h with a malformed %s: exit %d", c.env, code)
			}
		})
	}
	t.Setenv("S3_FORCE_PATH_STYLE", "true")
	if code, _, stderr := runCLI(t, "validate", "acme", "--accounts", "missing.yaml"); strings.Contains(stderr, "S3_FORCE_PATH_STYLE") {
		t.Errorf("a valid boolean refused: %d %s", code, stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	cases := []struct {
		args     []string
		contains []string
	}{
		{[]string{"frobnicate"}, []string{`unknown command "frobnicate"`}},
		{[]string{"schedules"}, []string{"sync, list, pause"}},
		{[]string{"schedules", "erase"}, []string{`unknown schedules subcommand "erase"`}},
		{[]string{"schedules", "pause", "acme"}, []string{"--note TEXT is required"}},
		{[]string{"schedules", "pause", "--note", "x"}, []string{"name the account"}},
		{[]string{"schedules", "sync", "--accounts", "a.yaml", "--overlap", "allow_all"}, []string{"refused", "same folder"}},
		{[]string{"schedules", "sync", "--accounts", "a.yaml", "--catchup-window", "1s"}, []string{"minimum is 10s"}},
		{[]string{"schedules", "sync", "--overlap", "buffer_one"}, []string{"--accounts FILE is required"}},
		{[]string{"schedules", "backfill", "acme", "--from", "2024-05-01"}, []string{"--from and --to are both required"}},
		{[]string{"schedules", "backfill", "acme", "--from", "2024-05-01", "--to", "2024-05-02T00:00:00Z"}, []string{"not RFC 3339"}},
		{[]string{"schedules", "backfill", "acme", "--from", "2024-05-02T00:00:00Z", "--to", "2024-05-01T00:00:00Z"}, []string{"is not before"}},
		{[]string{"schedules", "backfill", "acme", "--from", "2024-05-09T00:00:00Z", "--to", "2024-05-11T00:00:00Z"}, []string{"in the future"}},
		{[]string{"runs", "acme", "--limit", "0"}, []string{"between 1 and 1000"}},
		{[]string{"runs", "acme", "--status", "exploded"}, []string{"unknown status", "failed"}},
		{[]string{"run", "acme corp"}, []string{"not a valid account id"}},
		{[]string{"run", "acme", "extra"}, []string{`unexpected argument "extra"`}},
		{[]string{"status", "--bogus"}, []string{"flag provided but not defined: -bogus"}},
		{[]string{"policy", "acme"}, []string{"--accounts FILE", "--bucket"}},
		{[]string{"validate", "acme"}, []string{"--accounts FILE is required"}},
		{[]string{"cancel", "acme"}, []string{"--reason TEXT is required"}},
		{[]string{"cancel", "acme", "--reason", "  "}, []string{"--reason TEXT is required"}},
		{[]string{"schedules", "sync", "--accounts", "a.yaml", "--jitter", "7h"}, []string{"--jitter 7h0m0s must be between 0 and 6h0m0s"}},
		{[]string{"schedules", "sync", "--accounts", "a.yaml", "--spread", "-5m"}, []string{"--spread"}},
		{[]string{"schedules", "sync", "--accounts", "a.yaml", "--task-queue", ""}, []string{"--task-queue must not be empty"}},
		{[]string{"schedules", "sync", "--accounts", "a.yaml", "--concurrency", "0"}, []string{"--concurrency 0"}},
	}
	for _, tc := range cases {
		code, _, stderr := runCLI(t, tc.args...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", tc.args, code, stderr)
		}
		for _, s := range tc.contains {
			if !strings.Contains(stderr, s) {
				t.Errorf("%v: stderr %q lacks %q", tc.args, stderr, s)
			}
		}
	}
}

func TestSyncOptions(t *testing.T) {
	o, err := syncOptions(syncFlags{overlap: "buffer_one", catchup: 30 * time.Minute, jitter: 5 * time.Minute, spread: 30 * time.Minute, taskQueue: "q"})
	if err != nil || o.Overlap != enumspb.SCHEDULE_OVERLAP_POLICY_BUFFER_ONE || o.CatchupWindow != 30*time.Minute || o.Jitter != 5*time.Minute ||
		o.Spread != 30*time.Minute || o.TaskQueue != "q" {
		t.Errorf("%+v %v", o, err)
	}
	o, err = syncOptions(syncFlags{overlap: "skip", catchup: schedules.DefaultCatchupWindow, taskQueue: workflows.TaskQueue})
	if err != nil || o.Overlap != enumspb.SCHEDULE_OVERLAP_POLICY_SKIP || o.CatchupWindow != time.Hour {
		t.Errorf("defaults %+v %v", o, err)
	}
	if _, err := syncOptions(syncFlags{overlap: "skip", catchup: time.Hour, jitter: 7 * time.Hour, taskQueue: "q"}); err == nil {
		t.Error("a jitter longer than the gap between dumps must be refused")
	}
	if _, err := syncOptions(syncFlags{overlap: "skip", catchup: time.Hour, spread: -time.Minute, taskQueue: "q"}); err == nil {
		t.Error("a negative spread must be refused")
	}
	if _, err := syncOptions(syncFlags{overlap: "skip", catchup: time.Hour}); err == nil {
		t.Error("an empty task queue must be refused")
	}
}

func TestUnknownAccountListsKnownOnes(t *testing.T) {
	f := accountsFile(t)
	for _, cmd := range []string{"policy", "validate"} {
		code, _, stderr := runCLI(t, cmd, "acm", "--accounts", f)
		if code != 1 || !strings.Contains(stderr, `account "acm" is not in the accounts file (known: acme, globex)`) {
			t.Errorf("%s: exit %d, %q", cmd, code, stderr)
		}
	}
}

var section = regexp.MustCompile(`(?ms)^## \d\. [^\n]*\n(\{.*?\n\})\n`)

func TestPolicyText(t *testing.T) {
	code, out, stderr := runCLI(t, "policy", "acme", "--accounts", accountsFile(t))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	docs := section.FindAllStringSubmatch(out, -1)
	if len(docs) != 3 {
		t.Fatalf("want trust, permissions and KMS policies, found %d:\n%s", len(docs), out)
	}
	for _, d := range docs {
		var m map[string]any
		if err := json.Unmarshal([]byte(d[1]), &m); err != nil {
			t.Errorf("printed policy is not valid JSON: %v\n%s", err, d[1])
		}
	}
	for _, want := range []string{
		`"AWS": "` + policy.DefaultExporterRoleARN + `"`,
		`"sts:ExternalId": "acme"`,
		`"arn:aws:s3:::acme-data/exports/dreamdata/*"`,
		`"kms:GenerateDataKey"`,
		"scoped to the prefix",
		"lifecycle rule",
		"aws iam create-role --role-name dreamdata-data-platform",
		"aws iam put-role-policy --role-name dreamdata-data-platform --policy-name dreamdata-kms",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("policy output lacks %q", want)
		}
	}
	heredocs := regexp.MustCompile(`(?s)<<'EOF'\n(.*?)\nEOF\n`).FindAllStringSubmatch(out, -1)
	if len(heredocs) != 3 {
		t.Errorf("recipe has %d policy files", len(heredocs))
	}
	for _, d := range heredocs {
		if !json.Valid([]byte(d[1])) {
			t.Errorf("recipe policy is not valid JSON:\n%s", d[1])
		}
	}
}

func TestPolicyJSONAndFlags(t *testing.T) {
	code, out, stderr := runCLI(t, "policy", "newco", "--bucket", "newco-data", "--exporter-role-arn", "arn:aws:iam::111111111111:role/exporter", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var s policy.Set
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if s.Trust.Statement[0].Principal["AWS"] != "arn:aws:iam::111111111111:role/exporter" || s.Resource != "arn:aws:s3:::newco-data/*" || s.KMS != nil {
		t.Errorf("%+v", s)
	}
	if s.RoleName != policy.DefaultRoleName {
		t.Errorf("without a role the recipe creates %s, got %s", policy.DefaultRoleName, s.RoleName)
	}
	if code, _, stderr := runCLI(t, "policy", "acme", "--accounts", accountsFile(t), "--bucket", "x"); code != 2 || !strings.Contains(stderr, "not both") {
		t.Errorf("--accounts with --bucket: %d %q", code, stderr)
	}
	if code, _, stderr := runCLI(t, "policy", "acme", "--bucket", "arn:aws:s3:::acme-data"); code != 1 || !strings.Contains(stderr, "bucket ARN") {
		t.Errorf("bucket ARN: %d %q", code, stderr)
	}
}

func TestTables(t *testing.T) {
	var b bytes.Buffer
	next := []time.Time{time.Date(2024, 5, 10, 15, 0, 0, 0, time.UTC), time.Date(2024, 5, 11, 4, 0, 0, 0, time.UTC), time.Date(2024, 5, 11, 15, 0, 0, 0, time.UTC)}
	err := writeScheduleTable(&b, []schedules.Info{
		{Account: "acme", TimesUTC: []string{"04:00", "15:00"}, Overlap: "skip", NextRuns: next, Note: "managed by starter schedules sync"},
		{Account: "globex", Paused: true, TimesUTC: []string{"04:00"}, Overlap: "buffer_one", Note: "customer rotating role", Running: []string{"x"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ACCOUNT") {
		t.Fatalf("%q", b.String())
	}
	if !strings.Contains(lines[1], "active") || !strings.Contains(lines[1], "2024-05-10T15:00:00Z 2024-05-11T04:00:00Z") || strings.Contains(lines[1], "2024-05-11T15:00") {
		t.Errorf("acme line %q: two next runs, UTC", lines[1])
	}
	if !strings.Contains(lines[2], "paused, running") || !strings.HasSuffix(lines[2], "customer rotating role") {
		t.Errorf("globex line %q", lines[2])
	}

	b.Reset()
	closed := time.Date(2024, 5, 10, 4, 1, 0, 0, time.UTC)
	err = writeRunsTable(&b, []schedules.Run{
		{WorkflowID: "s3-export-acme-2024-05-10T15:00:00Z", Status: "Running", StartTime: time.Date(2024, 5, 10, 15, 0, 1, 0, time.UTC), DumpFolder: "2024-05-10T15:00", ExportState: "exporting"},
		{WorkflowID: "s3-export-acme-2024-05-10T04:00:00Z", Status: "Completed", StartTime: time.Date(2024, 5, 10, 4, 0, 1, 0, time.UTC), CloseTime: &closed, DumpFolder: "2024-05-10T04:00", ExportState: "complete"},
	})
	if err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"WORKFLOW ID", "DUMP FOLDER", "EXPORT STATE", "Running", "2024-05-10T15:00:01Z  -", "2024-05-10T04:01:00Z", "complete"} {
		if !strings.Contains(out, want) {
			t.Errorf("runs table lacks %q:\n%s", want, out)
		}
	}

	b.Reset()
	err = writeProgress(&b, "s3-export-acme-x", true, workflows.Progress{DumpFolder: "2024-05-10T15:00", State: "exporting", Reruns: 1,
		Tables: map[string]*workflows.TableProgress{"events": {State: "failed", LastError: "boom"}, "companies": {State: "done", Files: 3, Rows: 1234567, Passes: 1}}}, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	out = b.String()
	if !strings.Contains(out, "events error: boom") || strings.Index(out, "companies") > strings.Index(out, "events") || !strings.Contains(out, "reruns requested: 1") {
		t.Errorf("progress:\n%s", out)
	}
	if !regexp.MustCompile(`companies +done +3 +1,234,567 +1`).MatchString(out) || !regexp.MustCompile(`TOTAL +1/2 done \(50%\) +3 +1,234,567`).MatchString(out) {
		t.Errorf("progress lacks the rows or the totals:\n%s", out)
	}

	// A table being exported shows the rows its last heartbeat reported out of BigQuery's
	// estimate; the total has a percentage once every table's count is known.
	b.Reset()
	err = writeProgress(&b, "s3-export-acme-x", true, workflows.Progress{DumpFolder: "2024-05-10T15:00", State: "exporting",
		Tables: map[string]*workflows.TableProgress{"events": {State: "exporting", Files: 0, Passes: 1}, "companies": {State: "done", Files: 3, Rows: 1000, Passes: 1}}},
		map[string]liveTable{"events": {Rows: 2500, Estimated: 10000}}, false)
	if err != nil {
		t.Fatal(err)
	}
	out = b.String()
	if !regexp.MustCompile(`events +exporting +0 +2,500 of ~10,000 \(25%\) +1`).MatchString(out) ||
		!regexp.MustCompile(`TOTAL +1/2 done \(50%\) +3 +3,500 of ~11,000 \(31%\)`).MatchString(out) {
		t.Errorf("live progress:\n%s", out)
	}

	// A parked dump leads with its cause and fix on one line; the SDK's and AWS's details
	// only with verbose.
	since := time.Date(2024, 5, 10, 15, 0, 30, 0, time.UTC)
	long := "account acme dump 2024-05-10T15:00: table events failed: activity error (type: ExportTable, scheduledEventID: 12, startedEventID: 13, identity: 1@w@): " +
		"writing s3://acme-data/x was denied: the role's permission policy must allow s3:PutObject and s3:PutObjectAcl on arn:aws:s3:::acme-data/*; also check the bucket policy: " +
		"operation error S3: PutObject, https response error StatusCode: 403, RequestID: R1, HostID: H1, api error AccessDenied: Access Denied. (type: PutObjectDenied, retryable: false)"
	parked := workflows.Progress{Account: "acme", State: workflows.StateWaitingForFix,
		Tables: map[string]*workflows.TableProgress{"events": {State: "failed", LastError: long, Passes: 1}},
		Parked: &workflows.ParkInfo{Type: "PutObjectDenied", Message: long, Since: since, Deadline: since.Add(12 * time.Hour),
			Causes: []workflows.ParkCause{{Table: "events", Type: "PutObjectDenied", Message: long}}}}
	b.Reset()
	if err := writeProgress(&b, "s3-export-acme-x", true, parked, nil, false); err != nil {
		t.Fatal(err)
	}
	out = b.String()
	lines = strings.Split(out, "\n")
	if want := "WAITING FOR A FIX (PutObjectDenied): table events: writing s3://acme-data/x was denied: the role's permission policy must allow s3:PutObject and s3:PutObjectAcl on arn:aws:s3:::acme-data/*"; lines[0] != want {
		t.Errorf("first line\n%s\nwant\n%s", lines[0], want)
	}
	for _, want := range []string{"starter validate acme", "starter retry acme", "fails at 2024-05-11T03:00:30Z", "waiting since 2024-05-10T15:00:30Z"} {
		if !strings.Contains(out, want) {
			t.Errorf("parked progress lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "RequestID") || strings.Contains(out, "scheduledEventID") || strings.Contains(out, "events error:") {
		t.Errorf("details or a repeated error without --verbose:\n%s", out)
	}
	b.Reset()
	if err := writeProgress(&b, "s3-export-acme-x", true, parked, nil, true); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "RequestID: R1") || !strings.Contains(b.String(), "scheduledEventID: 12") {
		t.Errorf("--verbose must print the whole error:\n%s", b.String())
	}
}

func TestSyncReport(t *testing.T) {
	o := schedules.Options{Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP, CatchupWindow: time.Hour, Jitter: 10 * time.Minute, TaskQueue: "q"}
	rep := schedules.Report{DryRun: true, Results: []schedules.Result{
		{ScheduleID: "s3-export-acme", Outcome: schedules.Created, Times: []string{"04:00", "15:00"}},
		{ScheduleID: "s3-export-globex", Outcome: schedules.Unchanged, Times: []string{"04:00"}},
		{ScheduleID: "s3-export-gone", Outcome: schedules.Kept},
	}}
	var b bytes.Buffer
	writeSyncReport(&b, o, rep)
	out := b.String()
	for _, want := range []string{
		"policies: overlap skip, catch-up window 1h0m0s, jitter 10m0s, spread 0s, task queue q",
		"dry run: the plan below changes nothing",
		"create    s3-export-acme  04:00,15:00",
		"unchanged s3-export-globex  04:00",
		"kept      s3-export-gone  (absent from the file; --prune deletes)",
		"plan (dry run, nothing changed): 3 schedules: create 1, update 0, unchanged 1, kept 1",
		"kept 1 schedule of accounts absent from the file",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	rep.DryRun, rep.Prune = false, true
	rep.Results[2].Outcome = schedules.Deleted
	b.Reset()
	writeSyncReport(&b, o, rep)
	if out := b.String(); !strings.Contains(out, "deleted   s3-export-gone  (absent from the file)") ||
		!strings.Contains(out, "total: 3 schedules: created 1, updated 0, unchanged 1, deleted 1\n") {
		t.Errorf("prune report:\n%s", out)
	}
}

func TestProgressReportsRate(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b, "sync")
	clock := p.start
	p.clock = func() time.Time { return clock }
	p.update(1, 100)
	clock = clock.Add(3 * time.Second)
	p.update(60, 100)
	p.update(61, 100) // within 2s of the last line: quiet
	clock = clock.Add(time.Second)
	p.update(100, 100)
	p.finish()
	want := "sync: 60/100 schedules, 3s, 20/s\nsync: 100/100 schedules in 4s (25/s)\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestParkedNamesTheTable(t *testing.T) {
	msg := "bucket \"acme-dta\" does not exist: check the bucket name in the account settings (the name, not the ARN): operation error S3: PutObject, https response error StatusCode: 404, RequestID: X, HostID: Y, api error NoSuchBucket: The specified bucket does not exist"
	other := "reading BigQuery table p.d.events was denied: the worker's Google identity needs roles/bigquery.dataViewer on the dataset: rpc error: code = PermissionDenied desc = no"
	p := workflows.Progress{Account: "acme", State: workflows.StateWaitingForFix, Parked: &workflows.ParkInfo{Type: "BucketNotFound", Message: msg,
		Causes: []workflows.ParkCause{{Table: "revenue", Type: "BucketNotFound", Message: msg}, {Table: "events", Type: "BigQueryPermissionDenied", Message: other}}}}
	var b bytes.Buffer
	writeParked(&b, p, false)
	lines := strings.Split(b.String(), "\n")
	if lines[0] != `WAITING FOR A FIX (BucketNotFound): table revenue: bucket "acme-dta" does not exist: check the bucket name in the account settings (the name, not the ARN)` {
		t.Errorf("first line: %s", lines[0])
	}
	if lines[1] != "  also events (BigQueryPermissionDenied): reading BigQuery table p.d.events was denied: the worker's Google identity needs roles/bigquery.dataViewer on the dataset" {
		t.Errorf("second cause: %s", lines[1])
	}
}
