package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// peak keeps the largest value observed.
type peak struct {
	mu  sync.Mutex
	max int64
}

func (p *peak) observe(v int64) {
	p.mu.Lock()
	p.max = max(p.max, v)
	p.mu.Unlock()
}

func (p *peak) get() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.max
}

// statusBytes reads one "Key:   123 kB" line of /proc/<pid>/status, in bytes.
func statusBytes(status []byte, key string) (int64, bool) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != key {
			continue
		}
		f := strings.Fields(val)
		if len(f) == 0 {
			return 0, false
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, false
		}
		if len(f) > 1 {
			switch strings.ToLower(f[1]) {
			case "kb":
				n <<= 10
			case "mb":
				n <<= 20
			default:
				return 0, false
			}
		}
		return n, true
	}
	return 0, false
}

// procStatus reads key (VmRSS, VmHWM) of process pid, in bytes.
func procStatus(pid int, key string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	n, ok := statusBytes(b, key)
	if !ok {
		return 0, fmt.Errorf("/proc/%d/status has no %s", pid, key)
	}
	return n, nil
}

// dirBytes is the size of the regular files under dir. Files that vanish while it walks
// (a shard uploaded and removed) are skipped.
func dirBytes(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		if info, err := d.Info(); err == nil {
			n += info.Size()
		}
		return nil
	})
	return n
}

// sampler follows one process: its resident set (VmRSS sampled, VmHWM the kernel's own peak)
// and the size of its staging directory.
type sampler struct {
	pid     int
	dir     string
	rss     peak // largest VmRSS sampled
	hwm     peak // VmHWM
	staging peak // largest staging size sampled
	last    struct {
		sync.Mutex
		rss, staging int64
	}
}

func (s *sampler) sample() {
	if v, err := procStatus(s.pid, "VmRSS"); err == nil {
		s.rss.observe(v)
		s.last.Lock()
		s.last.rss = v
		s.last.Unlock()
	}
	if v, err := procStatus(s.pid, "VmHWM"); err == nil {
		s.hwm.observe(v)
	}
	st := dirBytes(s.dir)
	s.staging.observe(st)
	s.last.Lock()
	s.last.staging = st
	s.last.Unlock()
}

// current is the last sample's RSS and staging size.
func (s *sampler) current() (rss, staging int64) {
	s.last.Lock()
	defer s.last.Unlock()
	return s.last.rss, s.last.staging
}

// run samples every interval until ctx ends.
func (s *sampler) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s.sample()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
