package export

import (
	"context"
	"os"
	"sync"
)

// pipeline orders the shards of a table's streams: encoders push finished shards per stream,
// the uploader takes them stream by stream in the global order. It bounds what waits on disk:
//
//   - the head (the stream being uploaded) starts a shard only while fewer than ready of its
//     shards wait for the uploader, so encoding runs at most one shard ahead of uploading;
//   - every later stream starts a shard only while the staged bytes (finished shards not yet
//     uploaded, of any stream) are under budget, else it pauses until they drain.
//
// Encoders take streams in order, so the head is always being encoded or is already done
// (every stream before the lowest untaken one is complete): the head never waits for the
// budget, so the uploader always progresses and no budget can deadlock the table.
type pipeline struct {
	mu   sync.Mutex
	cond sync.Cond

	err    error // the first failure; everything stops on it
	next   int   // the next stream to hand to an encoder
	end    int   // the number of streams
	head   int   // the stream being uploaded
	queue  [][]*stagedShard
	done   []bool // the stream's encoder pushed its last shard
	staged int64  // bytes of finished shards not yet uploaded
	budget int64
	ready  int

	stopWake func() bool
}

func newPipeline(ctx context.Context, first, n int, budget int64, ready int) *pipeline {
	pl := &pipeline{next: first, end: n, head: first, queue: make([][]*stagedShard, n), done: make([]bool, n), budget: budget, ready: ready}
	pl.cond.L = &pl.mu
	// Waiters also wake when ctx ends.
	pl.stopWake = context.AfterFunc(ctx, func() {
		pl.mu.Lock()
		pl.cond.Broadcast()
		pl.mu.Unlock()
	})
	return pl
}

func (pl *pipeline) close() { pl.stopWake() }

// take hands out the next stream to encode.
func (pl *pipeline) take() (int, bool) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.err != nil || pl.next >= pl.end {
		return 0, false
	}
	k := pl.next
	pl.next++
	return k, true
}

// waitToStart blocks the encoder of stream k until it may start a new shard.
func (pl *pipeline) waitToStart(ctx context.Context, k int) error {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	for {
		if pl.err != nil {
			return pl.err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if k == pl.head {
			if len(pl.queue[k]) < pl.ready {
				return nil
			}
		} else if pl.staged < pl.budget {
			return nil
		}
		pl.cond.Wait()
	}
}

// push queues a finished shard of its stream; the pipeline owns its file from here on.
func (pl *pipeline) push(sh *stagedShard) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	pl.queue[sh.stream] = append(pl.queue[sh.stream], sh)
	pl.staged += sh.size
	pl.cond.Broadcast()
}

// streamDone marks that stream k has no more shards.
func (pl *pipeline) streamDone(k int) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	pl.done[k] = true
	pl.cond.Broadcast()
}

// nextShard waits for the next shard of stream k; nil means the stream is complete. The
// uploader owns the shard's file from here on and reports it with uploaded.
func (pl *pipeline) nextShard(ctx context.Context, k int) (*stagedShard, error) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	for {
		if pl.err != nil {
			return nil, pl.err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if q := pl.queue[k]; len(q) > 0 {
			sh := q[0]
			q[0] = nil
			pl.queue[k] = q[1:]
			pl.cond.Broadcast()
			return sh, nil
		}
		if pl.done[k] {
			return nil, nil
		}
		pl.cond.Wait()
	}
}

// uploaded releases the budget a shard held, once its upload ended (well or not).
func (pl *pipeline) uploaded(sh *stagedShard) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	pl.staged -= sh.size
	pl.cond.Broadcast()
}

// advance makes stream k the head.
func (pl *pipeline) advance(k int) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	pl.head = k
	pl.cond.Broadcast()
}

// fail records the first failure and wakes everyone.
func (pl *pipeline) fail(err error) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.err == nil {
		pl.err = err
	}
	pl.cond.Broadcast()
}

func (pl *pipeline) failure() error {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return pl.err
}

// removeLeftovers deletes the files of shards never uploaded, once every encoder stopped.
func (pl *pipeline) removeLeftovers() {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	for k, q := range pl.queue {
		for _, sh := range q {
			os.Remove(sh.path)
			pl.staged -= sh.size
		}
		pl.queue[k] = nil
	}
}
