package archive

import (
	"errors"
	"fmt"

	"github.com/lbctl/lbctl/bundle/sign"
)

// Reasons a bundle is refused. Every error Read returns wraps exactly one of
// these (the limit errors also wrap ErrLimit).
var (
	// ErrNotGzip: the input is not a gzip stream.
	ErrNotGzip = errors.New("not a gzip-compressed bundle")
	// ErrCorrupt: the gzip or tar stream is damaged (bad checksum, bad
	// deflate data, bad tar header).
	ErrCorrupt = errors.New("corrupt bundle")
	// ErrTruncated: the stream ends early.
	ErrTruncated = errors.New("truncated bundle")
	// ErrTrailingData: bytes follow the end of the tar or the gzip stream.
	ErrTrailingData = errors.New("data after the end of the bundle")
	// ErrNoManifest: the first member is not MANIFEST.json.
	ErrNoManifest = errors.New("first member is not " + ManifestName)
	// ErrUnsigned: the second member is not the manifest's signature.
	ErrUnsigned = errors.New("bundle is not signed")
	// ErrMalformedSignature: the signature member is not a minisign
	// signature.
	ErrMalformedSignature = errors.New("malformed signature")
	// ErrUntrustedKey: signed by a key that is not trusted.
	ErrUntrustedKey = sign.ErrUntrustedKey
	// ErrRevokedKey: signed by a revoked key.
	ErrRevokedKey = sign.ErrRevokedKey
	// ErrBadSignature: the signature does not verify for the manifest bytes.
	ErrBadSignature = errors.New("bad signature")
	// ErrTrustedComment: the signed trusted comment does not state the
	// manifest's serial and hash.
	ErrTrustedComment = errors.New("trusted comment does not match the manifest")
	// ErrBadManifest: the signed manifest is malformed or not canonical.
	ErrBadManifest = errors.New("malformed manifest")
	// ErrFormatVersion: the manifest's format version is not supported.
	ErrFormatVersion = errors.New("unsupported bundle format version")
	// ErrKeyMismatch: the manifest names another key than the signer.
	ErrKeyMismatch = errors.New("manifest key id is not the signer's")
	// ErrExpired: the bundle's expiry time has passed.
	ErrExpired = errors.New("bundle expired")
	// ErrNotRegular: a member is not a regular file (directory, symlink,
	// hard link, device, fifo, ...).
	ErrNotRegular = errors.New("member is not a regular file")
	// ErrUnsafePath: a name is empty, absolute, has "..", ".", empty
	// elements, a backslash, control characters or is otherwise unsafe.
	ErrUnsafePath = errors.New("unsafe path")
	// ErrDuplicate: a member name appears twice.
	ErrDuplicate = errors.New("duplicate member")
	// ErrUnexpectedMember: a member is not listed in the manifest.
	ErrUnexpectedMember = errors.New("member not in the manifest")
	// ErrMemberOrder: a member comes out of manifest order.
	ErrMemberOrder = errors.New("member out of manifest order")
	// ErrMissingMember: a file of the manifest is absent.
	ErrMissingMember = errors.New("manifest file missing from the bundle")
	// ErrSizeMismatch: a member's size differs from the manifest's.
	ErrSizeMismatch = errors.New("member size does not match the manifest")
	// ErrHashMismatch: a member's SHA-256 differs from the manifest's.
	ErrHashMismatch = errors.New("member sha256 does not match the manifest")
	// ErrTarFormat: a member header uses PAX or GNU extensions; bundles are
	// plain USTAR.
	ErrTarFormat = errors.New("member header is not plain ustar")
	// ErrHeader: a member header (or the gzip header) differs from the one
	// Write makes from the signed manifest: a mode other than 0644 (setuid,
	// setgid, sticky, executable), an owner id or name, a link name, device
	// numbers, another time than the manifest's creation time, or any
	// other byte. The error names the member and the header field.
	ErrHeader = errors.New("header is not what lbctl build writes")

	// ErrLimit is wrapped by every limit error below.
	ErrLimit = errors.New("bundle limit exceeded")
	// ErrTooManyMembers: more members than Limits.MaxMembers.
	ErrTooManyMembers = fmt.Errorf("%w: too many members", ErrLimit)
	// ErrMemberTooLarge: a member is larger than Limits.MaxMemberSize (or
	// the manifest or signature larger than their fixed caps).
	ErrMemberTooLarge = fmt.Errorf("%w: member too large", ErrLimit)
	// ErrTooLarge: the decompressed bundle exceeds Limits.MaxTotalSize.
	ErrTooLarge = fmt.Errorf("%w: bundle too large", ErrLimit)
	// ErrCompressionRatio: decompressed bytes outgrow the compressed bytes
	// read by more than Limits.MaxRatio (a compression bomb).
	ErrCompressionRatio = fmt.Errorf("%w: compression ratio too high", ErrLimit)
)
