package registry

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"berth.dev/berth/errdefs"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// maxResumes is how many times one blob's body may break and be resumed.
const maxResumes = 5

// OpenBlob streams blob desc from the registry. The reader ends at the
// descriptor's size (a longer body is an error, so an endless stream
// ends), and a body that breaks or ends early is resumed with a Range
// request from where it stopped. The caller verifies the digest (the
// content store does as it writes).
func (r *Repository) OpenBlob(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	if desc.Size < 0 {
		return nil, errdefs.Invalid("blob %s: negative size", desc.Digest)
	}
	b := &blobReader{ctx: ctx, r: r, desc: desc}
	if err := b.open(); err != nil {
		return nil, err
	}
	return b, nil
}

type blobReader struct {
	ctx     context.Context
	r       *Repository
	desc    ocispec.Descriptor
	body    io.ReadCloser
	off     int64
	resumes int
	lastErr error
}

func (b *blobReader) what() string { return "blob " + b.desc.Digest.String() }

// open asks for the blob from b.off on.
func (b *blobReader) open() error {
	req, err := http.NewRequestWithContext(b.ctx, http.MethodGet, b.r.url("blobs", b.desc.Digest.String()), nil)
	if err != nil {
		return err
	}
	if b.off > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(b.off, 10)+"-")
	}
	resp, err := b.r.do(req, b.what(), http.StatusOK, http.StatusPartialContent)
	if err != nil {
		return err
	}
	from := b.off
	if resp.StatusCode == http.StatusOK {
		from = 0
	}
	if resp.ContentLength > b.desc.Size-from {
		resp.Body.Close()
		return errdefs.Invalid("%s: the registry sends %d bytes from offset %d of a %d-byte blob", b.what(), resp.ContentLength, from, b.desc.Size)
	}
	body := resp.Body
	if b.off > 0 && resp.StatusCode == http.StatusOK {
		// The server ignored the range: skip what was read already.
		if _, err := io.CopyN(io.Discard, body, b.off); err != nil {
			body.Close()
			return errdefs.Unavailable("%s: resume: %v", b.what(), netError(err))
		}
	}
	b.body = body
	return nil
}

func (b *blobReader) Read(p []byte) (int, error) {
	for {
		if b.off >= b.desc.Size {
			// The size is known: one byte more means the registry sends
			// other content than the manifest says.
			if b.body != nil {
				var one [1]byte
				if n, _ := io.ReadFull(b.body, one[:]); n > 0 {
					return 0, errdefs.Invalid("%s: the registry sends more than the %d bytes the manifest gives", b.what(), b.desc.Size)
				}
			}
			return 0, io.EOF
		}
		if b.body == nil {
			if b.resumes >= maxResumes {
				return 0, errdefs.Unavailable("%s: broke off at %d of %d bytes %d times: %v", b.what(), b.off, b.desc.Size, b.resumes, b.lastErr)
			}
			b.resumes++
			if err := b.open(); err != nil {
				return 0, err
			}
		}
		if rest := b.desc.Size - b.off; int64(len(p)) > rest {
			p = p[:rest]
		}
		n, err := b.body.Read(p)
		b.off += int64(n)
		if err == nil || (err == io.EOF && b.off >= b.desc.Size) {
			if n > 0 || err == nil {
				return n, nil
			}
			continue
		}
		if cerr := b.ctx.Err(); cerr != nil {
			return n, cerr
		}
		// Broken or short: resume from b.off at the next read.
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		b.lastErr = netError(err)
		b.body.Close()
		b.body = nil
		if n > 0 {
			return n, nil
		}
	}
}

func (b *blobReader) Close() error {
	if b.body != nil {
		return b.body.Close()
	}
	return nil
}

// ReadBlob reads a small blob (an image config) whole and verifies it.
func (r *Repository) ReadBlob(ctx context.Context, desc ocispec.Descriptor, limit int64) ([]byte, error) {
	if desc.Size > limit {
		return nil, errdefs.Invalid("blob %s: %d bytes, more than the %d allowed", desc.Digest, desc.Size, limit)
	}
	rc, err := r.OpenBlob(ctx, desc)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	raw, err := io.ReadAll(rc)
	if err != nil {
		return nil, err
	}
	if int64(len(raw)) != desc.Size {
		return nil, errdefs.Invalid("blob %s: got %d bytes, want %d", desc.Digest, len(raw), desc.Size)
	}
	if err := desc.Digest.Validate(); err != nil {
		return nil, errdefs.Invalid("blob %s: %v", desc.Digest, err)
	}
	if got := desc.Digest.Algorithm().FromBytes(raw); got != desc.Digest {
		return nil, errdefs.Invalid("blob %s: the registry sent content with digest %s", desc.Digest, got)
	}
	return raw, nil
}

// BlobPush says how a blob got into the repository.
type BlobPush int

// How a blob got there.
const (
	BlobExisted BlobPush = iota // the repository had it
	BlobMounted                 // mounted from another repository of the registry
	BlobPushed                  // uploaded
)

// PushBlob makes sure the repository has blob desc: it is there already,
// or mounted from one of the repositories in from (which the registry
// may refuse), or uploaded from what open returns.
func (r *Repository) PushBlob(ctx context.Context, desc ocispec.Descriptor, from []string, open func() (io.ReadCloser, error)) (BlobPush, error) {
	if ok, err := r.BlobExists(ctx, desc.Digest); err != nil || ok {
		return BlobExisted, err
	}
	var location *url.URL
	for _, f := range from {
		if f == r.path {
			continue
		}
		q := url.Values{"mount": {desc.Digest.String()}, "from": {f}}
		mounted, loc, err := r.startUpload(ctx, q)
		if err != nil {
			return 0, err
		}
		if mounted {
			return BlobMounted, nil
		}
		location = loc // the registry began an upload instead: use it
		break
	}
	if location == nil {
		var err error
		if _, location, err = r.startUpload(ctx, nil); err != nil {
			return 0, err
		}
	}
	body, err := open()
	if err != nil {
		return 0, err
	}
	defer body.Close()
	q := location.Query()
	q.Set("digest", desc.Digest.String())
	location.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, location.String(), body)
	if err != nil {
		return 0, err
	}
	req.ContentLength = desc.Size
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := r.do(req, "upload "+r.what(desc.Digest), http.StatusCreated, http.StatusNoContent, http.StatusAccepted)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return BlobPushed, nil
}

func (r *Repository) what(d digest.Digest) string { return "blob " + d.String() + " to " + r.path }

// startUpload posts to the upload endpoint: 201 means mounted, 202 is an
// upload session at the returned location.
func (r *Repository) startUpload(ctx context.Context, q url.Values) (bool, *url.URL, error) {
	u := r.base.String() + "/v2/" + r.path + "/blobs/uploads/"
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return false, nil, err
	}
	req.GetBody = func() (io.ReadCloser, error) { return http.NoBody, nil }
	resp, err := r.do(req, "start upload to "+r.path, http.StatusCreated, http.StatusAccepted)
	if err != nil {
		return false, nil, err
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusCreated {
		return true, nil, nil
	}
	loc, err := resp.Location()
	if err != nil {
		return false, nil, errdefs.Unavailable("start upload to %s: %s without a usable Location: %v", r.path, resp.Status, err)
	}
	return false, loc, nil
}
