package content

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
)

// A checkpoint is the sha256 state after the first Offset bytes of data, so
// a resumed writer hashes only what came after. It is written only once
// those bytes are fsynced: after a power loss the data may lose its tail (the
// tail is re-hashed as it is found) but never the part the state covers.
//
// On disk: magic, offset (uint64), state length (uint32), state (what
// crypto/sha256's MarshalBinary gives), CRC-32C of all that. The file is
// replaced by rename without fsync: a torn or empty one fails the CRC and
// resuming falls back to hashing the whole file.

var checkpointMagic = []byte("berth-sha256-ckpt-1\n")

var crcTable = crc32.MakeTable(crc32.Castagnoli)

func encodeCheckpoint(off int64, state []byte) []byte {
	b := make([]byte, 0, len(checkpointMagic)+8+4+len(state)+4)
	b = append(b, checkpointMagic...)
	b = binary.BigEndian.AppendUint64(b, uint64(off))
	b = binary.BigEndian.AppendUint32(b, uint32(len(state)))
	b = append(b, state...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
}

var errBadCheckpoint = errors.New("bad checkpoint")

func decodeCheckpoint(b []byte) (int64, []byte, error) {
	n := len(checkpointMagic)
	if len(b) < n+8+4+4 || !bytes.Equal(b[:n], checkpointMagic) {
		return 0, nil, errBadCheckpoint
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, crcTable) != sum {
		return 0, nil, errBadCheckpoint
	}
	off := binary.BigEndian.Uint64(body[n:])
	size := binary.BigEndian.Uint32(body[n+8:])
	state := body[n+12:]
	if uint32(len(state)) != size || off > 1<<62 {
		return 0, nil, errBadCheckpoint
	}
	return int64(off), state, nil
}

// loadCheckpoint returns the saved offset and hash state of the ingest in
// dir; ok is false when there is none that can be trusted.
func loadCheckpoint(dir string) (off int64, state []byte, ok bool) {
	b, err := os.ReadFile(filepath.Join(dir, fileState))
	if err != nil {
		return 0, nil, false
	}
	off, state, err = decodeCheckpoint(b)
	return off, state, err == nil
}
