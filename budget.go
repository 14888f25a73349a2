package relay

import (
	"fmt"
	"sync/atomic"
)

// budget is the hub-wide bound on the bytes held on behalf of publishers
// (WithMemoryBudget). Every holder reserves before it keeps bytes, through
// a holding of its own, and gives them back when it lets them go.
type budget struct {
	limit int64
	held  atomic.Int64
}

// take reserves n bytes, or reports false when that would exceed the limit.
func (b *budget) take(n int64) bool {
	for {
		h := b.held.Load()
		if h+n > b.limit {
			return false
		}
		if b.held.CompareAndSwap(h, h+n) {
			return true
		}
	}
}

func (b *budget) give(n int64) { b.held.Add(-n) }

// full reports whether nothing more fits: new publishers are refused then.
func (b *budget) full() bool { return b.held.Load() >= b.limit }

// A holding is what one holder has reserved from a budget. Not safe for
// concurrent use: each holding belongs to one holder, under that holder's lock.
type holding struct {
	b *budget
	n int64
}

// resize makes the holding n bytes. Growing fails with ErrOverBudget, naming
// what, when the budget has no room; the holding is unchanged then.
func (c *holding) resize(n int, what string) error {
	d := int64(n) - c.n
	if d > 0 && !c.b.take(d) {
		return fmt.Errorf("%w: %s needs %d more bytes, the hub holds %d of %d", ErrOverBudget, what, d, c.b.held.Load(), c.b.limit)
	}
	if d < 0 {
		c.b.give(-d)
	}
	c.n = int64(n)
	return nil
}

// release gives the whole holding back.
func (c *holding) release() { c.resize(0, "") }
