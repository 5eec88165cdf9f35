// Package nsprocs finds the processes inside a network namespace, for the
// harnesses (test/netnstest, test/testbed) that refuse to remove a
// namespace something still runs in.
package nsprocs

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Inode identifies the network namespace of the namespace file at path
// (/run/netns/NAME, /proc/PID/ns/net).
func Inode(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// PIDsIn lists the processes (thread group leaders other than this process)
// whose network namespace has the given inode. Zombies are not listed: an
// exited process has no namespace left.
func PIDsIn(inode uint64) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		if ino, err := Inode("/proc/" + e.Name() + "/ns/net"); err == nil && ino == inode {
			pids = append(pids, pid)
		}
	}
	return pids
}
