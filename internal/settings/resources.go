package settings

import (
	"bufio"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// cgroupV1Unlimited: cgroup v1 writes "no limit" as a page-rounded MaxInt64
// (9223372036854771712); any limit past this is none.
const cgroupV1Unlimited = 1 << 62

// MemoryLimit returns the memory this process may use and where the figure comes from, for
// the worker's default sizing: the memory limit of its cgroup (v2 memory.max, else v1
// memory.limit_in_bytes, the smallest along the path to the root, since a parent's limit
// binds too), never more than the machine's MemTotal; with no limit, /proc/meminfo's
// MemAvailable. It returns 0 and "unknown" where none of them can be read (not Linux).
func MemoryLimit() (int64, string) { return memoryLimitAt("/") }

// memoryLimitAt is MemoryLimit on a file system rooted at root (tests build one).
func memoryLimitAt(root string) (int64, string) {
	total, avail := meminfo(filepath.Join(root, "proc/meminfo"))
	if limit, src := cgroupLimit(root); limit > 0 {
		if total > 0 && limit > total {
			return total, src + " above the machine's memory, so /proc/meminfo MemTotal"
		}
		return limit, src
	}
	if avail > 0 {
		return avail, "/proc/meminfo MemAvailable"
	}
	return 0, "unknown"
}

// cgroupLimit is the smallest memory limit from this process's cgroup up to the root of its
// hierarchy, v2 first; 0 when there is none.
func cgroupLimit(root string) (int64, string) {
	v2, v1 := "/", "/"
	if f, err := os.Open(filepath.Join(root, "proc/self/cgroup")); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// hierarchy-ID:controller-list:cgroup-path; v2 is "0::/path".
			parts := strings.SplitN(sc.Text(), ":", 3)
			if len(parts) != 3 {
				continue
			}
			if parts[0] == "0" && parts[1] == "" {
				v2 = parts[2]
			}
			for _, c := range strings.Split(parts[1], ",") {
				if c == "memory" {
					v1 = parts[2]
				}
			}
		}
		f.Close()
	}
	if n := smallestUp(filepath.Join(root, "sys/fs/cgroup"), v2, "memory.max", 0); n > 0 {
		return n, "cgroup v2 memory.max"
	}
	if n := smallestUp(filepath.Join(root, "sys/fs/cgroup/memory"), v1, "memory.limit_in_bytes", cgroupV1Unlimited); n > 0 {
		return n, "cgroup v1 memory.limit_in_bytes"
	}
	return 0, ""
}

// smallestUp reads file in mount/dir and in each parent up to mount, and returns the smallest
// limit found; "max", unreadable files and values at or past unlimited (when non-zero) are no
// limit. A container with its own cgroup namespace sees its cgroup at the mount's root;
// one without may name a path the mount lacks, which is skipped.
func smallestUp(mount, dir, file string, unlimited int64) int64 {
	var least int64
	for d := path.Clean("/" + dir); ; d = path.Dir(d) {
		b, err := os.ReadFile(filepath.Join(mount, filepath.FromSlash(d), file))
		if err == nil {
			n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
			if err == nil && n > 0 && (unlimited == 0 || n < unlimited) && (least == 0 || n < least) {
				least = n
			}
		}
		if d == "/" {
			return least
		}
	}
}

// meminfo reads MemTotal and MemAvailable in bytes; 0 for what it cannot read.
func meminfo(file string) (total, avail int64) {
	f, err := os.Open(file)
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "MemAvailable:   23198784 kB"
		fields := strings.Fields(sc.Text())
		if len(fields) != 3 || fields[2] != "kB" {
			continue
		}
		n, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			continue
		}
		switch fields[0] {
		case "MemTotal:":
			total = n << 10
		case "MemAvailable:":
			avail = n << 10
		}
	}
	return total, avail
}
