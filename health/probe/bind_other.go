//go:build !linux

package probe

import "syscall"

// bindAddressNoPort does nothing where the option does not exist: the
// socket reserves its port when it binds.
func bindAddressNoPort(_, _ string, _ syscall.RawConn) error { return nil }
