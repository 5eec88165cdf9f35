package testbed

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/jsimonetti/rtnetlink/v2"
	mdnetlink "github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// routeLook reads the router's routes over rtnetlink inside the router's
// namespace, and hears the kernel's route notifications there: a look
// (one route dump) runs when a notification concerns the watched prefix,
// never in a loop. Routes (two runs of `ip -j route show`) took 10-40 ms
// per look on a busy machine, and a dump every millisecond at 500 VIPs
// (1,000 routes) kept a core busy beside the BIRDs it timed.
type routeLook struct {
	ns    *os.File
	c     *rtnetlink.Conn
	notes *rtnetlink.Conn
}

// lookRoutes opens a routeLook on the router.
func (s *Site) lookRoutes() (*routeLook, error) {
	ns, err := os.Open(filepath.Join(NetNSDir, s.Router))
	if err != nil {
		return nil, fmt.Errorf("testbed: router namespace: %w", err)
	}
	c, err := rtnetlink.Dial(&mdnetlink.Config{NetNS: int(ns.Fd())})
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("testbed: rtnetlink in the router namespace: %w", err)
	}
	notes, err := rtnetlink.Dial(&mdnetlink.Config{NetNS: int(ns.Fd()),
		Groups: unix.RTMGRP_IPV4_ROUTE | unix.RTMGRP_IPV6_ROUTE})
	if err != nil {
		c.Close()
		ns.Close()
		return nil, fmt.Errorf("testbed: route notifications in the router namespace: %w", err)
	}
	return &routeLook{ns: ns, c: c, notes: notes}, nil
}

// waitNote waits until a route notification about p arrives (or until
// deadline) and returns when it arrived; ok is false at the deadline.
// Notifications about other prefixes are skipped.
func (l *routeLook) waitNote(p netip.Prefix, deadline time.Time) (at time.Time, ok bool, err error) {
	if err := l.notes.SetReadDeadline(deadline); err != nil {
		return time.Time{}, false, err
	}
	dst := net.IP(p.Addr().AsSlice())
	for {
		msgs, _, err := l.notes.Receive()
		at := time.Now()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return time.Time{}, false, nil
			}
			var oe *mdnetlink.OpError
			if errors.As(err, &oe) && errors.Is(oe.Err, unix.ENOBUFS) {
				return at, true, nil // notifications lost: look
			}
			return time.Time{}, false, fmt.Errorf("testbed: route notifications: %w", err)
		}
		for _, m := range msgs {
			if rm, isRoute := m.(*rtnetlink.RouteMessage); isRoute &&
				int(rm.DstLength) == p.Bits() && rm.Attributes.Dst.Equal(dst) {
				return at, true, nil
			}
		}
	}
}

// hasVia reports whether the router's route to p has a next hop via.
func (l *routeLook) hasVia(p netip.Prefix, via netip.Addr) (bool, error) {
	fam := uint8(unix.AF_INET)
	if p.Addr().Is6() {
		fam = unix.AF_INET6
	}
	// One dump of every route (a filtered dump by family returns none).
	msgs, err := l.c.Route.List()
	if err != nil {
		return false, fmt.Errorf("testbed: router routes: %w", err)
	}
	want := net.IP(via.AsSlice())
	for _, m := range msgs {
		if m.Family != fam || int(m.DstLength) != p.Bits() || !m.Attributes.Dst.Equal(net.IP(p.Addr().AsSlice())) {
			continue
		}
		if m.Attributes.Gateway.Equal(want) {
			return true, nil
		}
		for _, h := range m.Attributes.Multipath {
			if h.Gateway.Equal(want) {
				return true, nil
			}
		}
	}
	return false, nil
}

func (l *routeLook) Close() error {
	err := errors.Join(l.c.Close(), l.notes.Close())
	l.ns.Close()
	return err
}
