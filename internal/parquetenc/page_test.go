package parquetenc

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/xitongsys/parquet-go/encoding"
)

// TestHybridRoundTrip decodes the RLE/bit-packed hybrid runs this package
// writes (levels and dictionary indices) with the library's independent
// decoder: runs of every length around the 8-value threshold, bit-packed
// stretches longer than one run header holds, every width.
func TestHybridRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for width := 1; width <= 32; width++ {
		for _, shape := range []string{"random", "runs", "constant", "mixed"} {
			n := 1 + r.IntN(3000)
			vals := make([]int32, 0, n)
			limit := uint64(1) << width
			next := func() int32 { return int32(uint32(r.Uint64N(limit))) }
			for len(vals) < n {
				switch shape {
				case "random":
					vals = append(vals, next())
				case "runs":
					v, k := next(), 1+r.IntN(20)
					for range k {
						vals = append(vals, v)
					}
				case "constant":
					if len(vals) == 0 {
						vals = append(vals, next())
					} else {
						vals = append(vals, vals[0])
					}
				case "mixed":
					if r.IntN(2) == 0 {
						vals = append(vals, next())
					} else {
						v := next()
						for range 7 + r.IntN(3) {
							vals = append(vals, v)
						}
					}
				}
			}
			vals = vals[:n]
			data := appendLevels(nil, vals, width, -1)
			got, err := encoding.ReadRLEBitPackedHybrid(bytes.NewReader(data), uint64(width), 0)
			if err != nil {
				t.Fatalf("width %d %s: %v", width, shape, err)
			}
			if len(got) < n {
				t.Fatalf("width %d %s: decoded %d values, want %d", width, shape, len(got), n)
			}
			for i, v := range vals {
				if g := int32(got[i].(int64)); g != v {
					t.Fatalf("width %d %s: value %d is %d, want %d", width, shape, i, g, v)
				}
			}
		}
	}
}
