// Package content is berth's content-addressed blob store.
//
// Blobs are named by their sha256 digest and only ever made by committing an
// ingest: a Writer streams data into an ingest directory, hashing as it
// goes, and Commit checks size and digest, fsyncs and renames the file into
// place in one step, so a blob that exists is complete and verified.
//
// On disk, under the root:
//
//	blobs/sha256/<hex>          committed blobs, read-only (0444); mtime = commit time
//	ingest/<sha256(ref)>/       one per ingest, flock'ed by its live writer
//	    data                    the bytes so far (size = offset, mtime = last write)
//	    ref                     the caller's name; written last at setup
//	    expected, total         the expected digest and size, when known
//	    hashstate               sha256 state at a fsynced offset (checkpoint.go)
//	    *.tmp                   a small file being replaced; debris after a crash
//
// An ingest outlives its Writer and its process: Close keeps it, and the next
// Writer for the same ref resumes at Offset (for an HTTP Range request). The
// sha256 state is checkpointed every few MiB, after the data it covers is
// fsynced, so resuming re-hashes only the tail. The flock on the ingest
// directory keeps one writer per ref across processes; the kernel drops it
// when a process dies, so a killed download never blocks the next one.
//
// Only sha256 is written; a digest is checked (canonical lowercase hex)
// before it becomes a path. A Store keeps no state in memory and is safe
// for concurrent use; several Stores and processes may share a root.
package content
