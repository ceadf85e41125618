//go:build integration

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	enumspb "go.temporal.io/api/enums/v1"
	"gopkg.in/yaml.v3"

	"github.com/dreamdata/destination-aws-s3/internal/accesscheck"
	"github.com/dreamdata/destination-aws-s3/internal/config"
	"github.com/dreamdata/destination-aws-s3/internal/devstack"
	"github.com/dreamdata/destination-aws-s3/internal/failure"
	"github.com/dreamdata/destination-aws-s3/internal/policy"
	"github.com/dreamdata/destination-aws-s3/internal/schedules"
	"github.com/dreamdata/destination-aws-s3/workflows"
)

// The CLI tests run the real starter binary, as an operator would, against the stack of
// TestMain (its in-process worker executes the dumps). CLI_TRANSCRIPT=FILE also writes every
// command and its output to FILE (docs/operations-cli.md quotes such a transcript).

var (
	starterOnce sync.Once
	starterPath string
	starterErr  error
)

func starterBinary(t *testing.T) string {
	t.Helper()
	starterOnce.Do(func() {
		// A fixed path, rebuilt by every run, so runs do not pile up binaries.
		dir := filepath.Join(os.TempDir(), "destination-aws-s3-e2e")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			starterErr = err
			return
		}
		starterPath = filepath.Join(dir, "starter")
		if out, err := exec.Command("go", "build", "-o", starterPath, "../../starter").CombinedOutput(); err != nil {
			starterErr = fmt.Errorf("build starter: %v\n%s", err, out)
		}
	})
	if starterErr != nil {
		t.Fatal(starterErr)
	}
	return starterPath
}

type cliResult struct {
	code           int
	stdout, stderr string
}

var (
	transcriptMu sync.Mutex
	// tempPath matches the tests' temporary directories, left out of the transcript.
	tempPath = regexp.MustCompile(`/tmp/\S+/(accounts\.yaml)`)
)

// starter runs the starter binary with the stack's environment (the worker's: Temporal
// address, the platform's AWS identity, the S3/STS endpoints); extraEnv overrides it.
func starter(t *testing.T, extraEnv []string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, starterBinary(t), args...)
	cmd.Env = append(append(os.Environ(), stack.WorkerEnv()...), extraEnv...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := cliResult{stdout: out.String(), stderr: errOut.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("starter %v: %v", args, err)
	}
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = a
		if strings.ContainsAny(a, " \"'") {
			quoted[i] = "'" + a + "'"
		}
	}
	shown := "$ starter " + strings.Join(quoted, " ") + "\n" + r.stdout + r.stderr
	if r.code != 0 {
		shown += fmt.Sprintf("(exit status %d)\n", r.code)
	}
	t.Log("\n" + shown)
	if p := os.Getenv("CLI_TRANSCRIPT"); p != "" {
		shown = tempPath.ReplaceAllString(shown, "$1")
		transcriptMu.Lock()
		f, ferr := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if ferr == nil {
			_, _ = f.WriteString(shown + "\n")
			_ = f.Close()
		}
		transcriptMu.Unlock()
	}
	assertNoSecrets(t, r.stdout+r.stderr)
	return r
}

func (r cliResult) must(t *testing.T, code int, contains ...string) cliResult {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit status %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	for _, s := range contains {
		if !strings.Contains(r.stdout+r.stderr, s) {
			t.Errorf("output lacks %q\nstdout:\n%s\nstderr:\n%s", s, r.stdout, r.stderr)
		}
	}
	return r
}

func writeAccounts(t *testing.T, accs ...config.Account) string {
	t.Helper()
	b, err := yaml.Marshal(config.File{Accounts: accs})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "accounts.yaml")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// eventually polls until cond holds (visibility and schedules answer asynchronously).
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

var startedID = regexp.MustCompile(`started dump (s3-export-\S+)`)

// smallAccount is a test account with two small tables, so its dumps take seconds (plus the
// hold until the end of the dump's minute).
func smallAccount(id string) config.Account {
	a := account(id, devstack.CustomerBucket)
	a.Tables = []string{"companies", "revenue"}
	return a
}

// TestCLISchedulesAndRuns drives the schedule and run commands end to end: sync with policy
// flags, list, pause/unpause, trigger, status, rerun, runs, backfill, and the errors an
// operator meets.
func TestCLISchedulesAndRuns(t *testing.T) {
	ctx := context.Background()
	ops, fill := smallAccount("cli-ops"), smallAccount("cli-fill")
	accounts := writeAccounts(t, ops, fill)
	t.Cleanup(func() {
		for _, id := range []string{ops.ID, fill.ID} {
			_ = tc.ScheduleClient().GetHandle(ctx, workflows.ScheduleID(id)).Delete(ctx)
		}
	})
	describe := func(account string) schedules.Info {
		t.Helper()
		in, err := schedules.Describe(ctx, tc, account)
		if err != nil {
			t.Fatal(err)
		}
		return in
	}

	// sync --dry-run: the plan, and nothing changes.
	starter(t, nil, "schedules", "sync", "--accounts", accounts, "--dry-run", "--jitter", "0").
		must(t, 0, "dry run: the plan below changes nothing", "create    s3-export-cli-ops  04:00,15:00", "create    s3-export-cli-fill", "plan (dry run, nothing changed): ")
	if _, err := tc.ScheduleClient().GetHandle(ctx, workflows.ScheduleID(ops.ID)).Describe(ctx); err == nil {
		t.Fatal("a dry run created a schedule")
	}

	// sync: policy flags reach the server; a second sync changes nothing; a changed flag updates.
	starter(t, nil, "schedules", "sync", "--accounts", accounts, "--overlap", "buffer_one", "--catchup-window", "30m", "--jitter", "0").
		must(t, 0, "overlap buffer_one, catch-up window 30m0s, jitter 0s", "created   s3-export-cli-ops  04:00,15:00", "created   s3-export-cli-fill", "total: ", "sync: ")
	d, err := tc.ScheduleClient().GetHandle(ctx, workflows.ScheduleID(ops.ID)).Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d.Schedule.Policy.Overlap != enumspb.SCHEDULE_OVERLAP_POLICY_BUFFER_ONE || d.Schedule.Policy.CatchupWindow != 30*time.Minute {
		t.Errorf("server has overlap %v, catch-up window %s", d.Schedule.Policy.Overlap, d.Schedule.Policy.CatchupWindow)
	}
	starter(t, nil, "schedules", "sync", "--accounts", accounts, "--overlap", "buffer_one", "--catchup-window", "30m", "--jitter", "0").
		must(t, 0, "unchanged s3-export-cli-ops")

	// An account absent from the file keeps its schedule unless --prune (here only planned:
	// a real prune would delete the other tests' schedules on this shared server).
	onlyOps := writeAccounts(t, ops)
	starter(t, nil, "schedules", "sync", "--accounts", onlyOps, "--overlap", "buffer_one", "--catchup-window", "30m", "--jitter", "0").
		must(t, 0, "unchanged s3-export-cli-ops", "kept      s3-export-cli-fill  (absent from the file; --prune deletes)", "kept 1 schedule of accounts absent from the file")
	if _, err := tc.ScheduleClient().GetHandle(ctx, workflows.ScheduleID(fill.ID)).Describe(ctx); err != nil {
		t.Fatalf("a sync without --prune deleted a schedule: %v", err)
	}
	starter(t, nil, "schedules", "sync", "--accounts", onlyOps, "--overlap", "buffer_one", "--catchup-window", "30m", "--jitter", "0", "--prune", "--dry-run").
		must(t, 0, "delete    s3-export-cli-fill  (absent from the file)")
	if _, err := tc.ScheduleClient().GetHandle(ctx, workflows.ScheduleID(fill.ID)).Describe(ctx); err != nil {
		t.Fatalf("a dry run deleted a schedule: %v", err)
	}

	// --task-queue and --spread reach the schedule: a throwaway account (no worker polls
	// its queue, and no dump of it runs).
	queued := smallAccount("cli-queue")
	t.Cleanup(func() { _ = tc.ScheduleClient().GetHandle(ctx, workflows.ScheduleID(queued.ID)).Delete(ctx) })
	off := schedules.Offset(queued.ID, 30*time.Minute)
	shifted, _ := schedules.ShiftTimes([]string{"04:00", "15:00"}, off)
	starter(t, []string{"TASK_QUEUE=e2e-elsewhere"}, "schedules", "sync", "--accounts", writeAccounts(t, queued), "--spread", "30m").
		must(t, 0, "jitter 10m0s, spread 30m0s, task queue e2e-elsewhere", "created   s3-export-cli-queue  "+strings.Join(shifted, ","))
	if in := describe(queued.ID); in.TaskQueue != "e2e-elsewhere" || in.Jitter != "10m0s" || strings.Join(in.TimesUTC, ",") != strings.Join(shifted, ",") {
		t.Errorf("schedule of cli-queue: queue %q jitter %q times %v, want e2e-elsewhere, 10m0s, %v", in.TaskQueue, in.Jitter, in.TimesUTC, shifted)
	}
	_ = tc.ScheduleClient().GetHandle(ctx, workflows.ScheduleID(queued.ID)).Delete(ctx)
	starter(t, nil, "schedules", "sync", "--accounts", accounts, "--overlap", "allow_all").must(t, 2, "refused", "same folder")

	// list: both schedules with their UTC times, policy and next runs.
	var list cliResult
	eventually(t, 30*time.Second, "schedules list to show both accounts", func() bool {
		list = starter(t, nil, "schedules", "list")
		return strings.Contains(list.stdout, ops.ID) && strings.Contains(list.stdout, fill.ID)
	})
	for _, line := range strings.Split(list.stdout, "\n") {
		if strings.HasPrefix(line, ops.ID+" ") {
			if !strings.Contains(line, "active") || !strings.Contains(line, "04:00,15:00") || !strings.Contains(line, "buffer_one") ||
				!regexp.MustCompile(`T(04|15):00:00Z`).MatchString(line) {
				t.Errorf("list line %q: want active, 04:00,15:00, buffer_one and next runs at 04:00 or 15:00 UTC", line)
			}
		}
	}
	var infos []schedules.Info
	if err := json.Unmarshal([]byte(starter(t, nil, "schedules", "list", "--json").must(t, 0).stdout), &infos); err != nil {
		t.Fatal(err)
	}
	if len(infos) < 2 || len(infos[0].NextRuns) == 0 {
		t.Errorf("list --json: %+v", infos)
	}

	// pause, with a note; a sync that updates the schedule keeps it paused with its note.
	starter(t, nil, "schedules", "pause", ops.ID, "--note", "e2e: customer rotating their role").must(t, 0, "paused s3-export-cli-ops", "customer rotating their role")
	if in := describe(ops.ID); !in.Paused || in.Note != "e2e: customer rotating their role" {
		t.Errorf("after pause: paused %v note %q", in.Paused, in.Note)
	}
	starter(t, nil, "schedules", "sync", "--accounts", accounts).must(t, 0, "overlap skip, catch-up window 1h0m0s", "updated   s3-export-cli-ops")
	if in := describe(ops.ID); in.Overlap != "skip" || in.CatchupWindow != "1h0m0s" || !in.Paused || in.Note != "e2e: customer rotating their role" {
		t.Errorf("after sync with defaults: overlap %s, catch-up window %s, paused %v, note %q", in.Overlap, in.CatchupWindow, in.Paused, in.Note)
	}
	starter(t, nil, "schedules", "list").must(t, 0, "paused", "e2e: customer rotating their role")
	starter(t, nil, "schedules", "pause", ops.ID).must(t, 2, "--note TEXT is required")
	starter(t, nil, "schedules", "unpause", ops.ID, "--note", "e2e: role fixed").must(t, 0, "unpaused s3-export-cli-ops", "next run: ")
	if in := describe(ops.ID); in.Paused || in.Note != "e2e: role fixed" {
		t.Errorf("after unpause: paused %v note %q", in.Paused, in.Note)
	}

	// Unknown accounts name the scheduled ones and the fix.
	for _, args := range [][]string{{"status", "cli-nope"}, {"schedules", "pause", "cli-nope", "--note", "x"}, {"schedules", "trigger", "cli-nope"}, {"rerun", "cli-nope"}} {
		starter(t, nil, args...).must(t, 1, `account "cli-nope" has no schedule`, "cli-fill, cli-ops", "starter schedules sync --accounts FILE")
	}
	starter(t, nil, "status", ops.ID).must(t, 1, "has no dump yet", "starter run cli-ops")

	// trigger: a dump starts through the schedule; a second trigger is refused while it runs.
	tr := starter(t, nil, "schedules", "trigger", ops.ID).must(t, 0, "started dump s3-export-cli-ops-")
	m := startedID.FindStringSubmatch(tr.stdout)
	if m == nil {
		t.Fatalf("no workflow id in %q", tr.stdout)
	}
	opsRun := m[1]
	starter(t, nil, "run", ops.ID).must(t, 1, "already has a dump running ("+opsRun+")")

	// backfill: yesterday's 04:00 dump of the other account, under its schedule's policy.
	y := time.Now().UTC().AddDate(0, 0, -1)
	at := time.Date(y.Year(), y.Month(), y.Day(), 4, 0, 0, 0, time.UTC)
	starter(t, nil, "schedules", "backfill", fill.ID, "--from", at.Add(time.Hour).Format(time.RFC3339), "--to", at.Add(2*time.Hour).Format(time.RFC3339)).
		must(t, 1, "has no run between", "04:00, 15:00", "widen the range")
	bf := starter(t, nil, "schedules", "backfill", fill.ID, "--from", at.Add(-time.Minute).Format(time.RFC3339), "--to", at.Add(time.Minute).Format(time.RFC3339)).
		must(t, 0, "(overlap skip)", "scheduled times in the period: "+at.Format("2006-01-02T15:04:05Z"))
	fillRun := workflows.ScheduleID(fill.ID) + "-" + at.Format(time.RFC3339)
	if !strings.Contains(bf.stdout, "started dump "+fillRun) {
		// The schedule may take a moment longer than the command waits; it must show up.
		eventually(t, 30*time.Second, "the backfilled dump", func() bool {
			in := describe(fill.ID)
			return in.LastRun != nil && in.LastRun.WorkflowID == fillRun
		})
	}

	// status and rerun while the dump runs (it holds until the end of its minute at least).
	eventually(t, 30*time.Second, "the dump to answer the progress query", func() bool {
		return starter(t, nil, "status", ops.ID).code == 0
	})
	st := starter(t, nil, "status", ops.ID).must(t, 0, "dump "+opsRun, "companies", "revenue", "TOTAL")
	if !strings.Contains(st.stdout, "running true") {
		t.Logf("the dump finished before status ran: %s", st.stdout)
	}
	if bad := starter(t, nil, "rerun", ops.ID, "--tables", "revenue,nosuchtable"); bad.code != 1 ||
		!strings.Contains(bad.stderr, "has no table nosuchtable") && !strings.Contains(bad.stderr, "the dump is complete") && !strings.Contains(bad.stderr, "has no running dump") {
		t.Errorf("a rerun naming an unknown table: exit %d, %s", bad.code, bad.stderr)
	}
	rerun := starter(t, nil, "rerun", ops.ID, "--tables", "revenue")
	switch {
	case rerun.code == 0:
		rerun.must(t, 0, "rerun accepted by "+opsRun, "will re-export revenue")
	case strings.Contains(rerun.stderr, "the dump is complete"):
		rerun.must(t, 1, "start a new dump with `starter run") // it wrote its receipt first: refused
	default:
		rerun.must(t, 1, "has no running dump") // it finished first: the error is the documented one
	}

	// runs: visibility lists the dump with its search attributes.
	var runs []schedules.Run
	eventually(t, 30*time.Second, "runs to list the dump with its DumpFolder", func() bool {
		r := starter(t, nil, "runs", ops.ID, "--json")
		runs = nil
		return r.code == 0 && json.Unmarshal([]byte(r.stdout), &runs) == nil && len(runs) > 0 && runs[0].WorkflowID == opsRun && runs[0].DumpFolder != ""
	})

	// Both dumps complete.
	for _, id := range []string{opsRun, fillRun} {
		wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		var res workflows.ExportResult
		err := tc.GetWorkflow(wctx, id, "").Get(wctx, &res)
		cancel()
		if err != nil {
			t.Fatalf("dump %s: %v", id, err)
		}
	}
	eventually(t, 30*time.Second, "runs to show the dump completed", func() bool {
		r := starter(t, nil, "runs", ops.ID, "--limit", "5")
		return strings.Contains(r.stdout, opsRun) && strings.Contains(r.stdout, "Completed") && strings.Contains(r.stdout, "complete")
	})
	r := starter(t, nil, "runs", ops.ID, "--limit", "5").must(t, 0, "WORKFLOW ID", "DUMP FOLDER", "EXPORT STATE", opsRun, "Completed")
	if !strings.Contains(r.stdout, runs[0].DumpFolder) {
		t.Errorf("runs lacks the dump folder %s", runs[0].DumpFolder)
	}
	starter(t, nil, "runs", ops.ID, "--status", "failed").must(t, 0, "no failed dumps of account cli-ops found")
	starter(t, nil, "status", ops.ID).must(t, 0, "state complete", "running false")
	starter(t, nil, "runs", fill.ID).must(t, 0, fillRun, "Completed")
	if rerun.code == 0 {
		var p workflows.Progress
		if err := json.Unmarshal([]byte(starter(t, nil, "status", ops.ID, "--json").must(t, 0).stdout), &p); err != nil {
			t.Fatal(err)
		}
		if p.Reruns != 1 || p.Tables["revenue"].Passes != 2 {
			t.Errorf("the rerun did not re-export revenue: %+v", p)
		}
	}
	// A waited run: a line per table as it finishes, then the summary (one more dump, up to a
	// minute).
	starter(t, nil, "run", fill.ID, "--wait").must(t, 0, "table companies done: ", "table revenue done: ", "complete: s3 key exports/cli-fill/receipt.json")
}

// TestCLIValidate checks a customer setup from the platform's identity, on the local STS and
// S3: MinIO ignores ExternalId, so the trust-policy check must WARN; the role and the test
// write must pass; a bucket the policy does not grant must fail with the fix.
func TestCLIValidate(t *testing.T) {
	ctx := context.Background()
	ok, denied := account("cli-valid", devstack.CustomerBucket), account("cli-denied", devstack.DeniedBucket)
	accounts := writeAccounts(t, ok, denied)

	text := starter(t, nil, "validate", ok.ID, "--accounts", accounts).must(t, 0,
		"WARN    trust policy requires sts:ExternalId", "WITHOUT an ExternalId", `"sts:ExternalId": "cli-valid"`,
		"OK      assume the role with ExternalId", "OK      write a test object", "bucket-owner-full-control", "SSE-KMS with key "+devstack.KMSKeyID,
		"Result: PASS with 1 warning:")
	if strings.Index(text.stdout, "WARN") > strings.Index(text.stdout, "OK ") {
		t.Error("the checks must be reported in order: trust policy, assume role, test write")
	}

	var rep accesscheck.Report
	js := starter(t, nil, "validate", ok.ID, "--accounts", accounts, "--json").must(t, 0)
	if err := json.Unmarshal([]byte(js.stdout), &rep); err != nil {
		t.Fatalf("%v\n%s", err, js.stdout)
	}
	want := map[string]accesscheck.Status{accesscheck.CheckExternalIDRequired: accesscheck.Warn, accesscheck.CheckAssumeRole: accesscheck.OK, accesscheck.CheckPutObject: accesscheck.OK}
	for _, c := range rep.Checks {
		if c.Status != want[c.Name] {
			t.Errorf("check %s: %s, want %s (%s)", c.Name, c.Status, want[c.Name], c.Message)
		}
	}
	if !rep.OK || rep.Warnings != 1 || !strings.HasPrefix(rep.TestObject, ok.Prefix+"/_destination_check/") {
		t.Errorf("report: ok %v warnings %d object %q", rep.OK, rep.Warnings, rep.TestObject)
	}
	// The test object landed where the report says, encrypted with the account's key.
	head, err := stack.RootS3().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(devstack.CustomerBucket), Key: aws.String(rep.TestObject)})
	if err != nil {
		t.Fatalf("test object %s: %v", rep.TestObject, err)
	}
	if string(head.ServerSideEncryption) != "aws:kms" {
		t.Errorf("test object encryption %q, want aws:kms", head.ServerSideEncryption)
	}

	// A bucket the role's policy does not grant: the write fails, with the policy line to fix.
	var drep accesscheck.Report
	dj := starter(t, nil, "validate", denied.ID, "--accounts", accounts, "--json").must(t, 1)
	if err := json.Unmarshal([]byte(dj.stdout), &drep); err != nil {
		t.Fatal(err)
	}
	if drep.OK || drep.Checks[2].Status != accesscheck.Fail || drep.Checks[2].Kind != string(failure.KindPutDenied) {
		t.Errorf("denied bucket: %+v", drep.Checks)
	}
	starter(t, nil, "validate", denied.ID, "--accounts", accounts).must(t, 1,
		"FAIL    write a test object", "s3:PutObject and s3:PutObjectAcl on arn:aws:s3:::denied-bucket/", "Result: FAIL")

	// Wrong platform credentials: the role cannot be assumed, nothing is written, and the
	// wrong secret is not echoed.
	const wrong = "not-the-exporter-secret-0123456789"
	bad := starter(t, []string{"AWS_SECRET_ACCESS_KEY=" + wrong}, "validate", ok.ID, "--accounts", accounts).
		must(t, 1, "FAIL    assume the role", "platform's own AWS credentials", "SKIPPED write a test object", "inconclusive")
	if strings.Contains(bad.stdout+bad.stderr, wrong) {
		t.Error("the secret was printed")
	}

	starter(t, nil, "validate", "cli-nope", "--accounts", accounts).must(t, 1, `account "cli-nope" is not in the accounts file (known: cli-valid, cli-denied)`)
}

// TestCLIPolicy prints the policies of an account and checks every one is valid JSON with
// the grants the exporter needs.
func TestCLIPolicy(t *testing.T) {
	a := account("cli-policy", devstack.CustomerBucket)
	a.KMSKeyARN = "arn:aws:kms:us-east-1:000000000000:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	accounts := writeAccounts(t, a)
	out := starter(t, nil, "policy", a.ID, "--accounts", accounts).must(t, 0,
		"## 1. Trust policy", "## 2. Permissions policy", "## 3. KMS policy", "## AWS CLI recipe", "aws iam create-role").stdout
	blocks := regexp.MustCompile(`(?ms)^(\{\n.*?\n\})$`).FindAllString(out, -1)
	if len(blocks) != 6 { // three policies, and the same three in the recipe
		t.Fatalf("found %d JSON documents, want 6:\n%s", len(blocks), out)
	}
	for _, b := range blocks {
		var d policy.Document
		if err := json.Unmarshal([]byte(b), &d); err != nil || d.Version != policy.Version || len(d.Statement) != 1 {
			t.Errorf("invalid policy %v:\n%s", err, b)
		}
	}
	var set policy.Set
	if err := json.Unmarshal([]byte(starter(t, nil, "policy", a.ID, "--accounts", accounts, "--json", "--exporter-role-arn", "arn:aws:iam::000000000000:role/platform-exporter").must(t, 0).stdout), &set); err != nil {
		t.Fatal(err)
	}
	if set.Trust.Statement[0].Principal["AWS"] != "arn:aws:iam::000000000000:role/platform-exporter" ||
		set.Trust.Statement[0].Condition["StringEquals"]["sts:ExternalId"] != a.ID ||
		set.Permissions.Statement[0].Resource[0] != "arn:aws:s3:::"+devstack.CustomerBucket+"/"+a.Prefix+"/*" ||
		set.KMS == nil || set.KMS.Statement[0].Resource[0] != a.KMSKeyARN {
		t.Errorf("policy set %+v", set)
	}
}

// TestCLIParkedDumpRetry: a dump stopped by a misconfiguration waits for a fix; status shows
// the cause and what to do, runs shows the state, validate reproduces the cause, and retry
// resumes the dump (which parks again, since nothing was fixed).
func TestCLIParkedDumpRetry(t *testing.T) {
	ctx := context.Background()
	parked := account("cli-parked", devstack.DeniedBucket)
	parked.Tables = []string{"revenue"}
	accounts := writeAccounts(t, parked)
	t.Cleanup(func() { _ = tc.ScheduleClient().GetHandle(ctx, workflows.ScheduleID(parked.ID)).Delete(ctx) })

	starter(t, nil, "schedules", "sync", "--accounts", accounts).must(t, 0, "created   s3-export-cli-parked")
	// run --wait does not wait for hours on a parked dump: it stops with the cause, exit 3.
	wr := starter(t, nil, "run", parked.ID, "--wait").must(t, 3, "WAITING FOR A FIX (PutObjectDenied): table revenue: writing s3://denied-bucket/",
		"s3:PutObject and s3:PutObjectAcl on arn:aws:s3:::denied-bucket/", "starter retry cli-parked", "stopped waiting")
	m := startedID.FindStringSubmatch(wr.stdout)
	if m == nil {
		t.Fatal("no workflow id")
	}
	id := m[1]
	defer func() { _ = tc.TerminateWorkflow(ctx, id, "", "test done") }()
	if strings.Contains(wr.stdout, "RequestID") || strings.Contains(wr.stdout, "scheduledEventID") {
		t.Errorf("run --wait printed the SDK's details without --verbose:\n%s", wr.stdout)
	}

	// status leads with the cause and the fix on one short line; --verbose has the details.
	st := starter(t, nil, "status", parked.ID).must(t, 0, "state waiting_for_fix", "(PutObjectDenied)", "s3:PutObject", "starter validate cli-parked", "starter retry cli-parked")
	if first := strings.SplitN(st.stdout, "\n", 2)[0]; !strings.HasPrefix(first, "WAITING FOR A FIX (PutObjectDenied): table revenue: writing s3://denied-bucket/") ||
		strings.Contains(st.stdout, "RequestID") || strings.Contains(st.stdout, "activity error") {
		t.Errorf("status must lead with the short cause:\n%s", st.stdout)
	}
	starter(t, nil, "status", parked.ID, "--verbose").must(t, 0, "RequestID", "StatusCode: 403")
	eventually(t, 30*time.Second, "runs to show waiting_for_fix", func() bool {
		return strings.Contains(starter(t, nil, "runs", parked.ID).stdout, workflows.StateWaitingForFix)
	})
	starter(t, nil, "validate", parked.ID, "--accounts", accounts).must(t, 1, "FAIL    write a test object")

	starter(t, nil, "retry", parked.ID, "--note", "e2e: policy fixed (not really)").
		must(t, 0, "retry accepted by "+id+" (it waited for: PutObjectDenied)", "resumes with revenue")
	eventually(t, time.Minute, "the retried dump to wait again", func() bool {
		r := starter(t, nil, "status", parked.ID)
		return strings.Contains(r.stdout, "retries after a fix: 1") && strings.Contains(r.stdout, "WAITING FOR A FIX")
	})

	// cancel: refused without a reason; with one, the dump ends canceled and its history
	// records the reason.
	starter(t, nil, "cancel", parked.ID).must(t, 2, "--reason TEXT is required")
	// (A dump ends no earlier than the end of the minute it started in: wait up to 90s.)
	starter(t, nil, "cancel", parked.ID, "--reason", "e2e: customer asked to stop", "--wait", "90s").
		must(t, 0, "cancel requested for dump "+id, "e2e: customer asked to stop", "ended: Canceled")
	it := tc.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	recorded := false
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := ev.GetWorkflowExecutionCancelRequestedEventAttributes(); a != nil && strings.Contains(a.GetCause(), "e2e: customer asked to stop") {
			recorded = true
		}
	}
	if !recorded {
		t.Error("the cancel reason is not in the dump's history")
	}
	eventually(t, 30*time.Second, "the schedule to see the dump end", func() bool {
		in, err := schedules.Describe(ctx, tc, parked.ID)
		return err == nil && len(in.Running) == 0
	})
	starter(t, nil, "retry", parked.ID).must(t, 1, "has no running dump", "starter run cli-parked")
}
