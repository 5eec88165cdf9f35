package nft

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nltest"
	"golang.org/x/sys/unix"

	"github.com/lbctl/lbctl/bundle/model"
)

// Conn programs and reads back the table inet lbctl.
type Conn interface {
	// Apply replaces the whole table with the one fw describes, atomically.
	Apply(fw model.Firewall) error
	// Read lists the table back. exists is false when there is no table.
	Read() (fw model.Firewall, exists bool, err error)
	// Delete removes the table; deleting a missing table succeeds.
	Delete() error
}

// ErrNotSupported means the kernel has no usable nf_tables.
var ErrNotSupported = errors.New("nftables not supported")

// elementsPerMessage bounds the elements in one NEWSETELEM message: a
// netlink attribute holds at most 64 KiB, and an svc6 element takes 32
// bytes. A set with more elements is sent as several messages of the same
// batch.
const elementsPerMessage = 1024

// Kernel is the Conn for the running kernel.
type Kernel struct {
	netns int
	// beforeFlush, for tests, may append to the batch just before Flush.
	beforeFlush func(c *nftables.Conn, rs *Ruleset)
	// testDial, for tests, replaces the netlink socket.
	testDial nltest.Func
}

var _ Conn = (*Kernel)(nil)

// Option configures a Kernel.
type Option func(*Kernel)

// WithNetNS makes the Kernel work in the network namespace the open file
// descriptor fd refers to (tests use their own namespace).
func WithNetNS(fd int) Option { return func(k *Kernel) { k.netns = fd } }

// New returns a Kernel after checking that nf_tables answers.
func New(opts ...Option) (*Kernel, error) {
	k := &Kernel{}
	for _, o := range opts {
		o(k)
	}
	if _, err := k.Generation(); err != nil {
		if errors.Is(err, unix.EPROTONOSUPPORT) || errors.Is(err, unix.ENOENT) {
			return nil, fmt.Errorf("nft: %w: %v", ErrNotSupported, err)
		}
		return nil, fmt.Errorf("nft: %w", err)
	}
	return k, nil
}

func (k *Kernel) conn(sndbuf int) (*nftables.Conn, error) {
	opts := []nftables.ConnOption{}
	if k.testDial != nil {
		return nftables.New(nftables.WithTestDial(k.testDial))
	}
	if k.netns != 0 {
		opts = append(opts, nftables.WithNetNSFd(k.netns))
	}
	if sndbuf > 0 {
		opts = append(opts, nftables.WithSockOptions(func(c *netlink.Conn) error { return forceSndbuf(c, sndbuf) }))
	}
	return nftables.New(opts...)
}

// forceSndbuf makes the socket's send buffer hold n bytes: the kernel
// refuses a batch larger than the buffer. SO_SNDBUFFORCE (CAP_NET_ADMIN,
// which programming nftables needs anyway) ignores net.core.wmem_max.
func forceSndbuf(c *netlink.Conn, n int) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, n)
	}); err != nil {
		return err
	}
	if serr != nil {
		return c.SetWriteBuffer(n)
	}
	return nil
}

// Apply replaces the table's whole content in one batch and one Flush: add
// table (so that the delete cannot fail), delete table, add table, sets,
// elements, chains, rules. On error the kernel has rolled the whole batch
// back and the previous table is still in place.
func (k *Kernel) Apply(fw model.Firewall) error {
	rs, err := Build(fw)
	if err != nil {
		return fmt.Errorf("nft: %w", err)
	}
	// At most 32 bytes per element (svc6) with headers, plus slack.
	c, err := k.conn(64*rs.Elements() + 1<<20)
	if err != nil {
		return fmt.Errorf("nft: %w", err)
	}
	c.AddTable(rs.Table)
	c.DelTable(rs.Table)
	c.AddTable(rs.Table)
	for _, s := range rs.Sets {
		if err := c.AddSet(s.Set, nil); err != nil {
			return fmt.Errorf("nft: set %s: %w", s.Set.Name, err)
		}
		for i := 0; i < len(s.Elements); i += elementsPerMessage {
			chunk := s.Elements[i:min(i+elementsPerMessage, len(s.Elements))]
			if err := c.SetAddElements(s.Set, chunk); err != nil {
				return fmt.Errorf("nft: set %s elements: %w", s.Set.Name, err)
			}
		}
	}
	if rs.Counter != nil {
		c.AddObj(rs.Counter)
	}
	for _, ch := range rs.Chains {
		c.AddChain(ch)
	}
	for _, r := range rs.Rules {
		c.AddRule(r)
	}
	if k.beforeFlush != nil {
		k.beforeFlush(c, rs)
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nft: replace table inet %s: %w", model.NFTTable, err)
	}
	return nil
}

// Delete removes the table in one batch (add, then delete, so a missing
// table is not an error). Other tables are not touched.
func (k *Kernel) Delete() error {
	c, err := k.conn(0)
	if err != nil {
		return fmt.Errorf("nft: %w", err)
	}
	t := Table()
	c.AddTable(t)
	c.DelTable(t)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nft: delete table inet %s: %w", model.NFTTable, err)
	}
	return nil
}

// Generation returns the ruleset generation of the network namespace: the
// kernel increments it once per committed batch, so comparing it before and
// after an operation counts the batches that operation committed.
func (k *Kernel) Generation() (uint32, error) {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: k.netns})
	if err != nil {
		return 0, fmt.Errorf("dial nfnetlink: %w", err)
	}
	defer c.Close()
	msgs, err := c.Execute(netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETGEN),
			Flags: netlink.Request,
		},
		Data: []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0},
	})
	if err != nil {
		return 0, fmt.Errorf("get ruleset generation: %w", err)
	}
	for _, m := range msgs {
		if len(m.Data) < 4 {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			return 0, fmt.Errorf("get ruleset generation: %w", err)
		}
		for ad.Next() {
			if ad.Type() == unix.NFTA_GEN_ID && len(ad.Bytes()) == 4 {
				return binary.BigEndian.Uint32(ad.Bytes()), nil
			}
		}
	}
	return 0, errors.New("get ruleset generation: no generation id in reply")
}
