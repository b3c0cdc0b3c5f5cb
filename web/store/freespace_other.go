//go:build !(linux || darwin || freebsd || openbsd || netbsd || dragonfly || windows)

package store

import "errors"

// freeSpace is not known on this platform: the check leaves it out.
func freeSpace(string) (uint64, error) { return 0, errors.ErrUnsupported }
