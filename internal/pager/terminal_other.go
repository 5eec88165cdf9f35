//go:build !linux && !darwin && !freebsd && !netbsd && !openbsd

package pager

import "os"

// IsTerminal reports whether f is a terminal; here it never is, so output
// is plain and unpaged.
func IsTerminal(*os.File) bool { return false }
