package relay

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/coder/websocket"
)

// serveSubscriber runs a subscriber connection: this goroutine writes
// segments, another reads (pongs, close frames, and anything the peer sends).
func (h *Hub) serveSubscriber(w http.ResponseWriter, r *http.Request, s *Subscriber, legacy bool) {
	c, err := h.accept(w, r, s.Stream(), RoleSubscribe)
	if err != nil {
		s.Close()
		return
	}
	defer c.done()
	s.announce(r)
	c.conn.SetReadLimit(4096)

	ctx, cancel := context.WithCancel(c.ctx)
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		defer cancel()
		for {
			typ, _, err := c.conn.Read(ctx)
			if err != nil {
				c.notePeerClose(err)
				return
			}
			// v1 subscribers may send text messages in a later version;
			// binary ones mean a confused peer. Legacy peers are ignored.
			if typ == websocket.MessageBinary && !legacy {
				// Read on: returning would cancel ctx, and with it a write
				// of the writer's that the close frame may wait behind.
				c.closeAsync(closeWith(websocket.StatusProtocolError, "subscribers send no binary messages"))
			}
		}
	}()

	sw := subWriter{hub: h, c: c, s: s, ctx: ctx}
	var ce *closeErr
	if legacy {
		ce = sw.runLegacy()
	} else {
		ce = sw.run()
	}
	s.Close()
	c.finish(ce)
	cancel()
	if ev, ok := s.endEvent(); ok {
		h.emit(c.withCloseFrame(ev))
	}
}

// subWriter writes a subscriber's segments to its connection.
type subWriter struct {
	hub *Hub
	c   *wsConn
	s   *Subscriber
	ctx context.Context // done when the reader goroutine ended
	buf []byte
}

// wait returns the next segment, pinging the peer whenever the stream is
// idle for the ping interval. A nil closeErr with ok false means the
// connection is gone or its close began already.
func (sw *subWriter) wait(ping *time.Timer) (Segment, *closeErr, bool) {
	for {
		seg, ok, err := sw.s.next(sw.ctx, ping.C)
		if err != nil {
			if sw.ctx.Err() != nil {
				return Segment{}, nil, false // the peer left
			}
			if errors.Is(err, ErrClosed) {
				return Segment{}, closeWith(websocket.StatusNormalClosure, "closed"), false
			}
			return Segment{}, closeFor(err), false
		}
		if sw.c.ending.Load() {
			// A close began (the reader's 1002, Shutdown): write nothing
			// more, so that its frame goes next.
			return Segment{}, nil, false
		}
		if ok {
			return seg, nil, true
		}
		ctx, cancel := context.WithTimeout(sw.ctx, sw.hub.cfg.writeTimeout)
		err = sw.c.conn.Ping(ctx)
		cancel()
		if err != nil {
			return Segment{}, nil, false
		}
		ping.Reset(sw.hub.cfg.pingInterval)
	}
}

// run writes protocol v1: a control message, then the data as one binary
// message.
func (sw *subWriter) run() *closeErr {
	ping := time.NewTimer(sw.hub.cfg.pingInterval)
	defer ping.Stop()
	name := sw.s.Stream()
	for {
		seg, ce, ok := sw.wait(ping)
		if !ok {
			return ce
		}
		ctx, cancel := context.WithTimeout(sw.ctx, sw.hub.cfg.writeTimeout)
		sw.buf = appendHeader(sw.buf[:0], &seg, name)
		err := sw.c.conn.Write(ctx, websocket.MessageText, sw.buf)
		if err == nil && (seg.Kind == KindInit || seg.Kind == KindMedia) {
			err = sw.c.conn.Write(ctx, websocket.MessageBinary, seg.Data)
		}
		cancel()
		if err != nil {
			return nil // dropped: the peer left or stayed full past the write timeout
		}
		ping.Reset(sw.hub.cfg.pingInterval)
	}
}
