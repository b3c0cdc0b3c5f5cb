//go:build unix

package store

import "golang.org/x/sys/unix"

// writable asks the kernel whether this process may write path: permissions, immutable
// flags and read-only mounts all count.
func writable(path string) error { return unix.Access(path, unix.W_OK) }
