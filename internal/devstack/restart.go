package devstack

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"syscall"
	"time"
)

// lastProc is the process spawn started last.
func (s *Stack) lastProc() *exec.Cmd {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.procs[len(s.procs)-1]
}

// RestartTemporal kills the Temporal dev server outright (SIGKILL, as a crash would) and
// starts it again on the same port with the same database, then waits until it answers.
// Only a stack started with Options.TemporalDBFile keeps its workflows across the restart;
// without it the server comes back empty.
func (s *Stack) RestartTemporal(ctx context.Context) error {
	s.restartMu.Lock()
	defer s.restartMu.Unlock()
	if s.temporal == nil {
		return errors.New("devstack: Temporal is not running under this stack")
	}
	old := s.temporal
	_ = syscall.Kill(-old.Process.Pid, syscall.SIGKILL)
	done := make(chan struct{})
	go func() { _ = old.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		return errors.New("devstack: the killed Temporal server did not exit within 30s")
	}
	s.mu.Lock()
	for i, c := range s.procs {
		if c == old {
			s.procs = append(s.procs[:i], s.procs[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
	s.temporalRestarts++
	name := fmt.Sprintf("temporal-restart-%d", s.temporalRestarts)
	// The killed process has been reaped, so its port is free again (listeners reuse it
	// at once despite connections in TIME_WAIT).
	if err := s.spawn(name, s.temporalBin, s.temporalArgs, nil); err != nil {
		return err
	}
	s.temporal = s.lastProc()
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := s.waitTemporal(wctx); err != nil {
		return s.withLogs(err, name)
	}
	return nil
}
