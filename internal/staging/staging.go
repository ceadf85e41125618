// Package staging owns the local directory where a worker stages shards between encoding and
// upload. Each worker process gets its own sub-directory, locked for the process's life, and
// sweeps the sub-directories of workers that died (SIGKILL, OOM, a node restart) without
// cleaning up: their half-written shards would otherwise fill the disk over days of crashes.
package staging

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// dirPrefix names the per-process sub-directories; lockName is the lock file inside each.
const (
	dirPrefix = "worker-"
	lockName  = ".lock"
)

// Dir is one worker's staging directory.
type Dir struct {
	// Path is where the worker writes its staging files.
	Path string
	// Swept counts the stale directories of dead workers removed at Open.
	Swept int
	lock  *os.File
}

// Open sweeps the stale staging directories under base (those whose lock no live process
// holds), then creates and locks this process's own. An empty base means the system temp
// directory.
func Open(base string) (*Dir, error) {
	if base == "" {
		base = os.TempDir()
	}
	root := filepath.Join(base, "destination-aws-s3-staging")
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("staging directory %s: %w", root, err)
	}
	d := &Dir{}
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("staging directory %s: %w", root, err)
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), dirPrefix) {
			continue
		}
		if swept, err := sweep(filepath.Join(root, e.Name())); err != nil {
			return nil, err
		} else if swept {
			d.Swept++
		}
	}
	path, err := os.MkdirTemp(root, dirPrefix)
	if err != nil {
		return nil, fmt.Errorf("staging directory: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(path, lockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("staging lock: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("staging lock %s: %w", path, err)
	}
	d.Path, d.lock = path, lock
	return d, nil
}

// sweep removes dir when no live process holds its lock; it reports whether it did.
func sweep(dir string) (bool, error) {
	lock, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR, 0)
	if os.IsNotExist(err) {
		// Created but never locked (its process died at once), or a leftover: nothing lives here.
		return true, os.RemoveAll(dir)
	}
	if err != nil {
		return false, fmt.Errorf("staging sweep %s: %w", dir, err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return false, nil // a live worker holds it
	}
	if err := os.RemoveAll(dir); err != nil {
		return false, fmt.Errorf("staging sweep %s: %w", dir, err)
	}
	return true, nil
}

// Close removes this worker's directory and releases its lock.
func (d *Dir) Close() error {
	err := os.RemoveAll(d.Path)
	d.lock.Close()
	return err
}
