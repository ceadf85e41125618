package export

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/dreamdata/destination-aws-s3/internal/layout"
	"github.com/dreamdata/destination-aws-s3/internal/receipt"
)

func manyShards(n int) Shards { return interleavedShards(n, Interleave{}) }

// interleavedShards are the first n shards of a stream group.
func interleavedShards(n int, l Interleave) Shards {
	s := make(Shards, n)
	for i := range s {
		var crc [4]byte
		binary.BigEndian.PutUint32(crc[:], uint32(i)*2654435761)
		s[i] = receipt.File{Key: layout.ShardKey("exports/acme", "2023-03-14T04:03", "events", l.Index(i), ".parquet.gz"),
			Rows: 1_234_567 + int64(i), Bytes: 268_435_456 + int64(i)*1000, CRC32C: base64.StdEncoding.EncodeToString(crc[:])}
	}
	return s
}

func TestShardsRoundTrip(t *testing.T) {
	cases := map[string]Shards{
		"none":       {},
		"nil":        nil,
		"many":       manyShards(1000),
		"no crc":     {{Key: layout.ShardKey("", "2023-03-14T04:03", "t", 0, ".parquet"), Rows: 0, Bytes: 300}},
		"odd keys":   {{Key: "a/b.parquet", Rows: 1, Bytes: 2, CRC32C: "AAAAAA=="}},
		"second odd": append(manyShards(2), receipt.File{Key: "x", Rows: 1, Bytes: 1}),
		"group 0":    interleavedShards(500, Interleave{Group: 0, Of: 4}),
		"group 3":    interleavedShards(500, Interleave{Group: 3, Of: 4}),
		"one of 3":   interleavedShards(1, Interleave{Group: 2, Of: 3}),
		"stride gap": append(interleavedShards(3, Interleave{Group: 1, Of: 2}), manyShards(5)[4]),
	}
	for name, in := range cases {
		data, err := json.Marshal(in)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var out Shards
		if err := json.Unmarshal(data, &out); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(in, out) && !(len(in) == 0 && len(out) == 0) {
			t.Errorf("%s: round trip changed the shards:\n%+v\n%+v", name, in, out)
		}
	}
}

// Progress recorded by an earlier release (a plain array of files) still reads.
func TestShardsReadPlainArray(t *testing.T) {
	var p Progress
	if err := json.Unmarshal([]byte(`{"stream":1,"offset":5,"files":[{"key":"k","rows":3,"bytes":9,"crc32c":"AAAAAA=="}]}`), &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Files) != 1 || p.Files[0].Rows != 3 {
		t.Errorf("%+v", p)
	}
}

// A stream group's shards (every Of-th index) pack as compactly as a whole table's.
func TestInterleavedShardsPack(t *testing.T) {
	whole, _ := json.Marshal(manyShards(2000))
	group, _ := json.Marshal(interleavedShards(2000, Interleave{Group: 5, Of: 8}))
	if len(group) > len(whole)+32 {
		t.Errorf("a group's 2000 shards pack into %d bytes, a table's into %d", len(group), len(whole))
	}
}

// A table of 20,000 shards (5 TB at 256 MiB) keeps its heartbeat far below Temporal's 512 KiB
// payload warning; 4,000 shards is a 1 TB table.
func TestTwentyThousandShardsFitAHeartbeat(t *testing.T) {
	for _, n := range []int{4_000, 20_000} {
		p := Progress{Stream: 3, Offset: 123456789, Files: manyShards(n), Reserved: n + ReserveAhead}
		data, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		plain, _ := json.Marshal([]receipt.File(p.Files))
		t.Logf("%d shards: heartbeat %d bytes (%.1f bytes a shard); the plain list would be %d bytes", n, len(data), float64(len(data))/float64(n), len(plain))
		if len(data) > 512<<10/2 {
			t.Errorf("%d shards: heartbeat of %d bytes is not far below the 512 KiB warning", n, len(data))
		}
	}
}
