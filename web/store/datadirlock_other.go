//go:build !unix && !windows

package store

import "os"

// tryLockFile has no lock to take on this platform.
func tryLockFile(*os.File) (bool, error) { return false, nil }
