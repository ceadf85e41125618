package main

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
)

const cancelHelp = `starter cancel ACCOUNT --reason TEXT [--wait 30s]

Cancels the account's running dump, working or waiting for a fix (waiting_for_fix): the
dump stops its tables and ends as canceled (ExportState cancelled). Canceled before it
writes its receipt, its folder stays without one: incomplete, which loaders that wait for
the receipt ignore. The schedule is not touched: the next scheduled dump runs as usual
(pause the schedule to stop those).

The reason is required: it is recorded with the cancel request in the dump's history (the
WorkflowExecutionCancelRequested event, shown in the Temporal Web UI) together with who
asked, and printed. --wait is how long to wait for the dump to end (0: do not wait); a
dump ends no earlier than the end of the minute it started in.`

func (a *app) cancel(ctx context.Context, args []string) error {
	c := a.newCommand("cancel", cancelHelp, true)
	reason := c.fs.String("reason", "", "why the dump is canceled (recorded in its history)")
	wait := c.fs.Duration("wait", 30*time.Second, "how long to wait for the dump to end (0: do not wait)")
	account, err := c.parse(args, true)
	if err != nil {
		return err
	}
	if strings.TrimSpace(*reason) == "" {
		return usagef("cancel: --reason TEXT is required: say why, e.g. --reason \"customer asked to stop, ticket 123\"")
	}
	if *wait < 0 {
		return usagef("cancel: --wait %s must not be negative", *wait)
	}
	cl, id, err := c.runningDump(ctx, account, "nothing to cancel")
	if err != nil {
		return err
	}
	defer cl.Close()
	state := ""
	if p, err := queryProgress(ctx, cl, id, 10*time.Second); err == nil {
		state = " (state " + p.State + ")"
	}
	r := fmt.Sprintf("%s (by %s via starter cancel)", strings.TrimSpace(*reason), operator())
	if err := cl.CancelWorkflowWithOptions(ctx, client.CancelWorkflowOptions{WorkflowID: id, Reason: r}); err != nil {
		return fmt.Errorf("cancel %s: %w", id, err)
	}
	fmt.Fprintf(a.out, "cancel requested for dump %s%s: reason %q\n", id, state, r)
	if *wait == 0 {
		fmt.Fprintf(a.out, "follow it with `starter runs %s`\n", account)
		return nil
	}
	deadline := time.Now().Add(*wait)
	for {
		d, err := cl.DescribeWorkflowExecution(ctx, id, "")
		if err != nil {
			return fmt.Errorf("describe %s: %w", id, err)
		}
		st := d.GetWorkflowExecutionInfo().GetStatus()
		if st != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			fmt.Fprintf(a.out, "dump %s ended: %s\n", id, st.String())
			return nil
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(a.out, "dump %s is still stopping after %s (its tables stop at their next heartbeat, and a dump ends no earlier than the end of the minute it started in); follow it with `starter runs %s`\n", id, *wait, account)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// operator names who runs the command, for the dump's history: user@host.
func operator() string {
	name := "unknown"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		name += "@" + h
	}
	return name
}
