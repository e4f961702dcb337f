package archive

import (
	digest "github.com/opencontainers/go-digest"
)

// Compression of a layer stream, detected by its magic bytes.
type Compression int

// Known compressions.
const (
	Uncompressed Compression = iota
	Gzip
	Zstd
)

// WhiteoutMode says how Apply records a deletion (".wh.name") or an opaque
// directory (".wh..wh..opq").
type WhiteoutMode int

const (
	// WhiteoutDelete removes the path from the tree: for drivers whose
	// snapshot directory is the whole file system (vfs, btrfs).
	WhiteoutDelete WhiteoutMode = iota
	// WhiteoutOverlay writes overlayfs whiteouts (a 0/0 character device,
	// the trusted.overlay.opaque xattr) into an upper directory.
	WhiteoutOverlay
)

// ApplyOptions tune Apply.
type ApplyOptions struct {
	Whiteouts WhiteoutMode
	// Expected, when set, is the digest of the stream as given (compressed
	// or not): Apply fails, and says so, when the bytes do not match it.
	Expected digest.Digest
	// ExpectedDiffID, when set, is the digest of the uncompressed tar.
	ExpectedDiffID digest.Digest
	// MaxFiles, when not 0, is the most entries the tar may hold.
	MaxFiles int64
	// MaxBytes, when not 0, is the most bytes the uncompressed tar may
	// hold: it bounds a decompression bomb too.
	MaxBytes int64
	// Sync makes Apply syncfs the root's file system once at the end.
	Sync bool
	// NoOverwriteDirNonDir refuses an entry that would replace a directory
	// with a non-directory or the reverse (docker cp's
	// noOverwriteDirNonDir).
	NoOverwriteDirNonDir bool
	// Dir, when set, is where below the root the entries go (relative,
	// clean): names may not climb out of it, symlinks resolve in the root
	// (docker cp extracts into a directory of the container's root).
	Dir string
	// NoDigests skips hashing (Result has no digests; Expected and
	// ExpectedDiffID must be empty): a copy, not a layer.
	NoDigests bool
	// Owner, when set, owns every entry instead of the tar's uid and gid
	// (docker cp -a: the container's user).
	Owner *Owner
	// Parallel, when above 1, is how many goroutines create small regular
	// files, one directory's files each, while the tar is read on: creates
	// in different directories then proceed on different cores (on ext4 a
	// create can cost hundreds of µs of CPU). It applies only when the root
	// is empty and Dir is not set; otherwise Apply is sequential.
	Parallel int
}

// Owner is a uid and gid.
type Owner struct{ UID, GID int }

// Result reports an applied layer.
type Result struct {
	Digest      digest.Digest // of the stream as given
	DiffID      digest.Digest // of the uncompressed tar
	Size        int64         // bytes of the uncompressed tar
	Compression Compression
	Entries     int64 // tar entries read
	// OpaqueRoot says the layer hides all the layers below it (an opaque
	// marker at its root). overlayfs ignores trusted.overlay.opaque on an
	// upper root, so with WhiteoutOverlay the driver must drop the lower
	// layers itself.
	OpaqueRoot bool
}
