// Package netns runs a function inside a network namespace on an OS thread
// of its own. It is the one implementation of "enter a namespace with setns,
// run, come back" in the module: the eBPF loaders (bpf, bpf/handoff) use Do,
// the test harnesses (test/netnstest, test/systemdtest, test/testbed) use
// Do, DoPath and Switch. It never creates or removes a namespace.
package netns

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// Do runs fn on an OS thread that has entered the network namespace open
// at fd (fd <= 0: the caller's own namespace, still on a locked thread).
// Sockets fn opens belong to that namespace and may be used from any
// goroutine afterwards; goroutines fn starts do not run in it.
// The thread goes back to its own namespace afterwards; if that fails it
// stays locked and the runtime discards it when the goroutine ends.
func Do(fd int, fn func() error) error {
	if fd <= 0 {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		return fn()
	}
	return do(fd, fmt.Sprintf("fd %d", fd), fn)
}

// DoPath is Do for the namespace file at path (/run/netns/NAME,
// /proc/PID/ns/net).
func DoPath(path string, fn func() error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open network namespace: %w", err)
	}
	defer f.Close()
	return do(int(f.Fd()), path, fn)
}

// do runs fn on a fresh locked thread switched into the namespace open at
// fd; name names it in errors. fn's own error comes back unwrapped.
func do(fd int, name string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		back, err := Switch(fd)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("network namespace %s: %w", name, err)
			return
		}
		ferr := fn()
		if err := back(); err != nil {
			// Leave the thread locked: it is tainted and dies with us.
			errc <- errors.Join(ferr, fmt.Errorf("network namespace %s: %w", name, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Switch moves the calling thread, which the caller has locked with
// runtime.LockOSThread, into the network namespace open at fd, and returns
// the function that moves it back to the namespace it was in. A thread
// whose back fails is in the wrong namespace: keep it locked so the runtime
// discards it (or stop using it).
func Switch(fd int) (back func() error, err error) {
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, fmt.Errorf("open own network namespace: %w", err)
	}
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		orig.Close()
		return nil, fmt.Errorf("setns: %w", err)
	}
	return func() error {
		defer orig.Close()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("setns back to own network namespace: %w", err)
		}
		return nil
	}, nil
}
