package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dreamdata/destination-aws-s3/internal/s3dest"
)

// ChildFlag is the flag that makes the bench binary (the command, or the package's test
// binary) run one export in a child process whose peak RSS the parent reads: `-rss-child=SPEC`.
const ChildFlag = "rss-child"

// secretEnv passes the local MinIO's throwaway exporter secret to the child, off its command
// line.
const secretEnv = "BENCH_EXPORTER_SECRET"

// childSpec is what a child exports: the source's table once per folder, all at once (one
// table export per folder, as a worker runs its activities).
type childSpec struct {
	Source   SourceOptions
	Upload   bool   // to MinIO at Endpoint; otherwise into a Discard writer
	Endpoint string `json:",omitempty"`
	Folders  []string
	TempDir  string `json:",omitempty"`
}

// childResult is what a child reports on stdout.
type childResult struct {
	Rows, ArrowBytes, ParquetBytes, PoolBytes int64
	Shards                                    int
	WallSeconds                               float64
	// HWM is the child's own peak RSS as its address space saw it (VmHWM in
	// /proc/self/status), a cross-check of the parent's rusage reading.
	HWM int64
	// PerExport is each export's output, in the order of the spec's folders.
	PerExport []exportOutput
}

// exportOutput is what one export of a child landed.
type exportOutput struct {
	Shards       int
	ParquetBytes int64
}

// ChildSpecFromArgs finds -rss-child=SPEC (or --rss-child=SPEC) in args, for a TestMain that
// must run the child before the testing package parses flags.
func ChildSpecFromArgs(args []string) (string, bool) {
	for _, a := range args {
		for _, p := range []string{"-" + ChildFlag + "=", "--" + ChildFlag + "="} {
			if s, ok := strings.CutPrefix(a, p); ok {
				return s, true
			}
		}
	}
	return "", false
}

// RunChild is the child's whole work: build the source, export it once per folder (all at
// once), print the result as JSON on out.
func RunChild(ctx context.Context, spec string, out io.Writer) error {
	var s childSpec
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		return fmt.Errorf("bench: bad child spec: %w", err)
	}
	src, err := NewSource(s.Source)
	if err != nil {
		return err
	}
	defer src.Release()
	var w s3dest.Writer = &Discard{}
	if s.Upload {
		if w, err = minioWriter(ctx, s.Endpoint, os.Getenv(secretEnv)); err != nil {
			return err
		}
	}
	if len(s.Folders) == 0 {
		return errors.New("bench: child spec has no folder")
	}
	runs := make([]exportRun, len(s.Folders))
	errs := make([]error, len(s.Folders))
	var wg sync.WaitGroup
	t0 := time.Now()
	for i, folder := range s.Folders {
		wg.Go(func() { runs[i], errs[i] = runExport(ctx, src, w, s.TempDir, folder) })
	}
	wg.Wait()
	res := childResult{PoolBytes: src.PoolBytes(), WallSeconds: time.Since(t0).Seconds()}
	for i, r := range runs {
		if errs[i] != nil {
			return errs[i]
		}
		res.Rows += r.Rows
		res.ArrowBytes += r.ArrowBytes
		res.ParquetBytes += r.ParquetBytes
		res.Shards += r.Shards
		res.PerExport = append(res.PerExport, exportOutput{Shards: r.Shards, ParquetBytes: r.ParquetBytes})
	}
	res.HWM = procStatus("VmHWM")
	return json.NewEncoder(out).Encode(res)
}

// rssRun is one child's export and its peak resident set.
type rssRun struct {
	childResult
	Upload    bool
	MaxRSS    int64 // bytes
	ParentRSS int64 // the parent's RSS when it started the child
	Elapsed   time.Duration
	fromHWM   bool // MaxRSS is the child's VmHWM: ru_maxrss only showed the parent's RSS
}

// measureRSS re-executes this binary with -rss-child and reads the child's peak RSS from
// its rusage (ru_maxrss, KiB on Linux).
//
// Go starts children with vfork, so the child begins life in the parent's address space, and
// Linux carries that address space's RSS high-water mark into the child's ru_maxrss at exec:
// a child would report at least the parent's own peak. So the parent first returns its free
// memory to the OS and resets its high-water mark to its current RSS (/proc/self/clear_refs),
// and the child reports its own VmHWM to check the reading.
func measureRSS(ctx context.Context, s childSpec, exporterSecret string, stderr io.Writer) (rssRun, error) {
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return rssRun{}, fmt.Errorf("bench: cannot reset this process's peak RSS before starting the child: %w", err)
	}
	parentRSS := procStatus("VmRSS")
	exe, err := os.Executable()
	if err != nil {
		return rssRun{}, err
	}
	spec, err := json.Marshal(s)
	if err != nil {
		return rssRun{}, err
	}
	cmd := exec.CommandContext(ctx, exe, "-"+ChildFlag+"="+string(spec))
	cmd.Env = append(os.Environ(), secretEnv+"="+exporterSecret)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = stderr
	t0 := time.Now()
	if err := cmd.Run(); err != nil {
		return rssRun{}, fmt.Errorf("bench: RSS child (%s): %w", exe, err)
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok || ru.Maxrss <= 0 {
		return rssRun{}, errors.New("bench: no rusage for the RSS child")
	}
	r := rssRun{Upload: s.Upload, MaxRSS: ru.Maxrss << 10, ParentRSS: parentRSS, Elapsed: time.Since(t0)}
	if err := json.Unmarshal(stdout.Bytes(), &r.childResult); err != nil {
		return rssRun{}, fmt.Errorf("bench: RSS child printed %q: %w", stdout.String(), err)
	}
	return r, nil
}

// procStatus reads a size field (in kB) of /proc/self/status, in bytes; 0 when unreadable.
func procStatus(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb); err == nil {
				return kb << 10
			}
		}
	}
	return 0
}
