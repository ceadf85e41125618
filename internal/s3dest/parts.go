package s3dest

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// castagnoli is the CRC32C polynomial S3 uses for x-amz-checksum-crc32c.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeCRC32C is S3's text for a CRC32C: base64 of the four big-endian bytes.
func encodeCRC32C(sum uint32) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], sum)
	return base64.StdEncoding.EncodeToString(b[:])
}

// part is one request body of an upload: the whole object of a PutObject or one part of a
// multipart upload. Its body can be read again from the start (Seek(0, io.SeekStart)) for a
// retry.
type part struct {
	number int32 // 1-based
	body   io.ReadSeeker
	size   int64
	crc    uint32 // CRC32C of the body
}

// partSource cuts an object into parts, in order.
type partSource interface {
	// next returns the next part, or io.EOF after the last one.
	next() (part, error)
	// sum is the CRC32C of the whole object; valid once next has returned io.EOF.
	sum() uint32
}

// hashBufSize is the read size of the checksum pass over a file.
const hashBufSize = 1 << 20

// sectionParts cuts an io.ReaderAt (an *os.File, a *bytes.Reader) into io.SectionReaders:
// parts are read in place, concurrently, and never copied into memory. A pass over the
// object before any request computes the whole object's and each part's CRC32C, so that
// the first request can carry them.
type sectionParts struct {
	ra          io.ReaderAt
	start, size int64
	partSize    int64
	crcs        []uint32
	whole       uint32
	i           int
}

func newSectionParts(ra io.ReaderAt, start, size, partSize int64) (*sectionParts, error) {
	s := &sectionParts{ra: ra, start: start, size: size, partSize: partSize}
	buf := make([]byte, min(hashBufSize, max(size, 1)))
	r := io.NewSectionReader(ra, start, size)
	var whole, cur uint32
	var inPart, total int64
	for {
		n, err := r.Read(buf)
		total += int64(n)
		for b := buf[:n]; len(b) > 0; {
			take := min(int64(len(b)), partSize-inPart)
			whole = crc32.Update(whole, castagnoli, b[:take])
			cur = crc32.Update(cur, castagnoli, b[:take])
			inPart += take
			b = b[take:]
			if inPart == partSize {
				s.crcs = append(s.crcs, cur)
				cur, inPart = 0, 0
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read the object to checksum it: %w", err)
		}
	}
	if total != size {
		return nil, fmt.Errorf("object has %d bytes, Object.Size says %d", total, size)
	}
	if inPart > 0 || size == 0 {
		s.crcs = append(s.crcs, cur)
	}
	s.whole = whole
	return s, nil
}

func (s *sectionParts) next() (part, error) {
	if s.i >= len(s.crcs) {
		return part{}, io.EOF
	}
	off := int64(s.i) * s.partSize
	n := min(s.partSize, s.size-off)
	p := part{number: int32(s.i + 1), body: io.NewSectionReader(s.ra, s.start+off, n), size: n, crc: s.crcs[s.i]}
	s.i++
	return p, nil
}

func (s *sectionParts) sum() uint32 { return s.whole }

// streamParts cuts any other reader into parts held in memory, one buffer per part in
// flight (the caller bounds how many), and hashes the object as it goes.
type streamParts struct {
	r        io.Reader
	partSize int64
	n        int32
	whole    uint32
	done     bool
}

func (s *streamParts) next() (part, error) {
	if s.done {
		return part{}, io.EOF
	}
	buf := make([]byte, s.partSize)
	n, err := io.ReadFull(s.r, buf)
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		s.done = true
		if n == 0 && s.n > 0 {
			return part{}, io.EOF
		}
	case err != nil:
		return part{}, fmt.Errorf("read the object: %w", err)
	}
	if s.n >= MaxParts {
		return part{}, fmt.Errorf("the object has more than %d parts of %d bytes: set Object.Size or a larger Object.PartSize", MaxParts, s.partSize)
	}
	buf = buf[:n]
	crc := crc32.Checksum(buf, castagnoli)
	s.whole = crc32.Update(s.whole, castagnoli, buf)
	s.n++
	return part{number: s.n, body: bytes.NewReader(buf), size: int64(n), crc: crc}, nil
}

func (s *streamParts) sum() uint32 { return s.whole }
