package relay

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// serveSubscriber upgrades a subscriber connection and goes on with it on
// a goroutine of its own: net/http's connection goroutine, whose stack grew
// while it parsed the request, ends when this returns.
func (h *Hub) serveSubscriber(w http.ResponseWriter, r *http.Request, s *Subscriber, legacy bool) {
	c, err := h.accept(w, r, s.Stream(), RoleSubscribe)
	if err != nil {
		s.Close()
		h.connGone()
		return
	}
	s.announce(r)
	go h.runSubscriber(c, s, legacy)
}

// runSubscriber runs a subscriber connection: this goroutine writes
// segments, another reads (pongs, close frames, and anything the peer sends).
func (h *Hub) runSubscriber(c *wsConn, s *Subscriber, legacy bool) {
	defer c.done()
	c.conn.SetReadLimit(4096)

	// The reader needs no context of its own: closing the connection (drop)
	// ends its Read, and a Read without a deadline context costs coder/
	// websocket no AfterFunc. It cancels the connection's context when it
	// ends, which tells the writer the peer is gone.
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		defer s.wake() // after cancel: a v1 writer waits on s's notify alone
		defer c.cancel()
		for {
			typ, _, err := c.conn.Read(context.Background())
			if err != nil {
				c.notePeerClose(err)
				return
			}
			// v1 subscribers may send text messages in a later version;
			// binary ones mean a confused peer. Legacy peers are ignored.
			if typ == websocket.MessageBinary && !legacy {
				// Read on, as for any peer, until the close ends the
				// connection.
				c.closeAsync(closeWith(websocket.StatusProtocolError, "subscribers send no binary messages"))
			}
		}
	}()

	sw := &subWriter{hub: h, c: c, s: s, ctx: c.ctx}
	var ce *closeErr
	if legacy {
		ce = sw.runLegacy()
	} else {
		ce = sw.run()
	}
	s.Close()
	c.finish(ce)
	h.connGone()
	h.emitEnd(s, c)
}

// subWriter writes a subscriber's segments to its connection.
type subWriter struct {
	hub   *Hub
	c     *wsConn
	s     *Subscriber
	ctx   context.Context // the connection's: done when the reader ended or it was dropped
	buf   []byte
	wrote bool // since the ping timer was last reset
	// idle, for a v1 writer, is set by its ping timer, which then wakes
	// it through the subscriber's notify (Subscriber.nextWoken); nil for
	// a legacy one, whose timer has a channel.
	idle *atomic.Bool
}

// wait returns the next segment, pinging the peer whenever the stream is
// idle for the ping interval. A nil closeErr with ok false means the
// connection is gone or its close began already.
func (sw *subWriter) wait(ping *time.Timer) (Segment, *closeErr, bool) {
	for {
		var seg Segment
		var ok bool
		var err error
		if sw.idle != nil {
			seg, ok, err = sw.s.nextWoken(sw.ctx, sw.idle)
		} else {
			seg, ok, err = sw.s.next(sw.ctx, ping.C)
		}
		if err != nil {
			return Segment{}, sw.ended(err), false
		}
		if sw.c.ending.Load() {
			// A close began (the reader's 1002, Shutdown): write nothing
			// more, so that its frame goes next.
			return Segment{}, nil, false
		}
		if ok {
			return seg, nil, true
		}
		// The timer is not reset for every write (that costs more than a
		// flag): it pings once the connection was idle for a whole interval.
		if !sw.wrote {
			ctx, cancel := context.WithTimeout(sw.ctx, sw.hub.cfg.writeTimeout)
			err = sw.c.conn.Ping(ctx)
			cancel()
			if err != nil {
				return Segment{}, nil, false
			}
		}
		sw.wrote = false
		ping.Reset(sw.hub.cfg.pingInterval)
	}
}

// ended says how to close once the subscriber ended with err.
func (sw *subWriter) ended(err error) *closeErr {
	if sw.ctx.Err() != nil {
		return nil // the peer left
	}
	if errors.Is(err, ErrClosed) {
		return closeWith(websocket.StatusNormalClosure, "closed")
	}
	return closeFor(err)
}

// run writes protocol v1: for each segment a control message, then the data
// as one binary message. Whatever is queued when a segment is taken goes
// with it: the frames of a batch are gathered under the connection's cork
// and leave in one writev, without a copy of segment data (cork.go). The
// writes themselves only fill the batch, so they need no context; the
// writev is bounded by the write timeout, as a deadline on the connection.
func (sw *subWriter) run() *closeErr {
	sw.idle = new(atomic.Bool)
	ping := time.AfterFunc(sw.hub.cfg.pingInterval, func() {
		sw.idle.Store(true)
		sw.s.wake()
	})
	defer ping.Stop()
	name := sw.s.Stream()
	cork := sw.c.cork
	for {
		seg, ce, ok := sw.wait(ping)
		if !ok {
			return ce
		}
		cork.cork()
		var err error
		for n, size := 1, 0; ; n++ {
			if err = sw.writeSegment(&seg, name); err != nil {
				break
			}
			size += len(seg.Data)
			if n >= batchSegments || size >= batchBytes || cork.full() || sw.c.ending.Load() {
				break
			}
			var more bool
			if seg, more, _ = sw.s.tryNext(); !more {
				break // an ended subscriber is seen by the next wait
			}
		}
		if uerr := cork.uncork(); err == nil {
			err = uerr
		}
		if err != nil {
			return nil // dropped: the peer left or stayed full past the write timeout
		}
		sw.wrote = true
		if sw.s.maxLag > 0 && !sw.holdWhileLate() {
			return nil // dropped: the peer left, or took nothing for the write timeout
		}
	}
}

// lateCheck is how often a writer holding back (holdWhileLate) looks again.
const lateCheck = 20 * time.Millisecond

// holdWhileLate waits while the kernel holds bytes the subscriber was
// handed more than half its lag bound ago: its link is slower than the
// stream, and more written now would only wait behind them. Meanwhile its
// queue skips to a keyframe (Subscriber.offer). It returns false when the
// connection ended, or when the peer took nothing for the write timeout.
func (sw *subWriter) holdWhileLate() bool {
	n, ok := unsentBytes(sw.c.cork.Conn)
	if !ok || sw.s.wireLate(n, time.Now()) <= sw.s.maxLag/2 {
		return true
	}
	tick := time.NewTicker(lateCheck)
	defer tick.Stop()
	progress := time.Now()
	for {
		select {
		case <-sw.ctx.Done():
			return false
		case now := <-tick.C:
			m, _ := unsentBytes(sw.c.cork.Conn)
			if m < n {
				n, progress = m, now
			}
			if sw.s.wireLate(m, now) <= sw.s.maxLag/2 {
				return true
			}
			if now.Sub(progress) > sw.hub.cfg.writeTimeout {
				return false
			}
		}
	}
}

// writeSegment writes one segment's messages into the batch.
func (sw *subWriter) writeSegment(seg *Segment, name string) error {
	sw.buf = appendHeader(sw.buf[:0], seg, name)
	err := sw.c.conn.Write(context.Background(), websocket.MessageText, sw.buf)
	if err == nil && (seg.Kind == KindInit || seg.Kind == KindMedia) {
		err = sw.c.conn.Write(context.Background(), websocket.MessageBinary, seg.Data)
	}
	return err
}
