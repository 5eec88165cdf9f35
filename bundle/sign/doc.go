// Package sign owns lbctl's signing keys and the set of keys a node trusts.
//
// Keys are minisign keys (aead.dev/minisign), stored in minisign's own file
// formats so that `minisign -V` verifies what lbctl signs and operators can use
// keys they already have:
//
//	NAME.pub   "untrusted comment: minisign public key XXXXXXXXXXXXXXXX" + base64
//	NAME.key   minisign secret key, scrypt-encrypted unless generated unencrypted
//
// A trust directory (by default /etc/lbctl/trusted.d) holds one or more
// public keys as *.pub files, so keys can be rotated, and an optional file
// named "revoked" listing revoked key IDs, one per line (16 hex digits as
// minisign prints them; blank lines and '#' comments are ignored). A revoked
// key is refused even if its .pub file is still present.
//
// The package reads and writes key files only; it never prompts: callers pass
// a function that supplies the passphrase (the CLI reads LBCTL_KEY_PASSPHRASE
// or the terminal).
package sign
