// Package cgroup finds the cgroup2 hierarchy, for the test harnesses that
// give each namespaced systemd a cgroup of its own.
package cgroup

import (
	"bufio"
	"errors"
	"os"
	"strings"
)

// Root returns where the cgroup2 hierarchy is mounted (/sys/fs/cgroup on
// unified hosts, /sys/fs/cgroup/unified on hybrid ones).
func Root() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		for i, fl := range fields {
			if fl == "-" && i+1 < len(fields) && fields[i+1] == "cgroup2" && len(fields) > 4 {
				return fields[4], nil
			}
		}
	}
	return "", errors.New("no cgroup2 hierarchy mounted")
}
