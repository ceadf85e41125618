package chaos

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// workerPool runs the real worker binary as separate processes, keeps a target number of them
// working (a frozen one does not count: the fleet goes on without it), and lets the campaign
// kill them with SIGKILL or freeze them with SIGSTOP at any moment. Every line a worker
// prints goes to its log file and, parsed, to onLine (the campaign's log-line kill triggers).
type workerPool struct {
	bin string
	env []string
	dir string
	// onLine sees every JSON log message of every worker, on the worker's reader goroutine;
	// it may kill that worker.
	onLine func(w *workerProc, msg string)

	mu      sync.Mutex
	next    int
	live    map[int]*workerProc
	logs    []string
	started int
	wg      sync.WaitGroup
}

// workerProc is one worker process.
type workerProc struct {
	id     int
	cmd    *exec.Cmd
	tmp    string // its EXPORT_TEMP_DIR
	done   chan struct{}
	pool   *workerPool
	paused atomic.Bool
}

func newWorkerPool(bin, dir string, env []string) *workerPool {
	return &workerPool{bin: bin, dir: dir, env: env, live: map[int]*workerProc{}}
}

// start launches one more worker.
func (p *workerPool) start() (*workerProc, error) {
	p.mu.Lock()
	p.next++
	id := p.next
	p.mu.Unlock()
	logPath := filepath.Join(p.dir, fmt.Sprintf("worker-%02d.log", id))
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	tmp := filepath.Join(p.dir, fmt.Sprintf("worker-%02d-tmp", id))
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		logf.Close()
		return nil, err
	}
	// An OS pipe: the worker writes straight into it, so its exit never waits on our reader.
	pr, pw, err := os.Pipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	cmd := exec.Command(p.bin)
	cmd.Env = append(append(os.Environ(), p.env...), "EXPORT_TEMP_DIR="+tmp)
	cmd.Stdout, cmd.Stderr = pw, pw
	// The worker dies with the campaign, whatever happens to the campaign.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = cmd.Start()
	pw.Close() // the worker holds its own copy
	if err != nil {
		pr.Close()
		logf.Close()
		return nil, fmt.Errorf("start worker: %w", err)
	}
	w := &workerProc{id: id, cmd: cmd, tmp: tmp, done: make(chan struct{}), pool: p}
	p.mu.Lock()
	p.live[id] = w
	p.logs = append(p.logs, logPath)
	p.started++
	p.mu.Unlock()
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		_ = cmd.Wait()
		p.mu.Lock()
		delete(p.live, id)
		p.mu.Unlock()
		close(w.done)
	}()
	go func() {
		defer p.wg.Done()
		defer logf.Close()
		defer pr.Close()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			line := sc.Bytes()
			_, _ = logf.Write(append(line, '\n'))
			var rec struct {
				Msg string `json:"msg"`
			}
			if json.Unmarshal(line, &rec) == nil && rec.Msg != "" && p.onLine != nil {
				p.onLine(w, rec.Msg)
			}
		}
		_, _ = io.Copy(io.Discard, pr) // a line too long for the scanner: keep the pipe drained
	}()
	return w, nil
}

// kill ends the worker at once, as a crash or an OOM kill does (the kernel stops it before
// it runs another instruction). It reports whether this call killed it.
func (w *workerProc) kill() bool {
	select {
	case <-w.done:
		return false
	default:
	}
	return w.cmd.Process.Signal(syscall.SIGKILL) == nil
}

// pause freezes the worker (SIGSTOP) for d, then lets it go on (SIGCONT), as a long GC pause,
// a frozen VM or a network partition does: Temporal gives up its activities after their
// heartbeat timeout and retries them on another worker, and when this one wakes up it goes on
// for a while as a zombie, finishing the upload it was in. It reports whether it paused the
// worker, and whether the worker was still there to wake up (it may be killed meanwhile).
func (w *workerProc) pause(d time.Duration) (paused, resumed bool) {
	select {
	case <-w.done:
		return false, false
	default:
	}
	if w.cmd.Process.Signal(syscall.SIGSTOP) != nil {
		return false, false
	}
	w.paused.Store(true)
	defer w.paused.Store(false)
	select {
	case <-w.done: // killed meanwhile
		return true, false
	case <-time.After(d):
		return true, w.cmd.Process.Signal(syscall.SIGCONT) == nil
	}
}

// stop ends the worker gracefully (SIGTERM), then for good.
func (w *workerProc) stop() {
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.done:
	case <-time.After(10 * time.Second):
		w.kill()
		<-w.done
	}
}

// liveWorkers returns the running workers that are not paused, in start order.
func (p *workerPool) liveWorkers() []*workerProc {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*workerProc, 0, len(p.live))
	for _, w := range p.live {
		if !w.paused.Load() {
			out = append(out, w)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// allWorkers returns every worker process still there, paused or not.
func (p *workerPool) allWorkers() []*workerProc {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*workerProc, 0, len(p.live))
	for _, w := range p.live {
		out = append(out, w)
	}
	return out
}

// stopAll ends every worker and waits for their log readers.
func (p *workerPool) stopAll() {
	for _, w := range p.allWorkers() {
		w.stop()
	}
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
	}
}

// logFiles lists every worker's log file.
func (p *workerPool) logFiles() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.logs...)
}
