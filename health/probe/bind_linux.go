package probe

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// bindAddressNoPort lets a socket bound to an address without a port take
// its port when it connects, from the whole connection's four-tuple,
// rather than reserve one for the address alone when it binds.
func bindAddressNoPort(_, _ string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	}); err != nil {
		return err
	}
	return serr
}
