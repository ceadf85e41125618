package parquetenc

import (
	"io"
	"runtime"
	"sync"

	"github.com/apache/arrow-go/v18/arrow/decimal128"
)

// Writers come and go (one per shard, per table), and a writer's buffers
// reach their working size (a page per column, a row group's compressed
// pages) only after growing through every smaller size. Closed writers hand
// their buffers and their gzip compressor to the next writer instead, by
// storage type so that each set only holds capacity in the slices that type
// uses. The free lists are bounded (a few writers' worth per core) and,
// unlike a sync.Pool, survive garbage collections: small tables, whose
// exports are over before their buffers would have grown, otherwise pay the
// growth every time.

// columnBufs are one column's reusable buffers.
type columnBufs struct {
	defs, reps []int32
	bools      []bool
	i32        []int32
	i64        []int64
	f64        []float64
	dec        []decimal128.Num
	arena      []byte
	ends       []int
	entries    []entry
	dict       dictionary
}

var (
	columnBufPools [numStorages]freeList[*columnBufs]
	pageEncoders   freeList[*pageEncoder]
)

// freeList is a bounded stack of reusable things, safe for concurrent use.
type freeList[T any] struct {
	mu    sync.Mutex
	items []T
}

// freeListBound is the most items one free list keeps.
var freeListBound = 8 * runtime.GOMAXPROCS(0)

func (f *freeList[T]) get() (T, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var zero T
	if len(f.items) == 0 {
		return zero, false
	}
	x := f.items[len(f.items)-1]
	f.items[len(f.items)-1] = zero
	f.items = f.items[:len(f.items)-1]
	return x, true
}

func (f *freeList[T]) put(x T) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.items) < freeListBound {
		f.items = append(f.items, x)
	}
}

// takeBuffers gives c the buffers of a closed writer's column of its storage
// type, if any.
func (c *column) takeBuffers() {
	b, ok := columnBufPools[c.store].get()
	if !ok {
		return
	}
	c.defs, c.reps, c.bools, c.i32, c.i64, c.f64, c.dec = b.defs[:0], b.reps[:0], b.bools[:0], b.i32[:0], b.i64[:0], b.f64[:0], b.dec[:0]
	c.arena, c.ends, c.entries = b.arena[:0], b.ends[:0], b.entries[:0]
	c.d = b.dict
	c.d.reset()
}

// releaseBuffers hands c's buffers over to the next writer.
func (c *column) releaseBuffers() {
	columnBufPools[c.store].put(&columnBufs{defs: c.defs, reps: c.reps, bools: c.bools, i32: c.i32, i64: c.i64, f64: c.f64, dec: c.dec,
		arena: c.arena, ends: c.ends, entries: c.entries, dict: c.d})
	c.defs, c.reps, c.bools, c.i32, c.i64, c.f64, c.dec = nil, nil, nil, nil, nil, nil, nil
	c.arena, c.ends, c.entries = nil, nil, nil
	c.d = dictionary{}
}

func getPageEncoder() *pageEncoder {
	if p, ok := pageEncoders.get(); ok {
		return p
	}
	return newPageEncoder()
}

func putPageEncoder(p *pageEncoder) {
	p.gz.Reset(nil)
	pageEncoders.put(p)
}

// blockBytes is the size of the blocks that hold a row group's compressed
// pages: all alike, so that any writer can reuse any block.
const blockBytes = 256 << 10

var blocks = sync.Pool{New: func() any { return new([blockBytes]byte) }}

// blockBuf is a byte sequence kept in blocks, which never copies what it
// holds as it grows.
type blockBuf struct {
	blocks []*[blockBytes]byte
	n      int // bytes held
}

func (b *blockBuf) write(p []byte) {
	for len(p) > 0 {
		at := b.n % blockBytes
		if at == 0 && b.n/blockBytes == len(b.blocks) {
			b.blocks = append(b.blocks, blocks.Get().(*[blockBytes]byte))
		}
		k := copy(b.blocks[b.n/blockBytes][at:], p)
		b.n += k
		p = p[k:]
	}
}

// writeTo writes the bytes held to w.
func (b *blockBuf) writeTo(w io.Writer) error {
	for i, blk := range b.blocks {
		n := min(blockBytes, b.n-i*blockBytes)
		if n <= 0 {
			break
		}
		if _, err := w.Write(blk[:n]); err != nil {
			return err
		}
	}
	return nil
}

// reset empties the buffer and hands its blocks over to other buffers.
func (b *blockBuf) reset() {
	for i, blk := range b.blocks {
		blocks.Put(blk)
		b.blocks[i] = nil
	}
	b.blocks = b.blocks[:0]
	b.n = 0
}
