//go:build !linux

package haproxy

import "net"

// peerPID is 0 where SO_PEERCRED does not exist.
func peerPID(net.Conn) int { return 0 }
