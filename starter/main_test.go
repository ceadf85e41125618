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
		{"run"}, {"status"}, {"runs"}, {"rerun"}, {"retry"}, {"policy"}, {"validate"},
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
	o, err := syncOptions("buffer_one", 30*time.Minute, 5*time.Minute)
	if err != nil || o.Overlap != enumspb.SCHEDULE_OVERLAP_POLICY_BUFFER_ONE || o.CatchupWindow != 30*time.Minute || o.Jitter != 5*time.Minute {
		t.Errorf("%+v %v", o, err)
	}
	o, err = syncOptions("skip", schedules.DefaultCatchupWindow, 0)
	if err != nil || o.Overlap != enumspb.SCHEDULE_OVERLAP_POLICY_SKIP || o.CatchupWindow != time.Hour {
		t.Errorf("defaults %+v %v", o, err)
	}
	if _, err := syncOptions("skip", time.Hour, 7*time.Hour); err == nil {
		t.Error("a jitter longer than the gap between dumps must be refused")
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
		Tables: map[string]*workflows.TableProgress{"events": {State: "failed", LastError: "boom"}, "companies": {State: "done", Files: 3, Rows: 1200, Passes: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	first := b.String()
	b.Reset()
	since := time.Date(2024, 5, 10, 15, 0, 30, 0, time.UTC)
	err = writeProgress(&b, "s3-export-acme-x", true, workflows.Progress{Account: "acme", State: workflows.StateWaitingForFix,
		Parked: &workflows.ParkInfo{Type: "PutObjectDenied", Message: "writing was denied", Since: since, Deadline: since.Add(12 * time.Hour)}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"WAITING FOR A FIX since 2024-05-10T15:00:30Z (PutObjectDenied): writing was denied", "starter validate acme", "starter retry acme", "fails at 2024-05-11T03:00:30Z"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("parked progress lacks %q:\n%s", want, b.String())
		}
	}
	out = first
	if !strings.Contains(out, "events error: boom") || strings.Index(out, "companies") > strings.Index(out, "events") || !strings.Contains(out, "reruns requested: 1") {
		t.Errorf("progress:\n%s", out)
	}
}
