// Package nsunits lists the systemd units a systemd running as PID 1 in a
// test's namespaces must not start, for the test harnesses
// (test/systemdtest, test/testbed) that mask them.
package nsunits

// Host are the units that would write to the host (sysctl, tmpfiles, utmp,
// random seed, kernel file systems), start host services, or wait for
// hardware. Callers append what their own systemd must not start either;
// the slice is never to be changed in place.
var Host = []string{
	"systemd-sysusers.service", "systemd-sysctl.service", "systemd-binfmt.service",
	"systemd-modules-load.service", "systemd-tmpfiles-setup.service",
	"systemd-tmpfiles-setup-dev.service", "systemd-tmpfiles-clean.service",
	"systemd-tmpfiles-clean.timer", "systemd-update-utmp.service",
	"systemd-update-utmp-runlevel.service", "systemd-remount-fs.service",
	"systemd-random-seed.service", "systemd-hwdb-update.service", "systemd-firstboot.service",
	"systemd-machine-id-commit.service", "systemd-journald-audit.socket",
	"systemd-journal-catalog-update.service", "systemd-pstore.service",
	"systemd-timesyncd.service", "systemd-logind.service", "systemd-networkd.service",
	"dev-hugepages.mount", "sys-kernel-debug.mount", "sys-kernel-tracing.mount",
	"sys-kernel-config.mount", "sys-fs-fuse-connections.mount",
	"proc-sys-fs-binfmt_misc.automount", "timers.target", "getty.target",
	"console-getty.service", "haproxy.service", "nftables.service",
	"postgresql.service", "dbus.service", "dbus.socket",
}
