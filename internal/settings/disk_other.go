//go:build !linux && !darwin

package settings

import "errors"

// FreeBytes is not known on this platform; sizing then does without it.
func FreeBytes(dir string) (int64, error) {
	return 0, errors.New("free disk space is not known on this platform")
}
