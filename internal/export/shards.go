package export

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
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
	// Key is the key of shard i with its 12-digit index replaced by indexMark.
	Key string `json:"key"`
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

// keyPattern returns the pattern shared by every key (the 12-digit index replaced), or
// false when the keys do not share one.
func (s Shards) keyPattern() (string, bool) {
	if len(s) == 0 {
		return "", true
	}
	idx := fmt.Sprintf("%012d", 0)
	k := s[0].Key
	at := strings.LastIndex(k, "_"+idx)
	if at < 0 {
		return "", false
	}
	pattern := k[:at+1] + indexMark + k[at+1+len(idx):]
	for i, f := range s {
		if f.Key != shardKeyFromPattern(pattern, i) {
			return "", false
		}
	}
	return pattern, true
}

func shardKeyFromPattern(pattern string, i int) string {
	return strings.Replace(pattern, indexMark, fmt.Sprintf("%012d", i), 1)
}

// MarshalJSON packs the shards.
func (s Shards) MarshalJSON() ([]byte, error) {
	if s == nil {
		return []byte("null"), nil
	}
	pattern, ok := s.keyPattern()
	if !ok {
		return json.Marshal(packedShards{Files: []receipt.File(s)})
	}
	out := packedShards{Key: pattern}
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
		f := receipt.File{Key: shardKeyFromPattern(p.Key, i), Rows: rows, Bytes: size}
		if !noCRC[i] {
			f.CRC32C = base64.StdEncoding.EncodeToString(crc)
		}
		out = append(out, f)
	}
	*s = out
	return nil
}

var errBadPacking = errors.New("packed shards: truncated")
