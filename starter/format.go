package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dreamdata/destination-aws-s3/internal/schedules"
	"github.com/dreamdata/destination-aws-s3/workflows"
)

// utc formats a time for operators: always UTC, to the second.
func utc(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// writeScheduleTable prints one line per schedule.
func writeScheduleTable(w io.Writer, infos []schedules.Info) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tSTATE\tTIMES (UTC)\tOVERLAP\tNEXT RUNS (UTC)\tNOTE")
	for _, in := range infos {
		state := "active"
		if in.Paused {
			state = "paused"
		}
		if len(in.Running) > 0 {
			state += ", running"
		}
		var next []string
		for i, t := range in.NextRuns {
			if i == 2 {
				break
			}
			next = append(next, utc(t))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", in.Account, state, orDash(strings.Join(in.TimesUTC, ",")), in.Overlap,
			orDash(strings.Join(next, " ")), orDash(in.Note))
	}
	return tw.Flush()
}

// writeRunsTable prints one line per dump.
func writeRunsTable(w io.Writer, runs []schedules.Run) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKFLOW ID\tSTATUS\tSTARTED (UTC)\tCLOSED (UTC)\tDUMP FOLDER\tEXPORT STATE")
	for _, r := range runs {
		closed := "-"
		if r.CloseTime != nil {
			closed = utc(*r.CloseTime)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.WorkflowID, r.Status, utc(r.StartTime), closed, orDash(r.DumpFolder), orDash(r.ExportState))
	}
	return tw.Flush()
}

// writeProgress prints a dump's per-table progress.
func writeProgress(w io.Writer, id string, running bool, p workflows.Progress) error {
	fmt.Fprintf(w, "dump %s  folder %s  state %s  running %v\n", id, p.DumpFolder, p.State, running)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tSTATE\tFILES\tROWS\tPASSES")
	for _, n := range sortedKeys(p.Tables) {
		t := p.Tables[n]
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\n", n, t.State, t.Files, t.Rows, t.Passes)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range sortedKeys(p.Tables) {
		// A parked dump's message already carries the failed table's error.
		if e := p.Tables[n].LastError; e != "" && (p.Parked == nil || !strings.Contains(p.Parked.Message, e)) {
			fmt.Fprintf(w, "%s error: %s\n", n, e)
		}
	}
	if p.Reruns > 0 {
		fmt.Fprintf(w, "reruns requested: %d\n", p.Reruns)
	}
	if p.Retries > 0 {
		fmt.Fprintf(w, "retries after a fix: %d\n", p.Retries)
	}
	if k := p.Parked; k != nil {
		fmt.Fprintf(w, "WAITING FOR A FIX since %s (%s): %s\n", utc(k.Since), k.Type, k.Message)
		fmt.Fprintf(w, "fix it, check with `starter validate %s --accounts FILE`, then `starter retry %s`; otherwise the dump fails at %s, before the next scheduled one\n",
			p.Account, p.Account, utc(k.Deadline))
	}
	return nil
}
