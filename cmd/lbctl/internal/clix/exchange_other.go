//go:build !linux

package clix

import "errors"

// exchange is not atomic outside Linux: swapDir falls back to two renames.
func exchange(a, b string) error { return errors.New("no atomic exchange") }
