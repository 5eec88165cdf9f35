// Package sync keeps a node at the newest published bundle: it finds the
// newest bundle at a source (a directory of `<name>-<serial>.bundle` files or
// an HTTP(S) URL of the latest bundle, fetched with conditional requests),
// verifies its signature, and installs it only when its serial is newer than
// the node's current release. Nothing unsigned is ever installed: the bytes
// handed to Install are exactly the bytes Verify accepted.
//
// Sync runs once per call (the lbctl-sync.timer unit runs it hourly): an
// optional random initial delay spreads a fleet's requests, and fetch errors
// are retried a bounded number of times with exponential backoff and
// jitter. Verification and install failures are not retried; the next run
// tries again.
//
// The package owns the decision, not the mechanics: verification, the
// current serial and the install itself are injected (see Installer), so the
// logic is tested with fakes and the CLI wires the node's real installer.
// It never logs; Options.Progress receives one line per step.
package sync
