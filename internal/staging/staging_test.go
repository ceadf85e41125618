package staging

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// A directory left by a dead worker is swept at the next start; a live one's is kept.
func TestOpenSweepsDeadWorkersOnly(t *testing.T) {
	base := t.TempDir()
	live, err := Open(base)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if err := os.WriteFile(filepath.Join(live.Path, "shard-1.parquet"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}

	// A dead worker: a locked directory whose process is gone (the lock went with it).
	dead := filepath.Join(base, "destination-aws-s3-staging", dirPrefix+"dead")
	if err := os.MkdirAll(dead, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("flock", filepath.Join(dead, lockName), "true")
	if err := cmd.Run(); err != nil {
		// flock(1) missing: create the lock file by hand; nobody holds it either way.
		if err := os.WriteFile(filepath.Join(dead, lockName), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dead, "shard-2.parquet"), make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}

	next, err := Open(base)
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	if next.Swept != 1 {
		t.Errorf("swept %d directories, want 1 (the dead worker's)", next.Swept)
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("the dead worker's staging directory survived: %v", err)
	}
	if _, err := os.Stat(filepath.Join(live.Path, "shard-1.parquet")); err != nil {
		t.Errorf("a live worker's staged shard was removed: %v", err)
	}
	if next.Path == live.Path {
		t.Error("two workers share a staging directory")
	}
}
