package nft

import (
	"errors"
	"fmt"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"

	"github.com/lbctl/lbctl/bundle/model"
)

// HandoffRefused reads the counter of encapsulated flow handoff packets the
// table dropped because they did not come from a peer LB node, since the
// table was last replaced. ok is false when the table has no such counter
// (no table, or a site without peers).
func (k *Kernel) HandoffRefused() (packets uint64, ok bool, err error) {
	opts := []nftables.ConnOption{}
	if k.netns != 0 {
		opts = append(opts, nftables.WithNetNSFd(k.netns))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return 0, false, fmt.Errorf("nft: %w", err)
	}
	objs, err := c.GetObjects(Table())
	if errors.Is(err, unix.ENOENT) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("nft: list objects of table inet %s: %w", model.NFTTable, err)
	}
	for _, o := range objs {
		if co, isCounter := o.(*nftables.CounterObj); isCounter && co.Name == model.HandoffRefusedCounter {
			return co.Packets, true, nil
		}
	}
	return 0, false, nil
}
