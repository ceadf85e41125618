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
// out of Arrow into compact typed slices, with their levels), the pages of
// the open row group and its statistics.
type column struct {
	name         string   // dotted path of exact names, for error messages
	pathInSchema []string // exact names from the top-level column down to the leaf
	arrowType    arrow.DataType
	optional     bool  // the leaf element is OPTIONAL
	maxDef       int32 // definition level of a present value
	maxRep       int32 // repetition level of a leaf under lists (0: not repeated)
	steps        []step
	part         intervalPart
	elem         int // index of the leaf's schema element
	store        storage
	ptype        parquet.Type
	width        int   // bytes per value for fixed-width storage (FIXED_LEN_BYTE_ARRAY length for decimals)
	scale        int32 // decimal256 scale, for the text form
	dictCapable  bool

	// Pending page: n level entries (one per row for a flat column), nulls of
	// which have no value; defs only when maxDef > 0, reps only when
	// maxRep > 0; exactly one of the typed slices is used, holding the
	// values of the entries that have one, in order.
	n         int
	nulls     int
	pageBytes int64
	defs      []int32
	reps      []int32
	bools     []bool
	i32       []int32
	i64       []int64
	f64       []float64
	dec       []decimal128.Num
	arena     []byte // BYTE_ARRAY values back to back
	ends      []int  // end offset in arena of each value

	// entries is scratch space for the level entries of one row of a nested
	// column.
	entries []entry

	// Row-group state.
	dict  dictState
	d     dictionary
	chunk chunkBuf
	stats chunkStats
}

// entry is one level entry of a nested leaf: its levels and the index of its
// value in the leaf's Arrow array, or -1 when it has no value (def < maxDef).
type entry struct {
	def, rep int32
	value    int
}

// nested reports whether the leaf lies under a RECORD, REPEATED or INTERVAL
// group, whose levels come from walking the groups' arrays.
func (c *column) nested() bool { return len(c.steps) > 0 }

// leafArray returns the Arrow array that holds the leaf's values, found by
// following the steps from the top-level column's array: the walk's entries
// index into it.
func (c *column) leafArray(arr arrow.Array) arrow.Array {
	for _, s := range c.steps {
		switch s.kind {
		case stepStruct:
			arr = arr.(*array.Struct).Field(s.field)
		case stepList:
			arr = arr.(array.ListLike).ListValues()
		}
	}
	return arr
}

// walk appends to c.entries the level entries of value i of arr, the array
// at steps[k:] (k = 0: the top-level column), given the definition and
// repetition levels reached so far. This is the Dremel record shredding done
// column by column straight from the Arrow validity bitmaps and list offsets.
func (c *column) walk(k int, arr arrow.Array, i int, def, rep int32) error {
	if k == len(c.steps) {
		if arr.IsNull(i) {
			if !c.optional {
				return fmt.Errorf("NULL in the non-nullable field %q", c.name)
			}
			c.entries = append(c.entries, entry{def: def, rep: rep, value: -1})
			return nil
		}
		if c.optional {
			def++
		}
		c.entries = append(c.entries, entry{def: def, rep: rep, value: i})
		return nil
	}
	s := &c.steps[k]
	if arr.IsNull(i) {
		if !s.optional {
			return fmt.Errorf("NULL in the non-nullable field %q", s.name)
		}
		c.entries = append(c.entries, entry{def: def, rep: rep, value: -1})
		return nil
	}
	if s.optional {
		def++
	}
	switch s.kind {
	case stepStruct:
		return c.walk(k+1, arr.(*array.Struct).Field(s.field), i, def, rep)
	case stepInterval:
		return c.walk(k+1, arr, i, def, rep)
	}
	// stepList: an empty list is one entry at the list's own level, which
	// keeps it distinct from a NULL list (one level lower).
	list := arr.(array.ListLike)
	start, end := list.ValueOffsets(i)
	if start == end {
		c.entries = append(c.entries, entry{def: def, rep: rep, value: -1})
		return nil
	}
	values := list.ListValues()
	for j := start; j < end; j++ {
		if j > start {
			rep = s.rep
		}
		if err := c.walk(k+1, values, int(j), def+1, rep); err != nil {
			return err
		}
	}
	return nil
}

// rowEntries computes the level entries of row i of the top-level array arr
// into c.entries.
func (c *column) rowEntries(arr arrow.Array, i int) error {
	c.entries = c.entries[:0]
	return c.walk(0, arr, i, 0, 0)
}

// sizer returns the size estimate of value i of the leaf array arr (i < 0:
// no value). Only values count, never batch boundaries.
func (c *column) sizer(arr arrow.Array) func(int) int64 {
	if c.store == storeBytes && !isDecimal256(c.arrowType) {
		lens := byteLengths(arr)
		return func(i int) int64 {
			if i < 0 {
				return nullBytes
			}
			return int64(lens(i)) + 4
		}
	}
	w := c.fixedSize()
	return func(i int) int64 {
		if i < 0 {
			return nullBytes
		}
		return w
	}
}

// fixedSize is the size estimate of every value of a column that is not a
// string or binary column.
func (c *column) fixedSize() int64 {
	if isDecimal256(c.arrowType) {
		return decimal256TextBytes
	}
	return int64(c.width)
}

// addRowSizes adds this column's size estimate of rows [from, from+len(sizes))
// of the top-level array arr to sizes. For a nested leaf, a row's estimate is
// the sum over its level entries, so large arrays make large rows.
func (c *column) addRowSizes(arr arrow.Array, from int, sizes []int64) {
	if !c.nested() {
		nulls := c.optional && arr.NullN() > 0
		if c.store == storeBytes && !isDecimal256(c.arrowType) {
			if offs, _, ok := byteOffsets(arr); ok && !nulls {
				// Every value's estimate is its length + 4.
				for k := range sizes {
					sizes[k] += int64(offs(from+k+1)-offs(from+k)) + 4
				}
				return
			}
			size := c.sizer(arr)
			for k := range sizes {
				if nulls && arr.IsNull(from+k) {
					sizes[k] += nullBytes
				} else {
					sizes[k] += size(from + k)
				}
			}
			return
		}
		w := c.fixedSize()
		for k := range sizes {
			if nulls && arr.IsNull(from+k) {
				sizes[k] += nullBytes
			} else {
				sizes[k] += w
			}
		}
		return
	}
	size := c.sizer(c.leafArray(arr))
	for k := range sizes {
		// A NULL in a non-nullable field stops the walk; appendRange reports
		// it.
		_ = c.rowEntries(arr, from+k)
		for _, e := range c.entries {
			sizes[k] += size(e.value)
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

// byteOffsets returns the offsets of a string or binary array's values in its
// data buffer (value i is data[offs(i):offs(i+1)]) and that buffer.
func byteOffsets(arr arrow.Array) (offs func(int) int, data []byte, ok bool) {
	d := arr.Data()
	bufs := d.Buffers()
	if len(bufs) < 3 || bufs[1] == nil {
		return nil, nil, false
	}
	if bufs[2] != nil {
		data = bufs[2].Bytes()
	}
	switch arr.(type) {
	case *array.String, *array.Binary:
		o := arrow.Int32Traits.CastFromBytes(bufs[1].Bytes())[d.Offset():]
		return func(i int) int { return int(o[i]) }, data, true
	case *array.LargeString, *array.LargeBinary:
		o := arrow.Int64Traits.CastFromBytes(bufs[1].Bytes())[d.Offset():]
		return func(i int) int { return int(o[i]) }, data, true
	}
	return nil, nil, false
}

// appendRange copies rows [from, to) of the top-level array arr into the
// pending page, encoding the page whenever it reaches the page size. Pages
// end only between rows: a row's entries never span two pages (readers that
// skip pages by row count rely on it).
func (c *column) appendRange(w *Writer, arr arrow.Array, from, to int) error {
	if !c.nested() {
		return c.appendFlat(w, arr, from, to)
	}
	put, err := c.appender(c.leafArray(arr))
	if err != nil {
		return err
	}
	for i := from; i < to; i++ {
		if err := c.rowEntries(arr, i); err != nil {
			return fmt.Errorf("row %d: %w", i, err)
		}
		for _, e := range c.entries {
			size, err := put(e.value)
			if err != nil {
				return fmt.Errorf("row %d: %w", i, err)
			}
			c.pageBytes += size
			if e.value < 0 {
				c.nulls++
			}
			if c.maxDef > 0 {
				c.defs = append(c.defs, e.def)
			}
			if c.maxRep > 0 {
				c.reps = append(c.reps, e.rep)
			}
		}
		c.n += len(c.entries)
		if c.pageFull(w) {
			if err := w.flushPage(c); err != nil {
				return err
			}
		}
	}
	return nil
}

// appendFlat is appendRange for a top-level column that is not a group.
// Runs of rows without NULLs are copied in bulk, as many as fit in the page.
func (c *column) appendFlat(w *Writer, arr arrow.Array, from, to int) error {
	switch a := arr.(type) {
	case *array.Int64:
		return appendFixed(w, c, &c.i64, a.Int64Values(), arr, from, to)
	case *array.Float64:
		return appendFixed(w, c, &c.f64, a.Float64Values(), arr, from, to)
	case *array.Date32:
		return appendFixed(w, c, &c.i32, castSlice[arrow.Date32, int32](a.Date32Values()), arr, from, to)
	case *array.Timestamp:
		return appendFixed(w, c, &c.i64, castSlice[arrow.Timestamp, int64](a.TimestampValues()), arr, from, to)
	case *array.Time64:
		return appendFixed(w, c, &c.i64, castSlice[arrow.Time64, int64](a.Time64Values()), arr, from, to)
	case *array.Decimal128:
		vals := a.Values()
		for i := from; i < to && c.width < decimal128Bytes; i++ {
			if !a.IsNull(i) && !decimalFits(vals[i], c.width) {
				return fmt.Errorf("row %d: decimal value %s does not fit in %d bytes", i, vals[i].BigInt(), c.width)
			}
		}
		return appendFixed(w, c, &c.dec, vals, arr, from, to)
	case *array.String, *array.LargeString, *array.Binary, *array.LargeBinary:
		if offs, data, ok := byteOffsets(arr); ok && !(c.optional && arr.NullN() > 0) {
			return c.appendBytesNoNulls(w, offs, data, from, to)
		}
	}
	// Booleans, BIGNUMERIC and strings with NULLs: value by value.
	put, err := c.appender(arr)
	if err != nil {
		return err
	}
	nulls := c.optional && arr.NullN() > 0
	for i := from; i < to; i++ {
		if nulls && arr.IsNull(i) {
			c.pageBytes += nullBytes
			c.nulls++
			c.defs = append(c.defs, 0)
		} else {
			size, err := put(i)
			if err != nil {
				return fmt.Errorf("row %d: %w", i, err)
			}
			c.pageBytes += size
			if c.optional {
				c.defs = append(c.defs, 1)
			}
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

// appendFixed appends rows [from, to) of a flat fixed-width column whose
// values are vals.
func appendFixed[T any](w *Writer, c *column, dst *[]T, vals []T, arr arrow.Array, from, to int) error {
	width := int64(c.width)
	nulls := c.optional && arr.NullN() > 0
	for i := from; i < to; {
		if nulls {
			// Up to the end of the page, value by value.
			for ; i < to && !c.pageFull(w); i++ {
				if arr.IsNull(i) {
					c.pageBytes += nullBytes
					c.nulls++
					c.defs = append(c.defs, 0)
				} else {
					c.pageBytes += width
					*dst = append(*dst, vals[i])
					c.defs = append(c.defs, 1)
				}
				c.n++
			}
		} else {
			// The rows that fill the page: the page is full after the
			// first row that takes it to PageBytes or MaxPageValues.
			k := to - i
			room := (w.opts.PageBytes - c.pageBytes + width - 1) / width
			k = int(min(int64(k), room, int64(MaxPageValues-c.n)))
			*dst = append(*dst, vals[i:i+k]...)
			if c.optional {
				c.defs = appendRepeated(c.defs, 1, k)
			}
			c.n += k
			c.pageBytes += int64(k) * width
			i += k
		}
		if c.pageFull(w) {
			if err := w.flushPage(c); err != nil {
				return err
			}
		}
	}
	return nil
}

// appendBytesNoNulls appends rows [from, to) of a flat string or binary
// column without NULLs: the values of the rows that fit in the page are one
// copy.
func (c *column) appendBytesNoNulls(w *Writer, offs func(int) int, data []byte, from, to int) error {
	for i := from; i < to; {
		// Rows up to the first that takes the page to PageBytes or
		// MaxPageValues.
		j, size := i, c.pageBytes
		for j < to && size < w.opts.PageBytes && c.n+(j-i) < MaxPageValues {
			size += int64(offs(j+1)-offs(j)) + 4
			j++
		}
		base := len(c.arena) - offs(i)
		c.arena = append(c.arena, data[offs(i):offs(j)]...)
		for k := i; k < j; k++ {
			c.ends = append(c.ends, base+offs(k+1))
		}
		if c.optional {
			c.defs = appendRepeated(c.defs, 1, j-i)
		}
		c.n += j - i
		c.pageBytes = size
		i = j
		if c.pageFull(w) {
			if err := w.flushPage(c); err != nil {
				return err
			}
		}
	}
	return nil
}

func appendRepeated(dst []int32, v int32, n int) []int32 {
	dst = append(dst, make([]int32, n)...)
	if v != 0 {
		tail := dst[len(dst)-n:]
		for i := range tail {
			tail[i] = v
		}
	}
	return dst
}

// appender returns the function that appends value i of the leaf array arr
// (i < 0: an entry without a value, which appends nothing) to the pending
// page's typed values and returns its size estimate.
func (c *column) appender(arr arrow.Array) (func(int) (int64, error), error) {
	switch a := arr.(type) {
	case *array.Boolean:
		return fixedAppender(c, &c.bools, a.Value), nil
	case *array.Int64:
		return fixedAppender(c, &c.i64, a.Value), nil
	case *array.Float64:
		return fixedAppender(c, &c.f64, a.Value), nil
	case *array.Date32:
		return fixedAppender(c, &c.i32, func(i int) int32 { return int32(a.Value(i)) }), nil
	case *array.Timestamp:
		return fixedAppender(c, &c.i64, func(i int) int64 { return int64(a.Value(i)) }), nil
	case *array.Time64:
		return fixedAppender(c, &c.i64, func(i int) int64 { return int64(a.Value(i)) }), nil
	case *array.Decimal128:
		put := fixedAppender(c, &c.dec, a.Value)
		return func(i int) (int64, error) {
			if i >= 0 && !decimalFits(a.Value(i), c.width) {
				return 0, fmt.Errorf("decimal value %s does not fit in %d bytes", a.Value(i).BigInt(), c.width)
			}
			return put(i)
		}, nil
	case *array.MonthDayNanoInterval:
		switch c.part {
		case intervalMonths:
			return fixedAppender(c, &c.i32, func(i int) int32 { return a.Value(i).Months }), nil
		case intervalDays:
			return fixedAppender(c, &c.i32, func(i int) int32 { return a.Value(i).Days }), nil
		case intervalNanoseconds:
			return fixedAppender(c, &c.i64, func(i int) int64 { return a.Value(i).Nanoseconds }), nil
		}
	case *array.String:
		return bytesAppender(c, arr, func(i int, b []byte) []byte { return append(b, a.Value(i)...) }), nil
	case *array.LargeString:
		return bytesAppender(c, arr, func(i int, b []byte) []byte { return append(b, a.Value(i)...) }), nil
	case *array.Binary:
		return bytesAppender(c, arr, func(i int, b []byte) []byte { return append(b, a.Value(i)...) }), nil
	case *array.LargeBinary:
		return bytesAppender(c, arr, func(i int, b []byte) []byte { return append(b, a.Value(i)...) }), nil
	case *array.Decimal256:
		scale := c.scale
		return bytesAppender(c, arr, func(i int, b []byte) []byte {
			return appendDecimalText(b, a.Value(i).BigInt(), scale)
		}), nil
	}
	return nil, fmt.Errorf("unexpected array %T", arr)
}

// fixedAppender appends fixed-width values; get reads value i of the array.
func fixedAppender[T any](c *column, dst *[]T, get func(int) T) func(int) (int64, error) {
	width := int64(c.width)
	return func(i int) (int64, error) {
		if i < 0 {
			return nullBytes, nil
		}
		*dst = append(*dst, get(i))
		return width, nil
	}
}

// bytesAppender appends variable-length values; put appends value i's bytes.
func bytesAppender(c *column, arr arrow.Array, put func(int, []byte) []byte) func(int) (int64, error) {
	size := c.sizer(arr)
	return func(i int) (int64, error) {
		if i >= 0 {
			c.arena = put(i, c.arena)
			c.ends = append(c.ends, len(c.arena))
		}
		return size(i), nil
	}
}

func (c *column) pageFull(w *Writer) bool {
	return c.pageBytes >= w.opts.PageBytes || c.n >= MaxPageValues
}

// resetPage empties the pending page once it has been encoded.
func (c *column) resetPage() {
	c.n = 0
	c.nulls = 0
	c.pageBytes = 0
	c.defs = c.defs[:0]
	c.reps = c.reps[:0]
	c.bools = c.bools[:0]
	c.i32 = c.i32[:0]
	c.i64 = c.i64[:0]
	c.f64 = c.f64[:0]
	c.dec = c.dec[:0]
	c.arena = c.arena[:0]
	c.ends = c.ends[:0]
}

// resetRowGroup starts the pages, the dictionary, the statistics and the
// encoding decision afresh once the row group is written.
func (c *column) resetRowGroup() {
	c.dict = dictUndecided
	c.d.reset()
	c.chunk.reset()
	c.stats = chunkStats{}
}

// decimalTwos is v as 16 bytes of big-endian two's complement.
func decimalTwos(v decimal128.Num) (full [decimal128Bytes]byte) {
	binary.BigEndian.PutUint64(full[:8], uint64(v.HighBits()))
	binary.BigEndian.PutUint64(full[8:], v.LowBits())
	return full
}

// decimalFits reports whether v fits in width bytes of two's complement.
func decimalFits(v decimal128.Num, width int) bool {
	if width >= decimal128Bytes {
		return true
	}
	full := decimalTwos(v)
	cut := decimal128Bytes - width
	sign := byte(0)
	if v.Sign() < 0 {
		sign = 0xff
	}
	for _, x := range full[:cut] {
		if x != sign {
			return false
		}
	}
	return full[cut]&0x80 == sign&0x80
}

// appendDecimalBytes appends v as width bytes (at most 16) of big-endian two's complement,
// the parquet DECIMAL representation, built from the exact 128-bit value
// (the library's string conversion loses digits).
func appendDecimalBytes(b []byte, v decimal128.Num, width int) ([]byte, error) {
	if !decimalFits(v, width) {
		return b, fmt.Errorf("decimal value %s does not fit in %d bytes", v.BigInt(), width)
	}
	full := decimalTwos(v)
	return append(b, full[decimal128Bytes-width:]...), nil
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
	// nulls counts the level entries without a value: for a nested leaf that
	// includes NULL or empty arrays and NULL ancestors, as parquet-mr and
	// the v2 page header's num_nulls count them. A reader can only
	// over-estimate NULLs from it, never skip a row group that has one.
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

// addBytes is addString without converting every value to a string.
func (s *chunkStats) addBytes(v []byte) {
	if !s.has {
		s.minS, s.maxS, s.has = string(v), string(v), true
		return
	}
	if string(v) < s.minS {
		s.minS = string(v)
	}
	if string(v) > s.maxS {
		s.maxS = string(v)
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
