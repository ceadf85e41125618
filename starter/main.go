// Command starter is the operator's command line: it syncs schedules from the accounts file,
// starts dumps, shows their progress and asks for reruns.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/dreamdata/destination-aws-s3/internal/config"
	"github.com/dreamdata/destination-aws-s3/internal/schedules"
	"github.com/dreamdata/destination-aws-s3/internal/settings"
	"github.com/dreamdata/destination-aws-s3/workflows"
)

const usage = `starter: operate Destination AWS S3 dumps.

Commands:
  schedules sync --accounts FILE   create, update or delete one schedule per account
                                   (04:00 and 15:00 UTC for paid accounts, 04:00 for free)
  run ACCOUNT [--wait]             start a dump of ACCOUNT now, through its schedule
  status ACCOUNT                   per-table progress of the account's current or last dump
  rerun ACCOUNT [--tables a,b]     re-export the whole running dump, or chosen tables,
                                   and rewrite its receipt

Every command takes --temporal-address (env TEMPORAL_ADDRESS, default localhost:7233) and
--temporal-namespace (env TEMPORAL_NAMESPACE, default "default"). Run "starter COMMAND -h"
for a command's flags.
`

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		fmt.Print(usage)
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "schedules":
		if len(args) == 0 || args[0] != "sync" {
			err = errors.New("usage: starter schedules sync --accounts FILE")
			break
		}
		err = schedulesSync(ctx, args[1:])
	case "run":
		err = run(ctx, args)
	case "status":
		err = status(ctx, args)
	case "rerun":
		err = rerun(ctx, args)
	default:
		err = fmt.Errorf("unknown command %q\n\n%s", cmd, usage)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// command parses a command's flags; the first non-flag argument is the account, if wanted.
type command struct {
	fs       *flag.FlagSet
	temporal *settings.Temporal
}

func newCommand(name, help string) *command {
	fs := flag.NewFlagSet(name, flag.ExitOnError)
	c := &command{fs: fs, temporal: settings.RegisterTemporal(fs)}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "%s\n\nFlags:\n", help)
		fs.PrintDefaults()
	}
	return c
}

// parse accepts the account argument before or after the flags.
func (c *command) parse(args []string, wantAccount bool) (string, error) {
	var account string
	if wantAccount && len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		account, args = args[0], args[1:]
	}
	if err := c.fs.Parse(args); err != nil {
		return "", err
	}
	if wantAccount && account == "" {
		account = c.fs.Arg(0)
	}
	if wantAccount && account == "" {
		return "", fmt.Errorf("%s: name the account", c.fs.Name())
	}
	return account, nil
}

func (c *command) dial() (client.Client, error) {
	cl, err := client.Dial(client.Options{HostPort: c.temporal.Address, Namespace: c.temporal.Namespace})
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s: %w", c.temporal.Address, err)
	}
	return cl, nil
}

func schedulesSync(ctx context.Context, args []string) error {
	c := newCommand("schedules sync", "starter schedules sync --accounts FILE: make the schedules match the accounts file (idempotent).")
	accounts := c.fs.String("accounts", settings.Env("ACCOUNTS_FILE", ""), "accounts file (YAML or JSON) (env ACCOUNTS_FILE)")
	jitter := c.fs.Duration("jitter", 0, "spread each account's start over this window (e.g. 10m) to avoid thundering herds")
	if _, err := c.parse(args, false); err != nil {
		return err
	}
	if *accounts == "" {
		return errors.New("schedules sync: --accounts FILE is required")
	}
	f, err := config.Load(*accounts)
	if err != nil {
		return err
	}
	cl, err := c.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	results, err := schedules.Sync(ctx, cl, f, schedules.Options{Jitter: *jitter})
	for _, r := range results {
		fmt.Printf("%-9s %s  %s\n", r.Outcome, r.ScheduleID, strings.Join(r.Times, ","))
	}
	return err
}

func run(ctx context.Context, args []string) error {
	c := newCommand("run", "starter run ACCOUNT [--wait]: start a dump of ACCOUNT now through its schedule.")
	wait := c.fs.Bool("wait", false, "wait for the dump to finish and print its receipt")
	account, err := c.parse(args, true)
	if err != nil {
		return err
	}
	cl, err := c.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	id, err := schedules.Trigger(ctx, cl, account)
	if err != nil {
		return err
	}
	fmt.Printf("started dump %s\n", id)
	if !*wait {
		return nil
	}
	var res workflows.ExportResult
	if err := cl.GetWorkflow(ctx, id, "").Get(ctx, &res); err != nil {
		return fmt.Errorf("dump %s failed: %w", id, err)
	}
	out, _ := json.MarshalIndent(res.Receipt, "", "  ")
	fmt.Printf("dump %s complete: s3 key %s\n%s\n", id, res.ReceiptKey, out)
	return nil
}

func status(ctx context.Context, args []string) error {
	c := newCommand("status", "starter status ACCOUNT: per-table progress of the account's running or last dump.")
	asJSON := c.fs.Bool("json", false, "print the progress as JSON")
	account, err := c.parse(args, true)
	if err != nil {
		return err
	}
	cl, err := c.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	id, running, err := schedules.CurrentRun(ctx, cl, account)
	if err != nil {
		return err
	}
	v, err := cl.QueryWorkflow(ctx, id, "", workflows.QueryProgress)
	if err != nil {
		return fmt.Errorf("query %s: %w", id, err)
	}
	var p workflows.Progress
	if err := v.Get(&p); err != nil {
		return err
	}
	if *asJSON {
		out, _ := json.MarshalIndent(p, "", "  ")
		fmt.Println(string(out))
		return nil
	}
	fmt.Printf("dump %s  folder %s  state %s  running %v\n", id, p.DumpFolder, p.State, running)
	names := make([]string, 0, len(p.Tables))
	for n := range p.Tables {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Printf("%-20s %-12s %8s %12s\n", "TABLE", "STATE", "FILES", "ROWS")
	for _, n := range names {
		t := p.Tables[n]
		fmt.Printf("%-20s %-12s %8d %12d\n", n, t.State, t.Files, t.Rows)
		if t.LastError != "" {
			fmt.Printf("  error: %s\n", t.LastError)
		}
	}
	return nil
}

func rerun(ctx context.Context, args []string) error {
	c := newCommand("rerun", "starter rerun ACCOUNT [--tables a,b]: re-export tables of the running dump and rewrite its receipt.")
	tables := c.fs.String("tables", "", "comma-separated tables; empty means every table")
	account, err := c.parse(args, true)
	if err != nil {
		return err
	}
	cl, err := c.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	id, running, err := schedules.CurrentRun(ctx, cl, account)
	if err != nil {
		return err
	}
	if !running {
		return fmt.Errorf("account %s has no running dump (last: %s); start a new one with `starter run %s`", account, id, account)
	}
	req := workflows.RerunRequest{}
	if *tables != "" {
		req.Tables = strings.Split(*tables, ",")
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := cl.SignalWorkflow(sctx, id, "", workflows.SignalRerun, req); err != nil {
		return fmt.Errorf("signal %s: %w", id, err)
	}
	fmt.Printf("rerun requested on %s: %s\n", id, orAll(req.Tables))
	return nil
}

func orAll(t []string) string {
	if len(t) == 0 {
		return "all tables"
	}
	return strings.Join(t, ", ")
}
