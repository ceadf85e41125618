package parquetenc

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/xitongsys/parquet-go/common"
	"github.com/xitongsys/parquet-go/layout"
	"github.com/xitongsys/parquet-go/parquet"
)

// dictState is a column's encoding decision for the open row group.
type dictState int

const (
	dictUndecided dictState = iota // no page yet in this row group
	dictOn                         // pages so far are dictionary encoded
	dictOff                        // plain from here to the end of the row group
)

// column holds one leaf column: its schema, its pending page (values copied
// out of Arrow, in compact typed slices) and its row-group statistics.
type column struct {
	index       int
	name        string
	arrowType   arrow.DataType
	optional    bool
	maxDef      int32
	path        []string // the library's internal path: root, column
	key         string   // common.PathToStr(path): key of the library's page and dictionary maps
	store       storage
	width       int   // bytes per value for fixed-width storage (FIXED_LEN_BYTE_ARRAY length for decimals)
	scale       int32 // decimal256 scale, for the text form
	dictCapable bool
	dictTag     *common.Tag // the handler's Info: PLAIN_DICTIONARY for dictionary-capable columns
	plainTag    *common.Tag

	// Pending page: n values; defs only for OPTIONAL columns; exactly one of
	// the typed slices is used (NULLs hold a zero value there).
	n         int
	pageBytes int64
	defs      []int32
	bools     []bool
	i32       []int32
	i64       []int64
	f64       []float64
	dec       []decimal128.Num
	arena     []byte // BYTE_ARRAY values back to back
	ends      []int  // end offset in arena of each value

	// Row-group state.
	dict      dictState
	dictSeen  int   // entries of the library's dictionary already measured
	dictBytes int64 // size of those entries
	stats     chunkStats
}

// addRowSizes adds this column's size estimate of rows [from, from+len(sizes))
// to sizes. Only values count, never batch boundaries.
func (c *column) addRowSizes(arr arrow.Array, from int, sizes []int64) {
	nulls := c.optional && arr.NullN() > 0
	switch c.store {
	case storeBytes:
		if isDecimal256(c.arrowType) {
			for k := range sizes {
				if nulls && arr.IsNull(from+k) {
					sizes[k] += nullBytes
				} else {
					sizes[k] += decimal256TextBytes
				}
			}
			return
		}
		lens := byteLengths(arr)
		for k := range sizes {
			if nulls && arr.IsNull(from+k) {
				sizes[k] += nullBytes
			} else {
				sizes[k] += int64(lens(from+k)) + 4
			}
		}
	default:
		w := int64(c.width)
		for k := range sizes {
			if nulls && arr.IsNull(from+k) {
				sizes[k] += nullBytes
			} else {
				sizes[k] += w
			}
		}
	}
}

func isDecimal256(t arrow.DataType) bool { return t.ID() == arrow.DECIMAL256 }

// byteLengths returns the value length function of a string or binary array.
func byteLengths(arr arrow.Array) func(int) int {
	switch a := arr.(type) {
	case *array.String:
		return a.ValueLen
	case *array.LargeString:
		return a.ValueLen
	case *array.Binary:
		return a.ValueLen
	case *array.LargeBinary:
		return a.ValueLen
	}
	panic(fmt.Sprintf("parquetenc: %T is not a byte array", arr))
}

// appendRange copies rows [from, to) of arr into the pending page, flushing
// the page whenever it reaches the page size.
func (c *column) appendRange(w *Writer, arr arrow.Array, from, to int) error {
	switch a := arr.(type) {
	case *array.Boolean:
		return appendFixed(w, c, arr, from, to, &c.bools, a.Value)
	case *array.Int64:
		return appendFixed(w, c, arr, from, to, &c.i64, a.Value)
	case *array.Float64:
		return appendFixed(w, c, arr, from, to, &c.f64, a.Value)
	case *array.Date32:
		return appendFixed(w, c, arr, from, to, &c.i32, func(i int) int32 { return int32(a.Value(i)) })
	case *array.Timestamp:
		return appendFixed(w, c, arr, from, to, &c.i64, func(i int) int64 { return int64(a.Value(i)) })
	case *array.Time64:
		return appendFixed(w, c, arr, from, to, &c.i64, func(i int) int64 { return int64(a.Value(i)) })
	case *array.Decimal128:
		return appendFixed(w, c, arr, from, to, &c.dec, a.Value)
	case *array.String:
		return appendBytes(w, c, arr, from, to, func(i int, b []byte) []byte { return append(b, a.Value(i)...) })
	case *array.LargeString:
		return appendBytes(w, c, arr, from, to, func(i int, b []byte) []byte { return append(b, a.Value(i)...) })
	case *array.Binary:
		return appendBytes(w, c, arr, from, to, func(i int, b []byte) []byte { return append(b, a.Value(i)...) })
	case *array.LargeBinary:
		return appendBytes(w, c, arr, from, to, func(i int, b []byte) []byte { return append(b, a.Value(i)...) })
	case *array.Decimal256:
		scale := c.scale
		return appendBytes(w, c, arr, from, to, func(i int, b []byte) []byte {
			return appendDecimalText(b, a.Value(i).BigInt(), scale)
		})
	}
	return fmt.Errorf("unexpected array %T", arr)
}

// appendFixed appends fixed-width values; get reads value i of the array.
func appendFixed[T any](w *Writer, c *column, arr arrow.Array, from, to int, dst *[]T, get func(int) T) error {
	var zero T
	nulls := c.optional && arr.NullN() > 0
	width := int64(c.width)
	for i := from; i < to; i++ {
		if nulls && arr.IsNull(i) {
			*dst = append(*dst, zero)
			c.defs = append(c.defs, 0)
			c.pageBytes += nullBytes
		} else {
			*dst = append(*dst, get(i))
			if c.optional {
				c.defs = append(c.defs, 1)
			}
			c.pageBytes += width
		}
		c.n++
		if c.pageFull(w) {
			if err := w.flushPage(c); err != nil {
				return err
			}
		}
	}
	return nil
}

// appendBytes appends variable-length values; put appends value i's bytes.
func appendBytes(w *Writer, c *column, arr arrow.Array, from, to int, put func(int, []byte) []byte) error {
	nulls := c.optional && arr.NullN() > 0
	fixedEstimate := isDecimal256(c.arrowType)
	for i := from; i < to; i++ {
		if nulls && arr.IsNull(i) {
			c.defs = append(c.defs, 0)
			c.pageBytes += nullBytes
		} else {
			before := len(c.arena)
			c.arena = put(i, c.arena)
			if c.optional {
				c.defs = append(c.defs, 1)
			}
			if fixedEstimate {
				c.pageBytes += decimal256TextBytes
			} else {
				c.pageBytes += int64(len(c.arena)-before) + 4
			}
		}
		c.ends = append(c.ends, len(c.arena))
		c.n++
		if c.pageFull(w) {
			if err := w.flushPage(c); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *column) pageFull(w *Writer) bool {
	return c.pageBytes >= w.opts.PageBytes || c.n >= MaxPageValues
}

// buildTable turns the pending page into the library's columnar table
// (values boxed as the library expects: bool, int32, int64, float64, string)
// and folds the values into the row group's statistics.
func (c *column) buildTable(w *Writer) (*layout.Table, error) {
	n := c.n
	if len(w.zeros) < n {
		w.zeros = make([]int32, max(n, MaxPageValues))
	}
	vals := make([]interface{}, n)
	valid := func(i int) bool { return !c.optional || c.defs[i] == 1 }
	s := &c.stats
	for i := 0; i < n; i++ {
		if !valid(i) {
			s.nulls++
		}
	}
	switch c.store {
	case storeBool:
		for i, v := range c.bools[:n] {
			if valid(i) {
				vals[i] = v
				s.addBool(v)
			}
		}
	case storeInt32:
		for i, v := range c.i32[:n] {
			if valid(i) {
				vals[i] = v
				s.addInt(int64(v))
			}
		}
	case storeInt64:
		for i, v := range c.i64[:n] {
			if valid(i) {
				vals[i] = v
				s.addInt(v)
			}
		}
	case storeDouble:
		for i, v := range c.f64[:n] {
			if valid(i) {
				vals[i] = v
				s.addFloat(v)
			}
		}
	case storeDecimal:
		buf := make([]byte, 0, n*c.width)
		for i, v := range c.dec[:n] {
			if !valid(i) {
				continue
			}
			var err error
			if buf, err = appendDecimalBytes(buf, v, c.width); err != nil {
				return nil, err
			}
			s.addDecimal(v)
		}
		all, at := string(buf), 0
		for i := 0; i < n; i++ {
			if valid(i) {
				vals[i] = all[at : at+c.width]
				at += c.width
			}
		}
	case storeBytes:
		// One copy of the page's bytes; values are substrings of it.
		all, start := string(c.arena), 0
		for i := 0; i < n; i++ {
			end := c.ends[i]
			if valid(i) {
				v := all[start:end]
				vals[i] = v
				s.addString(v)
			}
			start = end
		}
	}

	t := &layout.Table{
		RepetitionType:     parquet.FieldRepetitionType_REQUIRED,
		Path:               c.path,
		MaxDefinitionLevel: c.maxDef,
		MaxRepetitionLevel: 0,
		Values:             vals,
		DefinitionLevels:   w.zeros[:n],
		RepetitionLevels:   w.zeros[:n],
		Info:               c.plainTag,
	}
	t.Schema = w.pw.SchemaHandler.SchemaElements[c.index+1]
	if c.optional {
		t.RepetitionType = parquet.FieldRepetitionType_OPTIONAL
		t.DefinitionLevels = c.defs[:n]
	}
	if c.dictCapable && c.chooseDictionary(vals) {
		t.Info = c.dictTag
	}
	return t, nil
}

// chooseDictionary decides whether this page is dictionary encoded. The
// decision is taken on the row group's first page (a dictionary pays when
// values repeat) and revoked for the rest of the row group once the
// dictionary outgrows DictionaryBytesLimit. A row group never goes from plain
// back to dictionary: the library writes the dictionary page only when the
// chunk's first page is dictionary encoded.
func (c *column) chooseDictionary(vals []interface{}) bool {
	if c.dict == dictUndecided {
		distinct := make(map[string]struct{})
		nonNull := 0
		for _, v := range vals {
			if v != nil {
				nonNull++
				distinct[v.(string)] = struct{}{}
			}
		}
		c.dict = dictOff
		if nonNull > 0 && 2*len(distinct) <= nonNull {
			c.dict = dictOn
		}
	}
	return c.dict == dictOn
}

// afterPage resets the pending page once the library has encoded it, and
// measures how much the page grew the column's dictionary.
func (c *column) afterPage(w *Writer) {
	c.n = 0
	c.pageBytes = 0
	c.defs = c.defs[:0]
	c.bools = c.bools[:0]
	c.i32 = c.i32[:0]
	c.i64 = c.i64[:0]
	c.f64 = c.f64[:0]
	c.dec = c.dec[:0]
	c.arena = c.arena[:0]
	c.ends = c.ends[:0]
	if c.dict != dictOn {
		return
	}
	rec := w.pw.DictRecs[c.key]
	if rec == nil {
		return
	}
	for _, v := range rec.DictSlice[c.dictSeen:] {
		c.dictBytes += int64(len(v.(string))) + 4
	}
	c.dictSeen = len(rec.DictSlice)
	if c.dictBytes > w.dictLimit {
		c.dict = dictOff
	}
}

// resetRowGroup starts the statistics and the encoding decision afresh (the
// library starts a new dictionary per row group).
func (c *column) resetRowGroup() {
	c.dict = dictUndecided
	c.dictSeen = 0
	c.dictBytes = 0
	c.stats = chunkStats{}
}

// appendDecimalBytes appends v as width bytes of big-endian two's complement,
// the parquet DECIMAL representation, built from the exact 128-bit value
// (the library's string conversion loses digits).
func appendDecimalBytes(b []byte, v decimal128.Num, width int) ([]byte, error) {
	var full [decimal128Bytes]byte
	binary.BigEndian.PutUint64(full[:8], uint64(v.HighBits()))
	binary.BigEndian.PutUint64(full[8:], v.LowBits())
	cut := decimal128Bytes - width
	sign := byte(0)
	if v.Sign() < 0 {
		sign = 0xff
	}
	for _, x := range full[:cut] {
		if x != sign {
			return b, fmt.Errorf("decimal value %s does not fit in %d bytes", v.BigInt(), width)
		}
	}
	if cut > 0 && full[cut]&0x80 != sign&0x80 {
		return b, fmt.Errorf("decimal value %s does not fit in %d bytes", v.BigInt(), width)
	}
	return append(b, full[cut:]...), nil
}

// appendDecimalText appends the exact decimal text of unscaled*10^-scale,
// without trailing fractional zeros, the way BigQuery prints BIGNUMERIC.
func appendDecimalText(b []byte, unscaled *big.Int, scale int32) []byte {
	digits := unscaled.String()
	neg := strings.HasPrefix(digits, "-")
	if neg {
		digits = digits[1:]
	}
	if scale <= 0 {
		if neg {
			b = append(b, '-')
		}
		b = append(b, digits...)
		if digits != "0" {
			b = append(b, strings.Repeat("0", int(-scale))...)
		}
		return b
	}
	if len(digits) <= int(scale) {
		digits = strings.Repeat("0", int(scale)-len(digits)+1) + digits
	}
	intPart, frac := digits[:len(digits)-int(scale)], strings.TrimRight(digits[len(digits)-int(scale):], "0")
	if neg && (intPart != "0" || frac != "") {
		b = append(b, '-')
	}
	b = append(b, intPart...)
	if frac != "" {
		b = append(b, '.')
		b = append(b, frac...)
	}
	return b
}

// chunkStats are one column chunk's statistics, computed here because the
// library's are wrong (null counts off for pages starting with a NULL, NaN as
// bounds).
type chunkStats struct {
	nulls      int64
	has        bool // min and max hold at least one value
	minI, maxI int64
	minF, maxF float64
	minB, maxB bool
	minS, maxS string
	minD, maxD decimal128.Num
}

func (s *chunkStats) addInt(v int64) {
	if !s.has {
		s.minI, s.maxI, s.has = v, v, true
		return
	}
	s.minI, s.maxI = min(s.minI, v), max(s.maxI, v)
}

func (s *chunkStats) addBool(v bool) {
	if !s.has {
		s.minB, s.maxB, s.has = v, v, true
		return
	}
	s.minB = s.minB && v
	s.maxB = s.maxB || v
}

// addFloat leaves NaN out of the bounds, as the parquet spec requires: a
// reader comparing against a NaN bound would skip rows it must read.
func (s *chunkStats) addFloat(v float64) {
	if math.IsNaN(v) {
		return
	}
	if !s.has {
		s.minF, s.maxF, s.has = v, v, true
		return
	}
	if v < s.minF || (v == 0 && s.minF == 0 && math.Signbit(v)) {
		s.minF = v
	}
	if v > s.maxF || (v == 0 && s.maxF == 0 && !math.Signbit(v)) {
		s.maxF = v
	}
}

func (s *chunkStats) addString(v string) {
	if !s.has {
		s.minS, s.maxS, s.has = v, v, true
		return
	}
	if v < s.minS {
		s.minS = v
	}
	if v > s.maxS {
		s.maxS = v
	}
}

func (s *chunkStats) addDecimal(v decimal128.Num) {
	if !s.has {
		s.minD, s.maxD, s.has = v, v, true
		return
	}
	if v.Less(s.minD) {
		s.minD = v
	}
	if s.maxD.Less(v) {
		s.maxD = v
	}
}

// encode returns the parquet statistics of the chunk: min_value/max_value
// in the column's sort order, plus the deprecated min/max (always compared as
// signed) for the types whose order is signed.
func (s *chunkStats) encode(c *column) *parquet.Statistics {
	nulls := s.nulls
	st := &parquet.Statistics{NullCount: &nulls}
	if !s.has {
		return st
	}
	var lo, hi []byte
	signed := true
	switch c.store {
	case storeBool:
		lo, hi = []byte{boolByte(s.minB)}, []byte{boolByte(s.maxB)}
	case storeInt32:
		lo = binary.LittleEndian.AppendUint32(nil, uint32(int32(s.minI)))
		hi = binary.LittleEndian.AppendUint32(nil, uint32(int32(s.maxI)))
	case storeInt64:
		lo = binary.LittleEndian.AppendUint64(nil, uint64(s.minI))
		hi = binary.LittleEndian.AppendUint64(nil, uint64(s.maxI))
	case storeDouble:
		minF, maxF := s.minF, s.maxF
		// The spec asks for -0 as a zero minimum and +0 as a zero maximum,
		// so readers need not guess which zero was seen.
		if minF == 0 {
			minF = math.Copysign(0, -1)
		}
		if maxF == 0 {
			maxF = 0
		}
		lo = binary.LittleEndian.AppendUint64(nil, math.Float64bits(minF))
		hi = binary.LittleEndian.AppendUint64(nil, math.Float64bits(maxF))
	case storeDecimal:
		// Old readers compared FIXED_LEN_BYTE_ARRAY bounds as unsigned bytes:
		// only the typed min_value/max_value are written.
		signed = false
		lo, _ = appendDecimalBytes(nil, s.minD, c.width)
		hi, _ = appendDecimalBytes(nil, s.maxD, c.width)
	case storeBytes:
		signed = false
		if len(s.minS) > MaxStatisticsValueBytes || len(s.maxS) > MaxStatisticsValueBytes {
			return st
		}
		lo, hi = []byte(s.minS), []byte(s.maxS)
	}
	st.MinValue, st.MaxValue = lo, hi
	if signed {
		st.Min, st.Max = lo, hi
	}
	return st
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}
