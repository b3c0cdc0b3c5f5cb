//go:build linux || darwin || freebsd || openbsd || netbsd || dragonfly

package store

import "golang.org/x/sys/unix"

// freeSpace is how many bytes of the volume holding dir this process may still write.
func freeSpace(dir string) (uint64, error) {
	var s unix.Statfs_t
	if err := unix.Statfs(dir, &s); err != nil {
		return 0, err
	}
	return uint64(s.Bavail) * uint64(s.Bsize), nil
}
