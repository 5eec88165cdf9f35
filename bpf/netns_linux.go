package bpf

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
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

// inNetNS runs fn on an OS thread that has entered the network namespace
// open at fd. The thread goes back to its own namespace afterwards; if that
// fails it stays locked and the runtime discards it when the goroutine ends.
func inNetNS(fd int, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open own network namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter network namespace fd %d: %w", fd, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: it is tainted and dies with us.
			errc <- errors.Join(ferr, fmt.Errorf("return to own network namespace: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
