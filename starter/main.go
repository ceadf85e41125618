// Command starter is the operator's command line: it syncs and operates the accounts'
// schedules, starts dumps and follows them, and helps set up and check a customer's AWS side.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/dreamdata/destination-aws-s3/internal/buildinfo"
	"github.com/dreamdata/destination-aws-s3/internal/config"
	"github.com/dreamdata/destination-aws-s3/internal/settings"
)

const usage = `starter: operate Destination AWS S3 dumps.

Schedules (one Temporal Schedule per account, id s3-export-<account>):
  schedules sync --accounts FILE     create or update one schedule per account
        [--dry-run] [--prune] [--jitter 10m] [--spread 0] [--task-queue Q]
        [--overlap skip] [--catchup-window 1h]
                                     (--dry-run: the plan only; --prune: also delete the
                                     schedules of accounts absent from the file)
  schedules list [--json]            every schedule: paused or not, note, times, next runs (UTC)
  schedules pause ACCOUNT --note TEXT    stop starting dumps (a running dump continues)
  schedules unpause ACCOUNT [--note TEXT]
  schedules trigger ACCOUNT          start a dump now through the schedule, do not wait
  schedules backfill ACCOUNT --from RFC3339 --to RFC3339
                                     take now the dumps scheduled in a past period

Dumps:
  run ACCOUNT [--wait]               start a dump now through the schedule (--wait: a line
                                     per table; stops, exit 3, if the dump waits for a fix)
  status ACCOUNT [--json] [--verbose]
                                     progress of the current or last dump, with totals
  runs ACCOUNT [--limit 10] [--status S] [--json]
                                     recent dumps, newest first, from Temporal visibility
  rerun ACCOUNT [--tables a,b]       re-export the running dump, or chosen tables of it
  retry ACCOUNT [--note TEXT]        resume a dump waiting for a fix (waiting_for_fix), once
                                     the cause is fixed (check with validate)
  cancel ACCOUNT --reason TEXT       cancel the running (or waiting) dump; the reason is
                                     recorded in its history

Customer setup:
  policy ACCOUNT (--accounts FILE | --bucket B [--prefix P] [--kms-key-arn K])
        [--exporter-role-arn ARN] [--json]
                                     the IAM trust, permissions and KMS policies to paste,
                                     and an AWS CLI recipe that creates the role
  validate ACCOUNT --accounts FILE [--json]
                                     check the customer's role and bucket from the platform's
                                     identity: ExternalId enforced, role assumable, test write

Commands that talk to Temporal connect with the SDK's environment configuration
(TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*, TEMPORAL_PROFILE,
TEMPORAL_CONFIG_FILE; see docs/deploy-temporal.md); --temporal-address and
--temporal-namespace override it. "starter --version" prints the build.
Run "starter COMMAND -h" (e.g. "starter schedules pause -h") for a command's flags.
Exit status: 0 success, 1 failure, 2 a mistake in the command line, 3 run --wait stopped
because the dump waits for a fix.
`

const schedulesHelp = `starter schedules SUBCOMMAND [flags]

Operates the accounts' Temporal Schedules: one per account, id s3-export-<account>, which
starts the account's dumps at its UTC times (and manual runs, so one dump at a time holds).

Subcommands:
  sync      make the schedules match the accounts file (--dry-run shows the plan; only
            --prune deletes the schedules of accounts absent from the file)
  list      every schedule: paused or not, note, UTC times, overlap, next runs
  pause     stop an account's scheduled dumps (--note TEXT says why)
  unpause   resume them
  trigger   start a dump now, through the schedule
  backfill  take now the dumps scheduled in a past period

Run "starter schedules SUBCOMMAND -h" for a subcommand's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a := &app{out: os.Stdout, errOut: os.Stderr, now: time.Now}
	os.Exit(a.main(ctx, os.Args[1:]))
}

// app is the command line with its outputs injected, so tests can run commands in-process.
type app struct {
	out, errOut io.Writer
	now         func() time.Time
}

// exitError ends the command with a status and no further message (the command has already
// said what went wrong, e.g. a validation report).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// main runs one command line and returns the exit status: 0 success, 1 failure, 2 usage.
func (a *app) main(ctx context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(a.errOut, usage)
		return 2
	}
	err := a.dispatch(ctx, args)
	var ee exitError
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue):
		fmt.Fprintln(a.errOut, "error:", err)
		fmt.Fprintf(a.errOut, "run \"starter %s -h\" for help\n", commandName(args))
		return 2
	default:
		fmt.Fprintln(a.errOut, "error:", err)
		return 1
	}
}

func commandName(args []string) string {
	if len(args) > 1 && args[0] == "schedules" && !strings.HasPrefix(args[1], "-") {
		return "schedules " + args[1]
	}
	return args[0]
}

func (a *app) dispatch(ctx context.Context, args []string) error {
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "-h", "--help", "-help", "help":
		if len(rest) > 0 {
			return a.dispatch(ctx, append(rest, "-h"))
		}
		fmt.Fprint(a.out, usage)
		return nil
	case "--version", "-version", "version":
		fmt.Fprintln(a.out, buildinfo.Get().String("starter"))
		return nil
	case "schedules":
		return a.schedules(ctx, rest)
	case "run":
		return a.run(ctx, rest)
	case "status":
		return a.status(ctx, rest)
	case "rerun":
		return a.rerun(ctx, rest)
	case "retry":
		return a.retry(ctx, rest)
	case "cancel":
		return a.cancel(ctx, rest)
	case "runs":
		return a.runs(ctx, rest)
	case "validate":
		return a.validate(ctx, rest)
	case "policy":
		return a.policy(ctx, rest)
	}
	return usagef("unknown command %q; commands: schedules, run, status, runs, rerun, retry, cancel, policy, validate (see \"starter -h\")", cmd)
}

func (a *app) schedules(ctx context.Context, args []string) error {
	const sub = "sync, list, pause, unpause, trigger, backfill"
	if len(args) == 0 {
		return usagef("schedules needs a subcommand: %s", sub)
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "-h", "--help", "-help", "help":
		if len(rest) > 0 && cmd == "help" {
			return a.schedules(ctx, append(rest[:1:1], "-h"))
		}
		fmt.Fprint(a.out, schedulesHelp)
		return nil
	case "sync":
		return a.schedulesSync(ctx, rest)
	case "list":
		return a.schedulesList(ctx, rest)
	case "pause":
		return a.schedulesPause(ctx, rest, true)
	case "unpause":
		return a.schedulesPause(ctx, rest, false)
	case "trigger":
		return a.schedulesTrigger(ctx, rest)
	case "backfill":
		return a.schedulesBackfill(ctx, rest)
	default:
		return usagef("unknown schedules subcommand %q: use one of %s", cmd, sub)
	}
}

// command parses one command's flags.
type command struct {
	name     string
	fs       *flag.FlagSet
	temporal *settings.Temporal
	app      *app
	// env reads flag defaults from the environment and keeps every malformed value: the
	// command refuses to run (after -h, which still prints the help).
	env settings.Environment
	// envErrs are malformed values read outside env (durations).
	envErrs []error
}

// newCommand makes a command; help is printed above the flags by -h. withTemporal adds the
// Temporal connection flags.
func (a *app) newCommand(name, help string, withTemporal bool) *command {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(a.out)
	c := &command{name: name, fs: fs, app: a}
	if withTemporal {
		c.temporal = settings.RegisterTemporal(fs)
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "%s\n\nFlags:\n", strings.TrimSpace(help))
		fs.PrintDefaults()
	}
	return c
}

// parse reads the flags and the positional arguments; the account may come before or after
// the flags. wantAccount says whether the command needs one.
func (c *command) parse(args []string, wantAccount bool) (string, error) {
	var account string
	if wantAccount && len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		account, args = args[0], args[1:]
	}
	if err := c.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return "", err
		}
		return "", usageError{fmt.Sprintf("%s: %v", c.name, err)}
	}
	if err := errors.Join(append([]error{c.env.Err()}, c.envErrs...)...); err != nil {
		return "", fmt.Errorf("%s: %w", c.name, err)
	}
	rest := c.fs.Args()
	if wantAccount && account == "" && len(rest) > 0 {
		account, rest = rest[0], rest[1:]
	}
	if len(rest) > 0 {
		return "", usagef("%s: unexpected argument %q (flags go before or after the account, not between values)", c.name, rest[0])
	}
	if wantAccount {
		if account == "" {
			return "", usagef("%s: name the account, e.g. starter %s acme", c.name, c.name)
		}
		if err := config.ValidateAccountID(account); err != nil {
			return "", usagef("%s: %v", c.name, err)
		}
	}
	return account, nil
}

func (c *command) dial() (client.Client, error) {
	return dialTemporal(c.fs) // starter/temporal.go
}

// loadAccount reads the accounts file and finds the account in it; an unknown account lists
// the known ones.
func loadAccount(path, account string) (*config.File, config.Account, error) {
	if path == "" {
		return nil, config.Account{}, usagef("--accounts FILE is required (or set ACCOUNTS_FILE)")
	}
	f, err := config.Load(path)
	if err != nil {
		return nil, config.Account{}, err
	}
	acc, err := f.Account(account)
	if err != nil {
		return nil, config.Account{}, err
	}
	return f, acc, nil
}

func sortedKeys[V any](m map[string]V) []string {
	k := make([]string, 0, len(m))
	for n := range m {
		k = append(k, n)
	}
	sort.Strings(k)
	return k
}

// quietLogger keeps the Temporal client's own logging off the operator's terminal; errors
// come back as values and are printed once.
type quietLogger struct{}

func (quietLogger) Debug(string, ...interface{}) {}
func (quietLogger) Info(string, ...interface{})  {}
func (quietLogger) Warn(string, ...interface{})  {}
func (quietLogger) Error(string, ...interface{}) {}
