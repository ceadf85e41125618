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
// out of Arrow, in compact typed slices, with their levels) and its row-group
// statistics.
type column struct {
	name         string   // dotted path of exact names, for error messages
	pathInSchema []string // exact names from the top-level column down to the leaf
	arrowType    arrow.DataType
	optional     bool  // the leaf element is OPTIONAL
	maxDef       int32 // definition level of a present value
	maxRep       int32 // repetition level of a leaf under lists (0: not repeated)
	steps        []step
	part         intervalPart
	elem         int      // index of the leaf's schema element
	path         []string // the library's internal path, root first
	key          string   // common.PathToStr(path): key of the library's page and dictionary maps
	store        storage
	width        int   // bytes per value for fixed-width storage (FIXED_LEN_BYTE_ARRAY length for decimals)
	scale        int32 // decimal256 scale, for the text form
	dictCapable  bool
	dictTag      *common.Tag // the handler's Info: PLAIN_DICTIONARY for dictionary-capable columns
	plainTag     *common.Tag

	// Pending page: n level entries (one per row for a flat column); defs
	// only when maxDef > 0, reps only when maxRep > 0; exactly one of the
	// typed slices is used, with one value per entry (entries without a
	// value hold a zero value there).
	n         int
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
	dict      dictState
	dictSeen  int   // entries of the library's dictionary already measured
	dictBytes int64 // size of those entries
	stats     chunkStats
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
	w := int64(c.width)
	if isDecimal256(c.arrowType) {
		w = decimal256TextBytes
	}
	return func(i int) int64 {
		if i < 0 {
			return nullBytes
		}
		return w
	}
}

// addRowSizes adds this column's size estimate of rows [from, from+len(sizes))
// of the top-level array arr to sizes. For a nested leaf, a row's estimate is
// the sum over its level entries, so large arrays make large rows.
func (c *column) addRowSizes(arr arrow.Array, from int, sizes []int64) {
	if !c.nested() {
		size := c.sizer(arr)
		nulls := c.optional && arr.NullN() > 0
		for k := range sizes {
			if nulls && arr.IsNull(from+k) {
				sizes[k] += nullBytes
			} else {
				sizes[k] += size(from + k)
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

// appendRange copies rows [from, to) of the top-level array arr into the
// pending page, flushing the page whenever it reaches the page size. Pages
// end only between rows: a row's entries never span two pages (readers that
// skip pages by row count rely on it).
func (c *column) appendRange(w *Writer, arr arrow.Array, from, to int) error {
	if !c.nested() {
		put, err := c.appender(arr)
		if err != nil {
			return err
		}
		nulls := c.optional && arr.NullN() > 0
		for i := from; i < to; i++ {
			if nulls && arr.IsNull(i) {
				c.pageBytes += put(-1)
				c.defs = append(c.defs, 0)
			} else {
				c.pageBytes += put(i)
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
	put, err := c.appender(c.leafArray(arr))
	if err != nil {
		return err
	}
	for i := from; i < to; i++ {
		if err := c.rowEntries(arr, i); err != nil {
			return fmt.Errorf("row %d: %w", i, err)
		}
		for _, e := range c.entries {
			c.pageBytes += put(e.value)
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

// appender returns the function that appends value i of the leaf array arr
// (i < 0: an entry without a value) to the pending page's typed values and
// returns its size estimate.
func (c *column) appender(arr arrow.Array) (func(int) int64, error) {
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
		return fixedAppender(c, &c.dec, a.Value), nil
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
func fixedAppender[T any](c *column, dst *[]T, get func(int) T) func(int) int64 {
	width := int64(c.width)
	return func(i int) int64 {
		if i < 0 {
			var zero T
			*dst = append(*dst, zero)
			return nullBytes
		}
		*dst = append(*dst, get(i))
		return width
	}
}

// bytesAppender appends variable-length values; put appends value i's bytes.
func bytesAppender(c *column, arr arrow.Array, put func(int, []byte) []byte) func(int) int64 {
	size := c.sizer(arr)
	return func(i int) int64 {
		if i >= 0 {
			c.arena = put(i, c.arena)
		}
		c.ends = append(c.ends, len(c.arena))
		return size(i)
	}
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
	valid := func(i int) bool { return c.maxDef == 0 || c.defs[i] == c.maxDef }
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
		MaxRepetitionLevel: c.maxRep,
		Values:             vals,
		DefinitionLevels:   w.zeros[:n],
		RepetitionLevels:   w.zeros[:n],
		Info:               c.plainTag,
	}
	t.Schema = w.pw.SchemaHandler.SchemaElements[c.elem]
	if c.optional {
		t.RepetitionType = parquet.FieldRepetitionType_OPTIONAL
	}
	if c.maxDef > 0 {
		t.DefinitionLevels = c.defs[:n]
	}
	if c.maxRep > 0 {
		t.RepetitionLevels = c.reps[:n]
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
	c.reps = c.reps[:0]
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
