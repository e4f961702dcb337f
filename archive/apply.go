package archive

import (
	"archive/tar"
	"bufio"
	"context"
	_ "crypto/sha256" // go-digest finds its algorithms registered by import
	_ "crypto/sha512"
	"fmt"
	"io"

	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"berth.dev/berth/errdefs"
)

// copyBufSize is the buffer file contents go through: large enough that a
// big file costs few write(2) calls.
const copyBufSize = 1 << 20

// Apply extracts the layer tar read from r (gzip, zstd or uncompressed,
// detected by its magic) onto the directory root in one pass, hashing the
// stream as given and the uncompressed tar on the way. It reads r to its end
// so that the digests cover every byte. A layer whose digests do not match
// opts.Expected or opts.ExpectedDiffID is an error (errdefs invalid) after
// extraction: the caller must throw the tree away. Every entry is resolved
// inside root: no name, symlink or hardlink in the tar or already in root
// can make Apply write outside it. Apply returns once it no longer reads r
// (after at most one pending Read when it fails early), unless ctx is done
// first.
func Apply(ctx context.Context, root string, r io.Reader, opts ApplyOptions) (Result, error) {
	var res Result
	if opts.NoDigests && (opts.Expected != "" || opts.ExpectedDiffID != "") {
		return res, errdefs.Invalid("expected digests given with NoDigests")
	}
	dg, err := digesterFor(opts.Expected)
	if err != nil {
		return res, err
	}
	dd, err := digesterFor(opts.ExpectedDiffID)
	if err != nil {
		return res, err
	}
	rootfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return res, fmt.Errorf("open layer root %s: %w", root, err)
	}
	defer unix.Close(rootfd)

	var tee io.Writer = dg.Hash()
	if opts.NoDigests {
		tee = io.Discard
	}
	raw := bufio.NewReaderSize(io.TeeReader(r, tee), 1<<16)
	res.Compression, err = DetectCompression(raw)
	if err != nil {
		return res, err
	}
	dec, err := decompressor(raw, res.Compression)
	if err != nil {
		return res, err
	}
	// An uncompressed layer's DiffID is its digest: hash it once.
	sameHash := res.Compression == Uncompressed && dd.Digest().Algorithm() == dg.Digest().Algorithm()
	var ddHash io.Writer = dd.Hash()
	if sameHash || opts.NoDigests {
		ddHash = io.Discard
	}
	// The read-ahead goroutine reads the input to its end (trailing bytes
	// belong to the digest), hashing and decompressing it; this one hashes
	// the tar (its zero blocks and padding belong to the DiffID) and
	// extracts it.
	fill := fillFrom(dec)
	ra := newReadahead(ctx.Done(), func(buf []byte) (int, error) {
		n, err := fill(buf)
		if err == io.EOF && res.Compression != Uncompressed {
			if _, derr := io.Copy(io.Discard, raw); derr != nil {
				err = derr
			}
		}
		return n, err
	}, func() { dec.Close() }) // by the goroutine: it may outlive Apply
	defer ra.close(ctx.Done())
	counted := &countingReader{r: ra, h: ddHash, max: opts.MaxBytes}

	a := newApplier(ctx, rootfd, opts)
	defer a.close()
	if err := a.run(tar.NewReader(counted)); err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return res, cerr
		}
		return res, err
	}
	if _, err := io.Copy(io.Discard, counted); err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return res, cerr
		}
		return res, fmt.Errorf("read the end of the layer: %w", err)
	}
	ra.close(nil)
	if err := a.finish(); err != nil {
		return res, err
	}
	res.Size = counted.n
	if !opts.NoDigests {
		res.Digest, res.DiffID = dg.Digest(), dd.Digest()
		if sameHash {
			res.DiffID = res.Digest
		}
	}
	res.Entries, res.OpaqueRoot = a.entries, a.opaqueRoot
	if opts.Expected != "" && res.Digest != opts.Expected {
		return res, errdefs.Invalid("layer digest mismatch: got %s, expected %s", res.Digest, opts.Expected)
	}
	if opts.ExpectedDiffID != "" && res.DiffID != opts.ExpectedDiffID {
		return res, errdefs.Invalid("layer diff ID mismatch: got %s, expected %s", res.DiffID, opts.ExpectedDiffID)
	}
	if opts.Sync {
		// syncfs wants a real descriptor, not the O_PATH one.
		fd, err := unix.Openat(rootfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return res, fmt.Errorf("open %s to sync: %w", root, err)
		}
		err = unix.Syncfs(fd)
		unix.Close(fd)
		if err != nil {
			return res, fmt.Errorf("syncfs %s: %w", root, err)
		}
	}
	return res, nil
}

// digesterFor hashes with the algorithm of want, or sha256 when want is "".
func digesterFor(want digest.Digest) (digest.Digester, error) {
	if want == "" {
		return digest.Canonical.Digester(), nil
	}
	if err := want.Validate(); err != nil {
		return nil, errdefs.Invalid("expected digest %q: %w", want, err)
	}
	return want.Algorithm().Digester(), nil
}

// countingReader hashes and counts what passes through it and fails once
// more than max bytes (0: no limit) came out: that bounds a decompression
// bomb as well as a huge plain tar.
type countingReader struct {
	r   io.Reader
	h   io.Writer
	n   int64
	max int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.max > 0 && int64(len(p)) > c.max-c.n+1 {
		p = p[:c.max-c.n+1]
	}
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	if c.max > 0 && c.n > c.max {
		return n, errdefs.Invalid("layer is larger than the limit of %d bytes uncompressed", c.max)
	}
	return n, err
}
