package relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/coder/websocket"
)

// inMessage is one message handed from a connection's reader goroutine.
type inMessage struct {
	typ  websocket.MessageType
	data []byte // valid until the reader is told to go on
	more bool   // the peer's next bytes were there already when data was read
	err  error
}

// A publisher's read buffer is kept for the next message when it is at most
// this big; a bigger one is let go, so that a few large messages do not pin
// memory for the connection's life.
const keepReadBuffer = 256 << 10

// servePublisher runs a publisher connection until it ends. Two goroutines:
// this one handles messages and timers; a reader hands it one message at a
// time (reusing its buffer, counted against the memory budget), so a timeout
// can still close the connection with a code while a read is pending.
func (h *Hub) servePublisher(w http.ResponseWriter, r *http.Request, p *Publisher, legacy bool) {
	c, err := h.accept(w, r, p.Stream(), RolePublish)
	if err != nil {
		p.Close()
		return
	}
	defer c.done()
	p.announce(r)
	c.conn.SetReadLimit(int64(h.cfg.maxMessageBytes))

	msgs := make(chan inMessage)
	// next has room for its one token: the session goes back to waiting for
	// messages at once, not after the reader got a core again (traces under
	// load: the session stalled up to 68 ms handing it over).
	next := make(chan struct{}, 1)
	quit := make(chan struct{})
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		c.readMessages(msgs, next, quit)
	}()

	ps := &pubSession{hub: h, c: c, p: p, legacy: legacy,
		files: legacyAssembler{chunkSize: h.cfg.legacyChunkSize, maxFile: h.cfg.maxSegmentBytes},
		held:  holding{b: &h.budget}}
	ce := ps.run(msgs, next)
	close(quit) // the reader drains until the close handshake is over
	ps.held.release()
	p.Close()
	c.finish(ce)
	h.emitEnd(p, c)
}

// readMessages reads a publisher's messages into one buffer and hands each
// to msgs, waiting for next before reading on. Once quit is closed it reads
// and discards, so a close handshake is answered, until the connection ends.
func (c *wsConn) readMessages(msgs chan<- inMessage, next, quit <-chan struct{}) {
	var buf bytes.Buffer
	held := holding{b: &c.hub.budget}
	defer held.release()
	defer c.discard()
	for {
		typ, rd, err := c.conn.Reader(c.ctx)
		if err == nil {
			buf.Reset()
			_, err = buf.ReadFrom(rd)
		}
		c.notePeerClose(err)
		if err == nil {
			err = held.resize(buf.Cap(), "a publisher's read buffer")
		}
		more := err == nil && inputPending(c.netConn)
		select {
		case msgs <- inMessage{typ: typ, data: buf.Bytes(), more: more, err: err}:
		case <-quit:
			return
		}
		if err != nil {
			return
		}
		select {
		case <-next:
		case <-quit:
			return
		}
		if buf.Cap() > keepReadBuffer {
			buf = bytes.Buffer{}
			held.release()
		}
	}
}

// discard reads and drops messages until the connection fails or closes.
func (c *wsConn) discard() {
	for {
		_, rd, err := c.conn.Reader(c.ctx)
		if err != nil {
			return
		}
		if _, err := io.Copy(io.Discard, rd); err != nil {
			return
		}
	}
}

// pubSession is the state of one publisher connection.
type pubSession struct {
	hub    *Hub
	c      *wsConn
	p      *Publisher
	legacy bool

	started bool
	mode    string

	seg   *declaredSegment // segments mode: the one being received
	files legacyAssembler
	held  holding // seg's data or the legacy file being assembled

	statsSent int
	statsAt   time.Time
}

// declaredSegment is a segments-mode segment between its declaration and
// its last byte. Its data is allocated at the declared size, once.
type declaredSegment struct {
	init, keyframe bool
	data           []byte // len: received so far; cap: declared size
}

func (d *declaredSegment) complete() bool { return len(d.data) == cap(d.data) }

func (d *declaredSegment) segment() Segment {
	if d.init {
		return Segment{Kind: KindInit, Data: d.data}
	}
	return Segment{Kind: KindMedia, Keyframe: d.keyframe, Data: d.data}
}

// run handles messages until the connection ends. It returns how to close
// it, or nil when the peer closed it already.
//
// A v1 publisher must send its start within the start timeout; every
// publisher keeps the idle rule (publish_idle.go).
func (ps *pubSession) run(msgs <-chan inMessage, next chan<- struct{}) *closeErr {
	cfg := &ps.hub.cfg
	start := time.NewTimer(cfg.startTimeout)
	defer start.Stop()
	if ps.legacy {
		// No start message: a legacy page sends its first chunk when its
		// first file is recorded, seconds later. The idle rule bounds it.
		start.Stop()
	}
	rule := newIdleRule(cfg)
	idle := time.NewTimer(rule.timeout)
	defer idle.Stop()
	progress := func() {
		if rule.progressed(ps.p.Published()) {
			idle.Reset(rule.timeout)
		}
	}
	file := time.NewTimer(time.Hour)
	file.Stop()
	defer file.Stop()
	for {
		select {
		case m := <-msgs:
			if m.err != nil {
				return ps.readError(m.err)
			}
			var ce *closeErr
			if ps.legacy {
				ce = ps.legacyMessage(m)
				if len(ps.files.buf) > 0 {
					file.Reset(cfg.legacyFileTimeout)
				} else {
					file.Stop()
				}
			} else {
				ce = ps.message(m)
			}
			if ce != nil {
				return ce
			}
			if ps.started {
				start.Stop()
			}
			progress()
			next <- struct{}{}
		case <-file.C:
			if f := ps.files.flush(); f != nil {
				ps.held.release()
				if err := ps.p.publishLegacyFile(f); err != nil {
					return closeFor(err)
				}
				progress()
			}
		case <-ps.p.done: // ended from outside: Hub.CloseStream, Shutdown
			return closeFor(ps.p.endErr())
		case <-start.C:
			return closeWith(websocket.StatusPolicyViolation, "no start message within %v", cfg.startTimeout)
		case <-idle.C:
			return closeWith(websocket.StatusPolicyViolation, "idle: %s", rule.reason())
		}
	}
}

// readError says how to end after a failed read: a peer's close needs no
// answer; too big a message was answered with 1009 by the websocket package.
func (ps *pubSession) readError(err error) *closeErr {
	if websocket.CloseStatus(err) != -1 || errors.Is(err, websocket.ErrMessageTooBig) {
		return nil
	}
	if errors.Is(err, ErrOverBudget) {
		return closeFor(err)
	}
	if ps.hub.shuttingDown() {
		return closeWith(websocket.StatusGoingAway, "hub shutting down")
	}
	return nil
}

// message handles one protocol v1 message from a publisher.
func (ps *pubSession) message(m inMessage) *closeErr {
	var ce *closeErr
	if m.typ == websocket.MessageBinary {
		ce = ps.binary(m.data, m.more)
	} else {
		ce = ps.control(m.data)
	}
	if ce == nil {
		ps.sendStats()
	}
	return ce
}

// binary handles media bytes: the WebM stream, or a declared segment's.
func (ps *pubSession) binary(b []byte, more bool) *closeErr {
	switch {
	case !ps.started:
		return closeWith(websocket.StatusProtocolError, "binary message before start")
	case ps.mode == ModeStream:
		// Whole elements wait for the rest of a burst of messages, not for
		// a message that has not come yet (Publisher.Write, coalescing).
		if _, err := ps.p.write(b, more); err != nil {
			return closeFor(err)
		}
		return nil
	case ps.seg == nil:
		return closeWith(websocket.StatusProtocolError, "binary message without a segment declaration")
	case len(ps.seg.data)+len(b) > cap(ps.seg.data):
		return closeWith(websocket.StatusProtocolError, "segment bytes beyond the declared size %d", cap(ps.seg.data))
	}
	ps.seg.data = append(ps.seg.data, b...)
	if !ps.seg.complete() {
		return nil
	}
	seg := ps.seg.segment()
	ps.seg = nil
	ps.held.release() // the stream counts what it keeps of it
	if err := ps.p.WriteSegment(seg); err != nil {
		return closeFor(err)
	}
	return nil
}

// control handles a JSON control message.
func (ps *pubSession) control(b []byte) *closeErr {
	msg, err := parseMessage(b)
	if err != nil {
		return closeWith(websocket.StatusInvalidFramePayloadData, "%v", err)
	}
	switch msg.Type {
	case "start":
		return ps.start(msg)
	case "segment":
		return ps.declare(msg)
	case "end":
		if d := ps.seg; d != nil {
			return closeWith(websocket.StatusProtocolError, "end inside a segment (%d of %d bytes)", len(d.data), cap(d.data))
		}
		return closeWith(websocket.StatusNormalClosure, "end")
	}
	return closeWith(websocket.StatusProtocolError, "unknown message type %q", msg.Type)
}

// start begins the session in the mode the publisher asks for.
func (ps *pubSession) start(msg message) *closeErr {
	if ps.started {
		return closeWith(websocket.StatusProtocolError, "start sent twice")
	}
	mode := msg.Mode
	if mode == "" {
		mode = ModeStream
	}
	switch {
	case mode != ModeStream && mode != ModeSegments:
		return closeWith(websocket.StatusProtocolError, "start: unknown mode %q: want %q or %q", msg.Mode, ModeStream, ModeSegments)
	case msg.MIME == "" && mode == ModeSegments:
		return closeWith(websocket.StatusProtocolError, "start: segments mode needs a mime")
	case !validMIME(msg.MIME):
		return closeWith(websocket.StatusInvalidFramePayloadData, "start: bad mime %q", msg.MIME)
	}
	ps.started, ps.mode = true, mode
	if err := ps.p.begin(msg.MIME, mode == ModeSegments); err != nil {
		return closeFor(err)
	}
	return nil
}

// declare takes a segments-mode segment declaration, reserving its bytes
// against the memory budget.
func (ps *pubSession) declare(msg message) *closeErr {
	cfg := &ps.hub.cfg
	switch {
	case !ps.started:
		return closeWith(websocket.StatusProtocolError, "segment before start")
	case ps.mode != ModeSegments:
		return closeWith(websocket.StatusProtocolError, "segment message in stream mode")
	case ps.seg != nil:
		return closeWith(websocket.StatusProtocolError, "segment declared before the previous one was complete (%d of %d bytes)", len(ps.seg.data), cap(ps.seg.data))
	case msg.Size == nil || *msg.Size == 0:
		return closeWith(websocket.StatusProtocolError, "segment without a size")
	case *msg.Size > int64(cfg.maxSegmentBytes):
		return closeWith(websocket.StatusMessageTooBig, "segment of %d bytes: the limit is %d", *msg.Size, cfg.maxSegmentBytes)
	case msg.Init && *msg.Size > int64(cfg.maxInitBytes):
		return closeWith(websocket.StatusMessageTooBig, "init segment of %d bytes: the limit is %d", *msg.Size, cfg.maxInitBytes)
	}
	size := int(*msg.Size)
	if err := ps.held.resize(size, "a declared segment"); err != nil {
		return closeFor(err)
	}
	ps.seg = &declaredSegment{init: msg.Init, keyframe: msg.Keyframe, data: make([]byte, 0, size)}
	return nil
}

// validMIME accepts printable ASCII of reasonable length.
func validMIME(s string) bool {
	if len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// sendStats tells a v1 publisher its subscriber count when it changed, at
// most once a second.
func (ps *pubSession) sendStats() {
	n := ps.p.Subscribers()
	now := time.Now()
	if (n == ps.statsSent && !ps.statsAt.IsZero()) || now.Sub(ps.statsAt) < time.Second {
		return
	}
	ps.statsSent, ps.statsAt = n, now
	b := fmt.Appendf(nil, `{"type":"stats","subscribers":%d}`, n)
	ctx, cancel := context.WithTimeout(ps.c.ctx, ps.hub.cfg.writeTimeout)
	defer cancel()
	ps.c.conn.Write(ctx, websocket.MessageText, b)
}
