package testbed

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/jsimonetti/rtnetlink/v2"
	mdnetlink "github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// routeLook reads the router's routes over rtnetlink inside the router's
// namespace: one route dump per look and no process started.
// Routes (two runs of `ip -j route show`) takes 10-40 ms per look on a busy
// machine, which was the granularity of every failover figure.
type routeLook struct {
	ns *os.File
	c  *rtnetlink.Conn
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
	return &routeLook{ns: ns, c: c}, nil
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
	err := l.c.Close()
	l.ns.Close()
	return err
}
