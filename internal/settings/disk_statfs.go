//go:build linux || darwin

package settings

import "syscall"

// FreeBytes is the space an unprivileged process may still write on dir's file system.
func FreeBytes(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}
