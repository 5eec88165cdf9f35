package bpf

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/lbctl/lbctl/internal/netns"
)

// NetNSInode returns the inode number identifying the network namespace open
// at fd, or the calling thread's namespace when fd is -1. It is the value
// Listener.NetNS, Event.NetNS and Watch use.
func NetNSInode(fd int) (uint64, error) {
	var st unix.Stat_t
	if fd < 0 {
		if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
			return 0, fmt.Errorf("stat own network namespace: %w", err)
		}
		return st.Ino, nil
	}
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, fmt.Errorf("stat network namespace fd %d: %w", fd, err)
	}
	return st.Ino, nil
}

// inNetNS runs fn in the network namespace open at fd (netns.Do).
func inNetNS(fd int, fn func() error) error { return netns.Do(fd, fn) }
