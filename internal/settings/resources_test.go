package settings

import (
	"os"
	"path/filepath"
	"testing"
)

// fakeRoot writes files under a temporary root: path (relative) to content.
func fakeRoot(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, c := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const meminfo16G = "MemTotal:       16777216 kB\nMemFree:         1000 kB\nMemAvailable:    8388608 kB\n"

func TestMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		name   string
		files  map[string]string
		want   int64
		source string
	}{
		{"cgroup v2 in a container", map[string]string{
			"proc/self/cgroup": "0::/\n", "sys/fs/cgroup/memory.max": "2147483648\n", "proc/meminfo": meminfo16G,
		}, 2 << 30, "cgroup v2 memory.max"},
		{"cgroup v2, the parent's limit binds", map[string]string{
			"proc/self/cgroup": "0::/system.slice/worker.service\n",
			"sys/fs/cgroup/system.slice/worker.service/memory.max": "max\n",
			"sys/fs/cgroup/system.slice/memory.max":                "1073741824\n",
			"proc/meminfo":                                         meminfo16G,
		}, 1 << 30, "cgroup v2 memory.max"},
		{"cgroup v2 without a limit", map[string]string{
			"proc/self/cgroup": "0::/user.slice\n", "sys/fs/cgroup/user.slice/memory.max": "max\n", "proc/meminfo": meminfo16G,
		}, 8 << 30, "/proc/meminfo MemAvailable"},
		{"cgroup v1 limit", map[string]string{
			"proc/self/cgroup":                           "12:memory:/docker/abc\n11:cpu,cpuacct:/docker/abc\n",
			"sys/fs/cgroup/memory/memory.limit_in_bytes": "536870912\n",
			"proc/meminfo":                               meminfo16G,
		}, 512 << 20, "cgroup v1 memory.limit_in_bytes"},
		{"cgroup v1 unlimited", map[string]string{
			"proc/self/cgroup": "12:memory:/\n", "sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n", "proc/meminfo": meminfo16G,
		}, 8 << 30, "/proc/meminfo MemAvailable"},
		{"a limit above the machine", map[string]string{
			"proc/self/cgroup": "0::/\n", "sys/fs/cgroup/memory.max": "68719476736\n", "proc/meminfo": meminfo16G,
		}, 16 << 30, "cgroup v2 memory.max above the machine's memory, so /proc/meminfo MemTotal"},
		{"nothing to read", map[string]string{}, 0, "unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, src := memoryLimitAt(fakeRoot(t, tc.files))
			if got != tc.want || src != tc.source {
				t.Errorf("memoryLimitAt = %d (%s), want %d (%s)", got, src, tc.want, tc.source)
			}
		})
	}
}

func TestFreeBytes(t *testing.T) {
	n, err := FreeBytes(t.TempDir())
	if err != nil {
		t.Skipf("no free space on this platform: %v", err)
	}
	if n <= 0 {
		t.Errorf("FreeBytes = %d", n)
	}
}
