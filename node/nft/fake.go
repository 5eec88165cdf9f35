package nft

import (
	"sync"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/node/nft/nftspec"
)

// Fake is an in-memory Conn: it validates like Kernel.Apply, keeps the
// table it was given in canonical form, and prints it in nft syntax.
type Fake struct {
	mu     sync.Mutex
	fw     model.Firewall
	exists bool
	// Applies counts successful Apply calls (each is one batch).
	Applies int
	// FailApply, when set, makes the next Apply fail with it and leave the
	// table as it was, as the kernel does with a rejected batch.
	FailApply error
}

var _ Conn = (*Fake)(nil)

// Apply replaces the table.
func (f *Fake) Apply(fw model.Firewall) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.FailApply; err != nil {
		f.FailApply = nil
		return err
	}
	c, err := nftspec.Canonical(fw)
	if err != nil {
		return err
	}
	f.fw, f.exists = c, true
	f.Applies++
	return nil
}

// Read returns the table.
func (f *Fake) Read() (model.Firewall, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.exists {
		return model.Firewall{}, false, nil
	}
	return f.fw, true, nil
}

// Delete removes the table; like the kernel's, deleting nothing succeeds.
func (f *Fake) Delete() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fw, f.exists = model.Firewall{}, false
	return nil
}

// String is the table in nft syntax, or "no table inet lbctl".
func (f *Fake) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.exists {
		return "no table inet " + model.NFTTable + "\n"
	}
	s, err := Render(f.fw)
	if err != nil {
		return "invalid: " + err.Error() + "\n"
	}
	return s
}
