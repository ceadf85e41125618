package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dreamdata/destination-aws-s3/internal/humanize"
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

// writeProgress prints a dump's progress: a parked dump's cause and fix first, then the
// dump, one line per table and the totals.
func writeProgress(w io.Writer, id string, running bool, p workflows.Progress, live map[string]liveTable, verbose bool) error {
	if p.Parked != nil {
		writeParked(w, p, verbose)
	}
	fmt.Fprintf(w, "dump %s  folder %s  state %s  running %v\n", id, p.DumpFolder, p.State, running)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tSTATE\tFILES\tROWS\tPASSES")
	var files, done int
	var rows, expected int64
	known := true // every table's row count is known: the total has a percentage
	for _, n := range sortedKeys(p.Tables) {
		t := p.Tables[n]
		r, shown := t.Rows, humanize.Count(t.Rows)
		switch l, ok := live[n]; {
		case t.State == workflows.StateDone:
			expected += t.Rows
		case ok && t.State == workflows.StateExporting:
			r, shown = l.Rows, humanize.Count(l.Rows)
			if l.Estimated > 0 {
				shown += fmt.Sprintf(" of ~%s (%d%%)", humanize.Count(l.Estimated), percent(l.Rows, l.Estimated))
				expected += l.Estimated
			} else {
				known = false
			}
		default:
			known = false
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\n", n, t.State, t.Files, shown, t.Passes)
		files += t.Files
		rows += r
		if t.State == workflows.StateDone {
			done++
		}
	}
	if len(p.Tables) > 1 {
		total := humanize.Count(rows)
		if known && expected > 0 && done < len(p.Tables) {
			total += fmt.Sprintf(" of ~%s (%d%%)", humanize.Count(expected), percent(rows, expected))
		}
		fmt.Fprintf(tw, "TOTAL\t%d/%d done (%d%%)\t%d\t%s\t\n", done, len(p.Tables), done*100/len(p.Tables), files, total)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range sortedKeys(p.Tables) {
		e := p.Tables[n].LastError
		if e == "" || (p.Parked != nil && parkedTable(p.Parked, n)) {
			continue // a parked table's error leads the output already
		}
		fmt.Fprintf(w, "%s error: %s\n", n, message(e, verbose))
	}
	if p.Reruns > 0 {
		fmt.Fprintf(w, "reruns requested: %d\n", p.Reruns)
	}
	if p.Retries > 0 {
		fmt.Fprintf(w, "retries after a fix: %d\n", p.Retries)
	}
	return nil
}

// percent of part in whole, at most 100 (an estimate may be low).
func percent(part, whole int64) int64 {
	if whole <= 0 {
		return 0
	}
	return min(part*100/whole, 100)
}

// parkedTable says whether a parked dump waits for the table.
func parkedTable(k *workflows.ParkInfo, table string) bool {
	for _, c := range k.Causes {
		if c.Table == table {
			return true
		}
	}
	return len(k.Causes) == 0 && strings.Contains(k.Message, "table "+table+" ")
}

// writeParked leads with a parked dump's cause and fix on one line, then what to do.
func writeParked(w io.Writer, p workflows.Progress, verbose bool) {
	k := p.Parked
	fmt.Fprintf(w, "WAITING FOR A FIX (%s): %s\n", k.Type, withTable(causeTable(k), message(k.Message, verbose)))
	first := shortMessage(k.Message)
	for _, c := range k.Causes {
		if m := shortMessage(c.Message); m != first && !strings.Contains(first, m) {
			table := c.Table
			if table == "" {
				table = "access check"
			}
			fmt.Fprintf(w, "  also %s (%s): %s\n", table, c.Type, message(c.Message, verbose))
		}
	}
	fmt.Fprintf(w, "  then: check with `starter validate %s --accounts FILE`, resume with `starter retry %s`; unfixed, the dump fails at %s (waiting since %s)\n",
		p.Account, p.Account, utc(k.Deadline), utc(k.Since))
}

// causeTable is the table of a parked dump's first cause ("" for the access check or when
// the workflow did not say).
func causeTable(k *workflows.ParkInfo) string {
	for _, c := range k.Causes {
		if c.Message == k.Message && c.Type == k.Type {
			return c.Table
		}
	}
	return ""
}

// withTable puts "table T: " before a message that does not name its table yet.
func withTable(table, msg string) string {
	if table == "" || strings.HasPrefix(msg, "table "+table+":") || strings.Contains(msg, "table "+table+" failed") {
		return msg
	}
	return "table " + table + ": " + msg
}

// plural is "1 file" or "3 files".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
