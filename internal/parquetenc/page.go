package parquetenc

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/thrift/lib/go/thrift"
	"github.com/klauspost/compress/gzip"
	"github.com/xitongsys/parquet-go/parquet"
)

// GzipLevel is the deflate level of every page (github.com/klauspost/compress,
// standard gzip members any reader inflates). Pages reach gzip already
// dictionary- and bit-packed, which level 2 compresses as well as levels 5
// and 6 (the default levels, arrow-go's and Go's, within 0.2%) in a fraction
// of the time: make bench compares the output size with arrow-go's at its
// default level.
const GzipLevel = 2

// Pages are encoded here, straight from the typed column buffers, into the
// parquet format's thrift structures (github.com/xitongsys/parquet-go/parquet):
// data pages v1 whose levels are RLE/bit-packed hybrid runs and whose values
// are PLAIN or dictionary indices (bit-packed at the dictionary's width), a
// PLAIN dictionary page per dictionary-encoded column chunk, each page
// compressed with gzip. The library's own page path boxes every value in an
// interface, writes dictionary indices 32 bits wide and levels as RLE runs
// only, which made the pages several times larger before compression.

// pageEncoder holds one Writer's scratch space for encoding pages.
type pageEncoder struct {
	raw  []byte       // the uncompressed page
	zbuf bytes.Buffer // the compressed page
	gz   *gzip.Writer
	ts   *thrift.TSerializer
	idx  []int32 // dictionary indices of the page
}

func newPageEncoder() *pageEncoder {
	gz, _ := gzip.NewWriterLevel(nil, GzipLevel)
	ts := thrift.NewTSerializer()
	ts.Protocol = thrift.NewTCompactProtocolFactoryConf(&thrift.TConfiguration{}).GetProtocol(ts.Transport)
	return &pageEncoder{gz: gz, ts: ts}
}

// compress gzips p.raw into p.zbuf.
func (p *pageEncoder) compress() error {
	p.zbuf.Reset()
	p.gz.Reset(&p.zbuf)
	if _, err := p.gz.Write(p.raw); err != nil {
		return err
	}
	return p.gz.Close()
}

// header serializes a page header with the thrift compact protocol.
func (p *pageEncoder) header(h *parquet.PageHeader) ([]byte, error) {
	return p.ts.Write(context.Background(), h)
}

// chunkBuf is one column chunk being built for the open row group: its data
// pages, header and compressed body back to back, ready to be written after
// the dictionary page (if any).
type chunkBuf struct {
	buf          blockBuf
	numValues    int64
	uncompressed int64 // page headers + uncompressed bodies
	plainPages   bool
	dictPages    bool
}

func (b *chunkBuf) reset() {
	b.buf.reset()
	b.numValues, b.uncompressed = 0, 0
	b.plainPages, b.dictPages = false, false
}

// encodePage encodes the pending page of c into c.chunk and folds its values
// into the row group's statistics.
func (w *Writer) encodePage(c *column) error {
	p := w.enc
	raw := p.raw[:0]
	if c.maxRep > 0 {
		raw = appendLevels(raw, c.reps[:c.n], bitWidth(uint32(c.maxRep)), -1)
	}
	if c.maxDef > 0 {
		allPresent := int32(-1)
		if c.nulls == 0 {
			allPresent = c.maxDef
		}
		raw = appendLevels(raw, c.defs[:c.n], bitWidth(uint32(c.maxDef)), allPresent)
	}
	c.stats.nulls += int64(c.nulls)
	nonNull := c.n - c.nulls

	useDict := false
	if c.dictCapable && c.dict != dictOff && nonNull > 0 {
		before := c.d.size()
		if c.d.add(c, p, c.dict == dictUndecided) {
			useDict = true
			c.dict = dictOn
			c.d.foldStats(c, before)
		} else {
			// The first page of the row group repeats too little for a
			// dictionary to pay: plain for the rest of the row group.
			c.dict = dictOff
			c.d.reset()
		}
	} else if c.dict == dictUndecided {
		// Booleans, and a row group whose first page has no values: plain
		// for the whole row group.
		c.dict = dictOff
	}
	encoding := parquet.Encoding_PLAIN
	if useDict {
		encoding = parquet.Encoding_PLAIN_DICTIONARY
		width := max(1, bitWidth(uint32(c.d.size()-1)))
		raw = append(raw, byte(width))
		raw = appendHybrid(raw, p.idx[:nonNull], width)
	} else {
		var err error
		if raw, err = c.appendPlain(raw); err != nil {
			return err
		}
		c.foldStats()
	}
	p.raw = raw
	if len(raw) > math.MaxInt32 {
		return fmt.Errorf("page of %d bytes is too large", len(raw))
	}
	if err := p.compress(); err != nil {
		return err
	}
	h := &parquet.PageHeader{
		Type:                 parquet.PageType_DATA_PAGE,
		UncompressedPageSize: int32(len(raw)),
		CompressedPageSize:   int32(p.zbuf.Len()),
		DataPageHeader: &parquet.DataPageHeader{
			NumValues:               int32(c.n),
			Encoding:                encoding,
			DefinitionLevelEncoding: parquet.Encoding_RLE,
			RepetitionLevelEncoding: parquet.Encoding_RLE,
		},
	}
	hb, err := p.header(h)
	if err != nil {
		return err
	}
	ch := &c.chunk
	ch.buf.write(hb)
	ch.buf.write(p.zbuf.Bytes())
	ch.numValues += int64(c.n)
	ch.uncompressed += int64(len(hb) + len(raw))
	if useDict {
		ch.dictPages = true
	} else {
		ch.plainPages = true
	}
	// Once the dictionary outgrows the limit, the column is not repetitive
	// enough for it to pay: plain for the rest of the row group.
	if c.dict == dictOn && c.d.bytes > w.dictLimit {
		c.dict = dictOff
	}
	return nil
}

// dictionaryPage encodes c's dictionary as a compressed PLAIN dictionary page
// (header and body).
func (w *Writer) dictionaryPage(c *column) (page []byte, uncompressed int64, err error) {
	p := w.enc
	p.raw = c.d.appendPlain(c, p.raw[:0])
	if len(p.raw) > math.MaxInt32 {
		return nil, 0, fmt.Errorf("dictionary page of %d bytes is too large", len(p.raw))
	}
	if err := p.compress(); err != nil {
		return nil, 0, err
	}
	h := &parquet.PageHeader{
		Type:                 parquet.PageType_DICTIONARY_PAGE,
		UncompressedPageSize: int32(len(p.raw)),
		CompressedPageSize:   int32(p.zbuf.Len()),
		DictionaryPageHeader: &parquet.DictionaryPageHeader{
			NumValues: int32(c.d.size()),
			Encoding:  parquet.Encoding_PLAIN,
		},
	}
	hb, err := p.header(h)
	if err != nil {
		return nil, 0, err
	}
	return append(hb, p.zbuf.Bytes()...), int64(len(hb) + len(p.raw)), nil
}

// appendPlain appends the page's values PLAIN encoded.
func (c *column) appendPlain(b []byte) ([]byte, error) {
	switch c.store {
	case storeBool:
		return appendBitPackedBools(b, c.bools), nil
	case storeInt32:
		return append(b, bytesOf(c.i32)...), nil
	case storeInt64:
		return append(b, bytesOf(c.i64)...), nil
	case storeDouble:
		return append(b, bytesOf(c.f64)...), nil
	case storeDecimal:
		for _, v := range c.dec {
			// Values were checked to fit when they were appended.
			b, _ = appendDecimalBytes(b, v, c.width)
		}
		return b, nil
	case storeBytes:
		start := 0
		for _, end := range c.ends {
			b = binary.LittleEndian.AppendUint32(b, uint32(end-start))
			b = append(b, c.arena[start:end]...)
			start = end
		}
		return b, nil
	}
	return b, fmt.Errorf("internal error: storage %d", c.store)
}

// foldStats folds the page's (plain) values into the row group's statistics.
func (c *column) foldStats() {
	s := &c.stats
	switch c.store {
	case storeBool:
		for _, v := range c.bools {
			s.addBool(v)
		}
	case storeInt32:
		if len(c.i32) > 0 {
			lo, hi := c.i32[0], c.i32[0]
			for _, v := range c.i32 {
				lo, hi = min(lo, v), max(hi, v)
			}
			s.addInt(int64(lo))
			s.addInt(int64(hi))
		}
	case storeInt64:
		if len(c.i64) > 0 {
			lo, hi := c.i64[0], c.i64[0]
			for _, v := range c.i64 {
				lo, hi = min(lo, v), max(hi, v)
			}
			s.addInt(lo)
			s.addInt(hi)
		}
	case storeDouble:
		for _, v := range c.f64 {
			s.addFloat(v)
		}
	case storeDecimal:
		for _, v := range c.dec {
			s.addDecimal(v)
		}
	case storeBytes:
		start := 0
		for _, end := range c.ends {
			s.addBytes(c.arena[start:end])
			start = end
		}
	}
}

// dictionary is one column chunk's dictionary: its distinct values in index
// order and the lookup from value to index. Fixed-width values are keyed by
// their bits (int32, int64, double) or value (decimal).
type dictionary struct {
	strIndex map[string]int32
	strs     []string
	intIndex map[int64]int32
	ints     []int64
	decIndex map[decimal128.Num]int32
	decs     []decimal128.Num
	bytes    int64 // size of the PLAIN dictionary page
}

func (d *dictionary) size() int { return len(d.strs) + len(d.ints) + len(d.decs) }

func (d *dictionary) reset() {
	clear(d.strIndex)
	clear(d.intIndex)
	clear(d.decIndex)
	d.strs, d.ints, d.decs = d.strs[:0], d.ints[:0], d.decs[:0]
	d.bytes = 0
}

// Dictionary decision on the row group's first page: a dictionary pays
// when the page has at most half as many distinct values as values. A page
// whose first sampleValues values hold more than sampleDistinct distinct ones
// is taken to be far from that, without hashing the rest of it.
const (
	sampleValues   = 1024
	sampleDistinct = 768
)

// add looks up the page's values in the dictionary, adding the new ones, and
// leaves their indices in p.idx. When first, the page is the row group's
// first: it gives up (false, dictionary left partial) as soon as it is clear
// that the page has more distinct values than half its values, the sign that
// a dictionary would not pay.
func (d *dictionary) add(c *column, p *pageEncoder, first bool) bool {
	nonNull := c.n - c.nulls
	limit := math.MaxInt
	if first {
		limit = nonNull / 2
	}
	idx := p.idx[:0]
	defer func() { p.idx = idx }()
	// tooMany reports whether distinct entries after value i (0-based) of
	// the page rule the dictionary out.
	tooMany := func(i, distinct int) bool {
		return distinct >= limit || (first && i >= sampleValues && i < 2*sampleValues && distinct > sampleDistinct && nonNull >= 4*sampleValues)
	}
	switch c.store {
	case storeBytes:
		if d.strIndex == nil {
			d.strIndex = make(map[string]int32)
		}
		start := 0
		var last []byte
		lastK := int32(-1)
		for _, end := range c.ends {
			v := c.arena[start:end]
			start = end
			// Runs of one value are looked up once.
			if lastK >= 0 && bytes.Equal(v, last) {
				idx = append(idx, lastK)
				continue
			}
			k, ok := d.strIndex[string(v)]
			if !ok {
				if tooMany(len(idx), len(d.strs)) {
					return false
				}
				s := string(v)
				k = int32(len(d.strs))
				d.strs = append(d.strs, s)
				d.strIndex[s] = k
				d.bytes += int64(len(s)) + 4
			}
			idx = append(idx, k)
			last, lastK = v, k
		}
	case storeInt32:
		var ok bool
		if idx, ok = addInts(d, idx, c.i32, 4, tooMany); !ok {
			return false
		}
	case storeInt64:
		var ok bool
		if idx, ok = addInts(d, idx, c.i64, 8, tooMany); !ok {
			return false
		}
	case storeDouble:
		var ok bool
		if idx, ok = addInts(d, idx, castSlice[float64, int64](c.f64), 8, tooMany); !ok {
			return false
		}
	case storeDecimal:
		if d.decIndex == nil {
			d.decIndex = make(map[decimal128.Num]int32)
		}
		for _, v := range c.dec {
			k, ok := d.decIndex[v]
			if !ok {
				if tooMany(len(idx), len(d.decs)) {
					return false
				}
				k = int32(len(d.decs))
				d.decs = append(d.decs, v)
				d.decIndex[v] = k
				d.bytes += int64(c.width)
			}
			idx = append(idx, k)
		}
	default:
		return false
	}
	return true
}

// addInts is dictionary.add for values keyed by their integer bits.
func addInts[T int32 | int64](d *dictionary, idx []int32, vals []T, width int64, tooMany func(i, distinct int) bool) ([]int32, bool) {
	if d.intIndex == nil {
		d.intIndex = make(map[int64]int32)
	}
	// Runs of one value (dates, small counters) are looked up once.
	last, lastK := T(0), int32(-1)
	for _, v := range vals {
		if lastK >= 0 && v == last {
			idx = append(idx, lastK)
			continue
		}
		k, ok := d.intIndex[int64(v)]
		if !ok {
			if tooMany(len(idx), len(d.ints)) {
				return idx, false
			}
			k = int32(len(d.ints))
			d.ints = append(d.ints, int64(v))
			d.intIndex[int64(v)] = k
			d.bytes += width
		}
		idx = append(idx, k)
		last, lastK = v, k
	}
	return idx, true
}

// foldStats folds the dictionary entries from index before on into the row
// group's statistics: a dictionary-encoded page's values are all entries of
// the dictionary, and every entry comes from such a page.
func (d *dictionary) foldStats(c *column, before int) {
	s := &c.stats
	switch c.store {
	case storeBytes:
		for _, v := range d.strs[before:] {
			s.addString(v)
		}
	case storeInt32, storeInt64:
		for _, v := range d.ints[before:] {
			s.addInt(v)
		}
	case storeDouble:
		for _, v := range d.ints[before:] {
			s.addFloat(math.Float64frombits(uint64(v)))
		}
	case storeDecimal:
		for _, v := range d.decs[before:] {
			s.addDecimal(v)
		}
	}
}

// appendPlain appends the dictionary's values PLAIN encoded: the body of the
// dictionary page.
func (d *dictionary) appendPlain(c *column, b []byte) []byte {
	switch c.store {
	case storeBytes:
		for _, v := range d.strs {
			b = binary.LittleEndian.AppendUint32(b, uint32(len(v)))
			b = append(b, v...)
		}
	case storeInt32:
		for _, v := range d.ints {
			b = binary.LittleEndian.AppendUint32(b, uint32(int32(v)))
		}
	case storeInt64, storeDouble:
		for _, v := range d.ints {
			b = binary.LittleEndian.AppendUint64(b, uint64(v))
		}
	case storeDecimal:
		for _, v := range d.decs {
			// Values were checked to fit when they were appended.
			b, _ = appendDecimalBytes(b, v, c.width)
		}
	}
	return b
}

// bitWidth is the number of bits that hold every value up to max.
func bitWidth(max uint32) int { return bits.Len32(max) }

// appendLevels appends levels as a v1 data page stores them: a 4-byte
// little-endian length, then the RLE/bit-packed hybrid runs. allEqual >= 0
// says every level is that value (one run, without looking at them).
func appendLevels(b []byte, levels []int32, width int, allEqual int32) []byte {
	at := len(b)
	b = append(b, 0, 0, 0, 0)
	if allEqual >= 0 {
		b = appendRLERun(b, allEqual, len(levels), width)
	} else {
		b = appendHybrid(b, levels, width)
	}
	binary.LittleEndian.PutUint32(b[at:], uint32(len(b)-at-4))
	return b
}

// maxBitPackedGroups is the most groups of 8 values one bit-packed run
// holds: a one-byte run header, as parquet-mr and arrow write them.
const maxBitPackedGroups = 63

// appendHybrid appends vals (each below 2^width) in the RLE/bit-packed hybrid
// encoding (parquet-format Encodings.md): runs of at least 8 equal values
// become RLE runs, everything else bit-packed runs of groups of 8 values; the
// last group of the data is padded with zeros.
func appendHybrid(b []byte, vals []int32, width int) []byte {
	n := len(vals)
	for i := 0; i < n; {
		v := vals[i]
		j := i + 1
		for j < n && vals[j] == v {
			j++
		}
		if j-i >= 8 || j == n {
			b = appendRLERun(b, v, j-i, width)
			i = j
			continue
		}
		// Bit-packed groups from i, up to a group that starts a run of 8.
		groups := 1
		for end := i + 8; groups < maxBitPackedGroups && end < n && !runOf8(vals, end); end += 8 {
			groups++
		}
		b = append(b, byte(groups<<1|1))
		b = appendBitPacked(b, vals[i:min(n, i+8*groups)], groups, width)
		i += 8 * groups
	}
	return b
}

// runOf8 reports whether vals[i:i+8] exist and are equal.
func runOf8(vals []int32, i int) bool {
	if i+8 > len(vals) {
		return false
	}
	v := vals[i]
	for _, x := range vals[i+1 : i+8] {
		if x != v {
			return false
		}
	}
	return true
}

// appendRLERun appends one RLE run: its header (count << 1) and the value in
// ceil(width/8) little-endian bytes.
func appendRLERun(b []byte, v int32, count, width int) []byte {
	b = binary.AppendUvarint(b, uint64(count)<<1)
	for k := 0; k < (width+7)/8; k++ {
		b = append(b, byte(uint32(v)>>(8*k)))
	}
	return b
}

// appendBitPacked packs groups*8 values (vals, then zeros) of width bits,
// least significant bit first.
func appendBitPacked(b []byte, vals []int32, groups, width int) []byte {
	if width == 1 {
		for g := 0; g < groups; g++ {
			var x byte
			for k := 0; k < 8; k++ {
				if i := g*8 + k; i < len(vals) {
					x |= byte(vals[i]&1) << k
				}
			}
			b = append(b, x)
		}
		return b
	}
	var acc uint64
	var nbits int
	for i := 0; i < groups*8; i++ {
		var v uint32
		if i < len(vals) {
			v = uint32(vals[i])
		}
		acc |= uint64(v) << nbits
		nbits += width
		for nbits >= 8 {
			b = append(b, byte(acc))
			acc >>= 8
			nbits -= 8
		}
	}
	return b
}

// appendBitPackedBools appends booleans PLAIN encoded: bit-packed, least
// significant bit first.
func appendBitPackedBools(b []byte, vals []bool) []byte {
	for i := 0; i < len(vals); i += 8 {
		var x byte
		for k, v := range vals[i:min(len(vals), i+8)] {
			if v {
				x |= 1 << k
			}
		}
		b = append(b, x)
	}
	return b
}

// bytesOf views a slice of fixed-size numbers as its bytes: little-endian on
// the machines this runs on (checked at init), PLAIN's byte order.
func bytesOf[T int32 | int64 | float64](v []T) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), len(v)*int(unsafe.Sizeof(v[0])))
}

// castSlice views a slice as one of another element type of the same size.
func castSlice[From, To any](v []From) []To {
	if len(v) == 0 {
		return nil
	}
	var f From
	var t To
	if unsafe.Sizeof(f) != unsafe.Sizeof(t) {
		panic("parquetenc: internal error: castSlice between sizes")
	}
	return unsafe.Slice((*To)(unsafe.Pointer(&v[0])), len(v))
}

func init() {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		panic("parquetenc: PLAIN encoding assumes a little-endian machine")
	}
}
