// Package install holds the real-kernel integration tests of the
// transactional install (issue 5): lbctl install, rollback, recovery and
// status on an LB node that is a real systemd as PID 1 in namespaces of its
// own (test/systemdtest), with BIRD, HAProxy units, nftables, addresses and
// TPROXY routing all live, and the campus example as the release.
//
// The package has no code of its own; everything is in its tests:
//
//   - TestColdInstall: the first install of campus brings up every VIP,
//     the firewall, the addresses, bird.conf and the announced routes, and
//     a request through a VIP reaches a backend.
//   - TestFaultInjection: every call the applier makes to the node during
//     an upgrade fails in turn; after each, the node is field by field the
//     node before. TestColdInstallFailure fails a first install at its end.
//   - TestCrash: lbctl install is SIGKILLed at random moments; after the
//     next lbctl status the node is entirely the old release or the new one.
//   - TestIncremental: changing one service reloads exactly one VIP unit;
//     timings of cold and incremental installs.
//   - TestRefused: unsigned bundles, bundles whose certificate is missing
//     and downgrades are refused with nothing changed; rollback works.
//
// They need root and skip otherwise.
package install
