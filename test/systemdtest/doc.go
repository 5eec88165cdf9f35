// Package systemdtest runs a real systemd as PID 1 in fresh pid, mount,
// net, uts and cgroup namespaces for integration tests, and removes it
// afterwards. The host is never touched: the namespaced systemd gets its
// own cgroup (a new directory in the cgroup2 hierarchy), tmpfs on /run and
// /tmp, overlays on /etc and /var (writes land in a tmpfs), read-only /sys
// and /proc/sys, and every unit that would reach outside (sysctl,
// tmpfiles, sysusers, utmp, binfmt, kernel mounts, host services) masked.
// journald runs, with volatile storage, so units' logs can be read.
//
// From outside, tests write files through RootPath (the namespace's view of
// the file system), run commands with Run or Command (nsenter into the
// mount, pid, net and uts namespaces) and reach its network through
// NetNSPath or InNetNS.
//
// # Go code that talks to systemd over D-Bus
//
// systemd identifies a D-Bus peer by its PID and drops connections from
// processes outside its PID namespace (it cannot see them). A Go process
// cannot move itself into another PID namespace: setns(CLONE_NEWPID) only
// applies to children created afterwards. So D-Bus code runs in a child:
// RunInside re-executes the test binary through nsenter, inside the
// namespaces, running one named test function, which calls SkipUnlessInside
// first and may pass results back with Emit:
//
//	func TestReloadInside(t *testing.T) {
//		systemdtest.SkipUnlessInside(t)
//		m, err := systemd.NewDBus(t.Context())
//		...
//		systemdtest.Emit(t, result)
//	}
//
//	func TestReload(t *testing.T) {
//		sd := systemdtest.Start(t, systemdtest.Options{})
//		var result Result
//		systemdtest.RunInside(t, sd, "TestReloadInside", map[string]string{"VIP": "a"}, &result)
//	}
//
// The child sees the namespace's own /run, /etc and /proc, so code written
// for a node (systemd.NewDBus, paths under /etc/lbctl) runs unchanged.
package systemdtest
