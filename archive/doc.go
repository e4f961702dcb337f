// Package archive reads and writes layer tars: it applies a layer (any
// compression, whiteouts, hostile input refused) onto a directory in one
// streaming pass, and writes a layer from a set of changes (an overlay upper
// directory, or the difference between two trees).
//
// # Applying
//
// Apply reads the stream once. A read-ahead goroutine reads the input to
// its end, hashing it (the layer digest) and decompressing it (gzip or zstd,
// found by magic); the caller's goroutine hashes the tar (the DiffID) and
// extracts it. Digests are compared at the end: a mismatch is an error and
// the caller throws the tree away.
//
// Every name is resolved below the root, never beside it: "../" that climbs
// out is refused, a leading "/" is dropped, and the parent directory of each
// entry is opened with openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS), so a
// symlink in the tar or already in the tree is followed as if the root were
// "/" (a symlink to /etc leads to <root>/etc). The last component is never
// followed: files are created O_EXCL|O_NOFOLLOW after removing what was
// there, metadata is set by descriptor or with AT_SYMLINK_NOFOLLOW, and a
// hardlink to a symlink links the symlink. trusted.overlay.* xattrs never
// come from a tar. MaxFiles and MaxBytes bound tar bombs.
//
// Whiteouts (".wh.name", ".wh..wh..opq") either delete from the tree
// (vfs, btrfs: an opaque directory loses what this layer did not write) or
// become overlayfs whiteouts (a 0/0 character device, the
// trusted.overlay.opaque xattr) in an upper directory.
//
// # Writing
//
// OverlayChanges and TreeChanges list what a layer changed, as `docker
// diff` does; WriteLayer writes those changes in docker's format (PAX,
// whole-second mtimes, whiteout files) and WriteTree a whole tree.
package archive
