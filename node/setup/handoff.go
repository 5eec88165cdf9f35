package setup

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/lbctl/lbctl/bpf/handoff"
	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/health/agent"
	"github.com/lbctl/lbctl/node/nft"
)

// handoffDatapath drives bpf/handoff for the agent. A VIP port or backend
// that leaves the release stays in the datapath for keep (the drain time and
// a margin): the connections a removed VIP still serves during its drain
// keep reaching it through the peers.
type handoffDatapath struct {
	dp    *handoff.Datapath
	nft   *nft.Kernel // reads the packet filter's refused counter; may be nil
	keep  time.Duration
	now   func() time.Time
	state string
	pins  string // "pinned in DIR" or "not pinned (why)"

	mu      sync.Mutex
	gone    map[netip.AddrPort]time.Time // entries removed from the release, and when
	current []netip.AddrPort             // VIP ports of the last release
	backs   []netip.AddrPort
	peers   []string
}

var _ agent.Handoff = (*handoffDatapath)(nil)

// newHandoff loads the datapath pinned in pinDir (adopting what an earlier
// agent pinned there, so that forwarding goes on while the agent
// restarts), or unpinned when pinDir is not on a bpf file system; on a
// kernel or unit without what it needs it returns a Handoff that reports
// why and does nothing.
func newHandoff(keep time.Duration, pinDir string) *handoffDatapath {
	h := &handoffDatapath{keep: keep, now: time.Now, gone: map[netip.AddrPort]time.Time{}}
	dp, err := handoff.LoadPinned(pinDir)
	h.pins = "pinned in " + pinDir
	if errors.Is(err, handoff.ErrNotPinnable) {
		h.pins = fmt.Sprintf("not pinned (%v): forwarding stops while the agent restarts", err)
		dp, err = handoff.Load()
	}
	if err != nil {
		h.state, h.pins = fmt.Sprintf("unavailable (%v)", err), ""
		return h
	}
	h.dp = dp
	h.state = "off (no release yet)"
	if k, err := nft.New(); err == nil {
		h.nft = k
	}
	return h
}

// Close closes the agent's handles; pinned programs go on forwarding
// with the maps as they are until the next agent adopts them.
func (h *handoffDatapath) Close() error {
	if h.dp == nil {
		return nil
	}
	return h.dp.Close()
}

func (h *handoffDatapath) Apply(fw model.Firewall) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.dp == nil {
		return nil
	}
	now := h.now()
	var vips, backs []netip.AddrPort
	var peers []netip.Addr
	var errs []error
	for _, p := range append(slices.Clone(fw.Accept4), fw.Accept6...) {
		if p.Addr.IsValid() {
			vips = append(vips, netip.AddrPortFrom(p.Addr, uint16(p.Port)))
		}
	}
	if fw.Handoff != nil {
		for _, ip := range fw.Handoff.Peers4 {
			if !ip.IsValid() {
				errs = append(errs, errors.New("flow handoff peer: address unset"))
				continue
			}
			peers = append(peers, ip)
		}
		for _, p := range fw.Handoff.Backends4 {
			if p.Addr.IsValid() {
				backs = append(backs, netip.AddrPortFrom(p.Addr, uint16(p.Port)))
			}
		}
	}
	// Remember what left the release; forget it after keep. (A set: at
	// 500 VIPs a scan per entry was a million comparisons every refresh.)
	inRelease := make(map[netip.AddrPort]bool, len(vips)+len(backs))
	for _, ap := range append(slices.Clone(vips), backs...) {
		inRelease[ap] = true
	}
	for _, old := range append(slices.Clone(h.current), h.backs...) {
		if !inRelease[old] {
			if _, ok := h.gone[old]; !ok {
				h.gone[old] = now
			}
		}
	}
	for ap, since := range h.gone {
		if inRelease[ap] || now.Sub(since) > h.keep {
			delete(h.gone, ap)
		}
	}
	h.current, h.backs = vips, backs
	keepV, keepB := slices.Clone(vips), slices.Clone(backs)
	for ap := range h.gone {
		// A retained entry goes back where it came from; both maps is
		// harmless (the program checks destination, then source).
		keepV = append(keepV, ap)
		keepB = append(keepB, ap)
	}
	if len(peers) > handoff.MaxPeers {
		errs = append(errs, fmt.Errorf("flow handoff: %d peers, the datapath takes %d; using the first %d", len(peers), handoff.MaxPeers, handoff.MaxPeers))
		peers = peers[:handoff.MaxPeers]
	}
	h.peers = nil
	for _, p := range peers {
		h.peers = append(h.peers, p.String())
	}
	if err := h.dp.Apply(handoff.Config{Peers: peers, VIPs: keepV, Backends: keepB}); err != nil {
		h.state = fmt.Sprintf("unavailable (%v)", err)
		return errors.Join(append(errs, err)...)
	}
	switch {
	case len(peers) == 0:
		h.state = "off (no peer node in the site)"
	default:
		h.state = "active"
	}
	return errors.Join(errs...)
}

func (h *handoffDatapath) Status() agent.HandoffStatus {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := agent.HandoffStatus{State: h.state, Peers: slices.Clone(h.peers), Pins: h.pins}
	if h.dp == nil {
		return st
	}
	st.Attached = h.dp.Attached()
	if c, err := h.dp.Counters(); err == nil {
		st.Forwarded, st.ForwardErrors, st.NoPeer = c.Forwarded, c.ForwardErrors, c.NoPeer
		st.Delivered, st.Dropped, st.Refused = c.Delivered, c.Dropped, c.Refused
	}
	if h.nft != nil {
		if n, ok, err := h.nft.HandoffRefused(); err == nil && ok {
			st.FilterRefused = n
		}
	}
	return st
}
