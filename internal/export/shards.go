package export

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/dreamdata/destination-aws-s3/internal/receipt"
)

// Shards are a table's uploaded shards in index order. In Go they are receipt files; on the
// wire (heartbeat details, activity results and inputs, all kept in Temporal's history) they
// are packed: the keys, which follow from the index, are stored once as a pattern, and each
// shard's rows, bytes and CRC32C as varints and four bytes. About 14 bytes a shard instead of
// about 140, so a table of 20,000 shards stays far below Temporal's 2 MiB payload limit and
// its 512 KiB warning.
type Shards []receipt.File

// packedShards is the wire form of Shards.
type packedShards struct {
	// Key is the key of shard i with its 12-digit index replaced by indexMark; shard i has
	// index First + i×Stride (a stream group's shards are interleaved with the other groups':
	// see Interleave). Stride 0 means 1.
	Key    string `json:"key"`
	First  int    `json:"first,omitempty"`
	Stride int    `json:"stride,omitempty"`
	// Packed is base64 of, per shard: rows and bytes as zigzag varints of their difference
	// from the previous shard's (shards of a table are alike, so these are short), then the
	// 4 CRC32C bytes (zero when absent: see NoCRC).
	Packed string `json:"packed"`
	// NoCRC lists the indexes whose CRC32C is absent, when any is.
	NoCRC []int `json:"no_crc,omitempty"`
	// Files holds the shards verbatim when their keys follow no single pattern.
	Files []receipt.File `json:"files,omitempty"`
}

const indexMark = "{index}"

// keyNumbering is how the shards' keys follow from their position: a pattern, and the
// index of shard i as first + i×stride.
type keyNumbering struct {
	pattern       string
	first, stride int
}

func (n keyNumbering) key(i int) string {
	stride := max(n.stride, 1)
	return strings.Replace(n.pattern, indexMark, fmt.Sprintf("%012d", n.first+i*stride), 1)
}

// numbering returns the numbering every key follows, or false when the keys follow none.
func (s Shards) numbering() (keyNumbering, bool) {
	if len(s) == 0 {
		return keyNumbering{}, true
	}
	pattern, first, ok := splitShardKey(s[0].Key)
	if !ok {
		return keyNumbering{}, false
	}
	n := keyNumbering{pattern: pattern, first: first, stride: 1}
	if len(s) > 1 {
		p1, second, ok := splitShardKey(s[1].Key)
		if !ok || p1 != pattern || second <= first {
			return keyNumbering{}, false
		}
		n.stride = second - first
	}
	for i, f := range s {
		if f.Key != n.key(i) {
			return keyNumbering{}, false
		}
	}
	return n, true
}

// splitShardKey finds the last "_" followed by 12 digits in key.
func splitShardKey(key string) (pattern string, index int, ok bool) {
	for at := strings.LastIndex(key, "_"); at >= 0; at = strings.LastIndex(key[:at], "_") {
		digits := key[at+1:]
		if len(digits) < 12 {
			continue
		}
		digits = digits[:12]
		i, err := strconv.Atoi(digits)
		if err != nil || strings.ContainsAny(digits, "+-") {
			continue
		}
		return key[:at+1] + indexMark + key[at+13:], i, true
	}
	return "", 0, false
}

// MarshalJSON packs the shards.
func (s Shards) MarshalJSON() ([]byte, error) {
	if s == nil {
		return []byte("null"), nil
	}
	num, ok := s.numbering()
	if !ok {
		return json.Marshal(packedShards{Files: []receipt.File(s)})
	}
	out := packedShards{Key: num.pattern, First: num.first}
	if num.stride > 1 {
		out.Stride = num.stride
	}
	buf := make([]byte, 0, len(s)*10)
	var prevRows, prevBytes int64
	for i, f := range s {
		buf = binary.AppendVarint(buf, f.Rows-prevRows)
		buf = binary.AppendVarint(buf, f.Bytes-prevBytes)
		prevRows, prevBytes = f.Rows, f.Bytes
		var crc [4]byte
		if f.CRC32C != "" {
			raw, err := base64.StdEncoding.DecodeString(f.CRC32C)
			if err != nil || len(raw) != 4 {
				return json.Marshal(packedShards{Files: []receipt.File(s)})
			}
			copy(crc[:], raw)
		} else {
			out.NoCRC = append(out.NoCRC, i)
		}
		buf = append(buf, crc[:]...)
	}
	out.Packed = base64.StdEncoding.EncodeToString(buf)
	return json.Marshal(out)
}

// UnmarshalJSON unpacks the shards; it also reads a plain JSON array of files (progress
// recorded by earlier releases).
func (s *Shards) UnmarshalJSON(data []byte) error {
	trimmed := strings.TrimSpace(string(data))
	switch {
	case trimmed == "null":
		*s = nil
		return nil
	case strings.HasPrefix(trimmed, "["):
		var files []receipt.File
		if err := json.Unmarshal(data, &files); err != nil {
			return err
		}
		*s = files
		return nil
	}
	var p packedShards
	if err := json.Unmarshal(data, &p); err != nil {
		return err
	}
	if p.Files != nil {
		*s = p.Files
		return nil
	}
	raw, err := base64.StdEncoding.DecodeString(p.Packed)
	if err != nil {
		return fmt.Errorf("packed shards: %w", err)
	}
	num := keyNumbering{pattern: p.Key, first: p.First, stride: p.Stride}
	noCRC := map[int]bool{}
	for _, i := range p.NoCRC {
		noCRC[i] = true
	}
	out := Shards{}
	var rows, size int64
	for i := 0; len(raw) > 0; i++ {
		dRows, n := binary.Varint(raw)
		if n <= 0 {
			return errBadPacking
		}
		raw = raw[n:]
		dSize, n := binary.Varint(raw)
		if n <= 0 || len(raw) < n+4 {
			return errBadPacking
		}
		crc := raw[n : n+4]
		raw = raw[n+4:]
		rows, size = rows+dRows, size+dSize
		f := receipt.File{Key: num.key(i), Rows: rows, Bytes: size}
		if !noCRC[i] {
			f.CRC32C = base64.StdEncoding.EncodeToString(crc)
		}
		out = append(out, f)
	}
	*s = out
	return nil
}

var errBadPacking = errors.New("packed shards: truncated")
