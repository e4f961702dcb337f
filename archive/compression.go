package archive

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"berth.dev/berth/errdefs"
)

func (c Compression) String() string {
	switch c {
	case Uncompressed:
		return "uncompressed"
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("compression(%d)", int(c))
}

var (
	magicGzip  = []byte{0x1f, 0x8b}
	magicZstd  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicXz    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
	magicBzip2 = []byte{'B', 'Z', 'h'}
)

// DetectCompression looks at the first bytes of r, without consuming them,
// and names the compression. A stream shorter than any magic is taken as
// uncompressed (the tar reader then judges it). xz and bzip2, which docker
// reads but no registry serves for new images, are refused as not
// implemented rather than misread as a tar.
func DetectCompression(r *bufio.Reader) (Compression, error) {
	head, err := r.Peek(6)
	if err != nil && !errors.Is(err, io.EOF) {
		return Uncompressed, fmt.Errorf("read layer header: %w", err)
	}
	switch {
	case bytes.HasPrefix(head, magicGzip):
		return Gzip, nil
	case bytes.HasPrefix(head, magicZstd):
		return Zstd, nil
	case bytes.HasPrefix(head, magicXz):
		return Uncompressed, errdefs.NotImplemented("xz-compressed layers are not supported")
	case bytes.HasPrefix(head, magicBzip2):
		return Uncompressed, errdefs.NotImplemented("bzip2-compressed layers are not supported")
	}
	return Uncompressed, nil
}

// Decompress detects the compression of r and returns a reader of the
// uncompressed bytes. Close releases the decompressor; it does not close r.
func Decompress(r io.Reader) (io.ReadCloser, Compression, error) {
	br, ok := r.(*bufio.Reader)
	if !ok || br.Size() < 16 {
		br = bufio.NewReaderSize(r, 1<<16)
	}
	c, err := DetectCompression(br)
	if err != nil {
		return nil, c, err
	}
	rc, err := decompressor(br, c)
	return rc, c, err
}

func decompressor(br *bufio.Reader, c Compression) (io.ReadCloser, error) {
	switch c {
	case Gzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, errdefs.Invalid("gzip layer: %w", err)
		}
		return zr, nil
	case Zstd:
		// A decoder without goroutines of its own (Apply reads ahead in
		// one), whose window a hostile frame cannot make larger than what
		// `zstd --long=27` writes.
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(1<<27))
		if err != nil {
			return nil, errdefs.Invalid("zstd layer: %w", err)
		}
		return zr.IOReadCloser(), nil
	}
	return io.NopCloser(br), nil
}

// Compress returns a writer that compresses into w with c. Close flushes the
// compressor; it does not close w.
func Compress(w io.Writer, c Compression) (io.WriteCloser, error) {
	switch c {
	case Uncompressed:
		return nopWriteCloser{w}, nil
	case Gzip:
		return gzip.NewWriterLevel(w, gzip.DefaultCompression)
	case Zstd:
		return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedDefault))
	}
	return nil, errdefs.Invalid("unknown compression %d", int(c))
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
