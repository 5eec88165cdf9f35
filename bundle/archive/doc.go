// Package archive owns the lbctl bundle format: writing a signed bundle,
// reading one back safely, and extracting a verified bundle to disk.
//
// A bundle is a gzip-compressed USTAR tar whose members come in a fixed
// order:
//
//	MANIFEST.json          the manifest (format, serial, times, key id, files)
//	MANIFEST.json.minisig  minisign signature of the manifest bytes
//	<payload files>        regular files, in the manifest's (sorted) order
//
// The minisign trusted comment is "serial:<N> manifest-sha256:<hex>", so
// `minisign -Vm MANIFEST.json -p key.pub` shows what was signed. Every tar
// header is fixed (mode 0644, uid/gid 0, no user or group names, mtime = the
// manifest's creation time) and the gzip header carries no name and the same
// time, so the same files, serial and time give the same bytes.
//
// Read is safe by construction: it never touches the file system, it bounds
// the decompressed size and the compression ratio while streaming, and it
// verifies the signature against trusted, non-revoked keys before reading
// any payload member. Every payload member must then be a regular file with a
// safe name, listed in the manifest, in manifest order, with the listed size
// and SHA-256; nothing may be missing, extra, duplicated or trailing.
//
// The headers are bound to the signature: every member's tar header block
// must be byte for byte the one Write makes from the manifest's name, size
// and creation time (mode 0644, uid/gid 0, no owner names, no link name or
// device numbers, mtime = the manifest's creation time, plain USTAR in one
// block: no PAX records, xattrs or GNU extensions), and the gzip header must
// carry no name, comment or extra field, OS "unknown" and the same time. A
// bundle with a setuid member, an owner, a symlink or an extension record
// is refused (ErrHeader, ErrNotRegular, ErrTarFormat) with the member and
// header field named, so whatever reads an accepted bundle, lbctl or
// tar(1) by hand, gets nothing the signed manifest does not say. Each
// failure has its own sentinel error for errors.Is. Writing a verified
// bundle's files to disk is the node's (node/release).
//
// The package must not import node-side packages and builds on any OS.
package archive
