//go:build !unix

package store

import (
	"errors"
	"os"
)

// writable looks at the file's read-only attribute, the best this platform tells without writing.
func writable(path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	if info.Mode().Perm()&0o200 == 0 {
		return errors.New("the file is read-only")
	}
	return nil
}
