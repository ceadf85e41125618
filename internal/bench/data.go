package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"time"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/dreamdata/destination-aws-s3/internal/bqsource"
)

// The synthetic table is event-like, the shape of the biggest exported tables, with the Arrow
// types the Storage Read API sends for them (STRING as utf8, JSON as utf8 with BigQuery's
// extension name, TIMESTAMP as timestamp[us, UTC], DATE as date32, NUMERIC as
// decimal128(38,9)).
const (
	colEventID = iota
	colAccountID
	colEventType
	colURL
	colProperties
	colTimestamp
	colEventDate
	colSequence
	colScore
	colRevenue
	colIsConversion
	numCols
)

// eventIDLen is the length of every event_id: 16 hex digits, '-', 8 hex digits.
const eventIDLen = 25

// freshCols are generated anew for every batch a Source hands out, so that they stay unique
// (or random) across the whole table as in real data; the other columns come from the pool.
// Reusing pooled values for them would let a dictionary hold a whole column and flatter the
// encoders.
var freshCols = [...]int{colEventID, colTimestamp, colEventDate, colScore}

var jsonMeta = arrow.NewMetadata([]string{"ARROW:extension:name"}, []string{"google:sqlType:json"})

// EventSchema is the schema of the synthetic events table.
func EventSchema() *arrow.Schema {
	return arrow.NewSchema([]arrow.Field{
		{Name: "event_id", Type: arrow.BinaryTypes.String},
		{Name: "account_id", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "event_type", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "url", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "properties", Type: arrow.BinaryTypes.String, Nullable: true, Metadata: jsonMeta},
		{Name: "timestamp", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
		{Name: "event_date", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
		{Name: "sequence", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "score", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "revenue", Type: &arrow.Decimal128Type{Precision: 38, Scale: 9}, Nullable: true},
		{Name: "is_conversion", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	}, nil)
}

// SourceOptions size a Source.
type SourceOptions struct {
	// Streams of the session; rows are split evenly between them.
	Streams int
	// TableBytes is the table's size in Arrow buffer bytes; the row count is derived from it.
	TableBytes int64
	// PoolBatches and BatchRows shape the pool of pre-built batches the table cycles through.
	// BatchRows is also the size of the batches handed out.
	PoolBatches int
	BatchRows   int
}

// Source is a fast synthetic BigQuery read session: it implements export.Reader by handing
// out pre-built pool batches (sliced when a read starts inside one), with the fresh columns
// regenerated per batch from the row's position, so every read of a stream from an offset
// sees the same rows. It is safe for concurrent reads of different streams.
type Source struct {
	schema        *arrow.Schema
	opts          SourceOptions
	pool          []arrow.RecordBatch
	poolBytes     []int64 // Arrow bytes of each pool batch's pooled columns
	freshRowBytes int64   // Arrow bytes per row of the fresh columns
	rowsPerStream int64
	index         map[string]int
	session       *bqsource.Session
}

// NewSource builds the pool (a fraction of a second for the default sizes) and sizes the
// table. Release frees the pool.
func NewSource(o SourceOptions) (*Source, error) {
	if o.Streams <= 0 || o.PoolBatches <= 0 || o.BatchRows <= 0 || o.TableBytes < 0 {
		return nil, fmt.Errorf("bench: bad source options %+v", o)
	}
	s := &Source{schema: EventSchema(), opts: o, index: map[string]int{}}
	s.freshRowBytes = eventIDLen + 4 + 8 + 4 + 8 // id bytes + id offset, timestamp, date, score
	r := rand.New(rand.NewPCG(1, 2))
	var pooled int64
	for range o.PoolBatches {
		rec := s.buildPoolBatch(r, o.BatchRows)
		s.pool = append(s.pool, rec)
		var n int64
		for c := range numCols {
			if !isFresh(c) {
				n += arrayBytes(rec.Column(c).Data())
			}
		}
		s.poolBytes = append(s.poolBytes, n)
		pooled += n
	}
	perRow := float64(pooled)/float64(o.PoolBatches*o.BatchRows) + float64(s.freshRowBytes)
	rows := int64(math.Ceil(float64(o.TableBytes) / perRow))
	s.rowsPerStream = (rows + int64(o.Streams) - 1) / int64(o.Streams)

	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(s.schema))
	if err := w.Close(); err != nil {
		return nil, err
	}
	// The session carries the schema message alone, as BigQuery's arrow_schema does: drop the
	// stream's end-of-stream marker.
	sess := &bqsource.Session{Name: "projects/bench/locations/us/sessions/synthetic", ArrowSchema: buf.Bytes()[:buf.Len()-8],
		ExpireTime: time.Now().Add(6 * time.Hour)}
	for k := range o.Streams {
		name := fmt.Sprintf("%s/streams/%d", sess.Name, k)
		sess.Streams = append(sess.Streams, name)
		s.index[name] = k
	}
	s.session = sess
	return s, nil
}

func isFresh(c int) bool {
	for _, f := range freshCols {
		if f == c {
			return true
		}
	}
	return false
}

// Release frees the pool.
func (s *Source) Release() {
	for _, rec := range s.pool {
		rec.Release()
	}
	s.pool = nil
}

// Schema is the table's Arrow schema.
func (s *Source) Schema() *arrow.Schema { return s.schema }

// Session is a read session of the table, with a real IPC schema message.
func (s *Source) Session() *bqsource.Session {
	c := *s.session
	c.Streams = append([]string(nil), s.session.Streams...)
	return &c
}

// Rows is the number of rows in the table.
func (s *Source) Rows() int64 { return s.rowsPerStream * int64(s.opts.Streams) }

// PoolBytes is the Arrow bytes the pool holds in memory.
func (s *Source) PoolBytes() (n int64) {
	for _, rec := range s.pool {
		for _, col := range rec.Columns() {
			n += arrayBytes(col.Data())
		}
	}
	return n
}

// ArrowBytes is the Arrow buffer bytes of the whole table as handed out: whole batches count
// their buffers, a slice its share of its batch's pooled buffers.
func (s *Source) ArrowBytes() (n int64) {
	for k := range s.opts.Streams {
		n += s.streamBytes(k, 0, s.rowsPerStream)
	}
	return n
}

// streamBytes is the Arrow bytes of rows [from, to) of stream k.
func (s *Source) streamBytes(k int, from, to int64) (n int64) {
	br := int64(s.opts.BatchRows)
	for r := from; r < to; {
		within := r % br
		m := min(br-within, to-r)
		n += s.poolBytes[s.poolIndex(k, r)]*m/br + m*s.freshRowBytes
		r += m
	}
	return n
}

func (s *Source) poolIndex(k int, r int64) int {
	return int((r/int64(s.opts.BatchRows) + int64(k)) % int64(len(s.pool)))
}

// Read implements export.Reader: it hands fn the rows of stream from offset, in batches of
// BatchRows (the first one shorter when offset falls inside a batch). The fresh columns of a
// batch live in buffers reused for the next batch: fn must not keep the batch after it
// returns, as with bqsource.Client.Read.
func (s *Source) Read(ctx context.Context, _ *bqsource.Session, stream string, offset int64, fn func(arrow.RecordBatch) error) error {
	k, ok := s.index[stream]
	if !ok {
		return fmt.Errorf("bench: unknown stream %q", stream)
	}
	if offset < 0 || offset > s.rowsPerStream {
		return fmt.Errorf("bench: offset %d outside stream %q of %d rows", offset, stream, s.rowsPerStream)
	}
	sc := newScratch(s.opts.BatchRows)
	br := int64(s.opts.BatchRows)
	for r := offset; r < s.rowsPerStream; {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(br-r%br, s.rowsPerStream-r)
		rec := s.batch(k, r, n, sc)
		err := fn(rec)
		rec.Release()
		if err != nil {
			return err
		}
		r += n
	}
	return nil
}

// Batches returns rows [0, rows) of stream k as independent batches (no shared scratch), for
// benchmarks that feed the same batches to several writers. The caller releases them.
func (s *Source) Batches(k int, rows int64) []arrow.RecordBatch {
	var out []arrow.RecordBatch
	br := int64(s.opts.BatchRows)
	for r := int64(0); r < rows; {
		n := min(br-r%br, rows-r)
		out = append(out, s.batch(k, r, n, newScratch(int(n))))
		r += n
	}
	return out
}

// scratch holds the fresh columns' values of one batch.
type scratch struct {
	ids     []byte
	offsets []int32
	ts      []int64
	dates   []int32
	scores  []float64
}

func newScratch(rows int) *scratch {
	sc := &scratch{ids: make([]byte, rows*eventIDLen), offsets: make([]int32, rows+1),
		ts: make([]int64, rows), dates: make([]int32, rows), scores: make([]float64, rows)}
	for i := range sc.offsets {
		sc.offsets[i] = int32(i * eventIDLen)
	}
	return sc
}

// baseMicros is the first event's time; events of a stream follow every 100 ms on average.
var baseMicros = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()

// batch is rows [r, r+n) of stream k, within one pool batch.
func (s *Source) batch(k int, r, n int64, sc *scratch) arrow.RecordBatch {
	pool := s.pool[s.poolIndex(k, r)]
	within := r % int64(s.opts.BatchRows)
	whole := within == 0 && n == pool.NumRows()
	hex := "0123456789abcdef"
	for i := range n {
		row := r + i
		h := mix(uint64(k)<<40 | uint64(row))
		id := sc.ids[i*eventIDLen : (i+1)*eventIDLen]
		for d, v := 15, h; d >= 0; d, v = d-1, v>>4 {
			id[d] = hex[v&15]
		}
		id[16] = '-'
		for d, v := 24, uint32(row); d >= 17; d, v = d-1, v>>4 {
			id[d] = hex[v&15]
		}
		ts := baseMicros + (row*int64(s.opts.Streams)+int64(k))*100_000/int64(s.opts.Streams) + int64(h>>40)%100_000
		sc.ts[i] = ts
		sc.dates[i] = int32(ts / (86_400 * 1_000_000))
		sc.scores[i] = float64(mix(h)>>11) / (1 << 53)
	}
	cols := make([]arrow.Array, numCols)
	for c := range numCols {
		switch c {
		case colEventID:
			cols[c] = array.NewStringData(array.NewData(arrow.BinaryTypes.String, int(n),
				[]*memory.Buffer{nil, memory.NewBufferBytes(bytesOf(sc.offsets[:n+1])), memory.NewBufferBytes(sc.ids[:n*eventIDLen])}, nil, 0, 0))
		case colTimestamp:
			cols[c] = fixedWidth(s.schema.Field(c).Type, int(n), bytesOf(sc.ts[:n]))
		case colEventDate:
			cols[c] = fixedWidth(s.schema.Field(c).Type, int(n), bytesOf(sc.dates[:n]))
		case colScore:
			cols[c] = fixedWidth(s.schema.Field(c).Type, int(n), bytesOf(sc.scores[:n]))
		default:
			if whole {
				cols[c] = pool.Column(c)
				cols[c].Retain()
			} else {
				cols[c] = array.NewSlice(pool.Column(c), within, within+n)
			}
		}
	}
	rec := array.NewRecordBatch(s.schema, cols, n)
	for _, c := range cols {
		c.Release()
	}
	return rec
}

func fixedWidth(t arrow.DataType, n int, values []byte) arrow.Array {
	d := array.NewData(t, n, []*memory.Buffer{nil, memory.NewBufferBytes(values)}, nil, 0, 0)
	defer d.Release()
	return array.MakeFromData(d)
}

// bytesOf views a slice of fixed-size numbers as its little-endian bytes (Arrow's layout on
// the little-endian machines this runs on).
func bytesOf[T int32 | int64 | float64](v []T) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), len(v)*int(unsafe.Sizeof(v[0])))
}

func init() {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		panic("bench: the synthetic source assumes a little-endian machine")
	}
}

// mix is splitmix64's finalizer: a bijection, so distinct rows get distinct event ids.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// buildPoolBatch builds one pool batch: strings drawn from realistic vocabularies (with
// repetition), ~25% NULL JSON properties, ~90% NULL revenue, small integers, rare booleans.
// The fresh columns are placeholders here; batch replaces them.
func (s *Source) buildPoolBatch(r *rand.Rand, rows int) arrow.RecordBatch {
	types := []string{"page_view", "click", "form_submit", "signup", "purchase", "identify"}
	paths := []string{"/", "/pricing", "/blog/attribution-models", "/docs/getting-started", "/contact"}
	bld := array.NewRecordBuilder(memory.DefaultAllocator, s.schema)
	defer bld.Release()
	for range rows {
		bld.Field(colEventID).(*array.StringBuilder).Append("")
		if r.IntN(50) == 0 {
			bld.Field(colAccountID).AppendNull()
		} else {
			bld.Field(colAccountID).(*array.StringBuilder).Append(fmt.Sprintf("acct-%04d", r.IntN(300)))
		}
		bld.Field(colEventType).(*array.StringBuilder).Append(types[r.IntN(len(types))])
		bld.Field(colURL).(*array.StringBuilder).Append("https://example.com" + paths[r.IntN(len(paths))] + fmt.Sprintf("?utm_source=s%d", r.IntN(20)))
		if r.IntN(4) == 0 {
			bld.Field(colProperties).AppendNull()
		} else {
			bld.Field(colProperties).(*array.StringBuilder).Append(fmt.Sprintf(`{"campaign":"c%d","value":%d}`, r.IntN(50), r.IntN(1000)))
		}
		bld.Field(colTimestamp).(*array.TimestampBuilder).Append(0)
		bld.Field(colEventDate).(*array.Date32Builder).Append(0)
		bld.Field(colSequence).(*array.Int64Builder).Append(int64(r.IntN(100)))
		bld.Field(colScore).(*array.Float64Builder).Append(0)
		if r.IntN(10) == 0 {
			bld.Field(colRevenue).(*array.Decimal128Builder).Append(decimal128.FromBigInt(new(big.Int).Mul(big.NewInt(r.Int64N(1e6)), big.NewInt(1e7))))
		} else {
			bld.Field(colRevenue).AppendNull()
		}
		bld.Field(colIsConversion).(*array.BooleanBuilder).Append(r.IntN(20) == 0)
	}
	return bld.NewRecordBatch()
}

// arrayBytes is the sum of the lengths of an array's buffers, its children's and its
// dictionary's: the Arrow bytes of an unsliced array.
func arrayBytes(d arrow.ArrayData) (n int64) {
	for _, b := range d.Buffers() {
		if b != nil {
			n += int64(b.Len())
		}
	}
	for _, c := range d.Children() {
		n += arrayBytes(c)
	}
	if dict, ok := d.Dictionary().(*array.Data); ok && dict != nil {
		n += arrayBytes(dict)
	}
	return n
}
