package relay

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// closeGrace is how long a close handshake may take before the connection
// is dropped: a peer whose socket is full, or that does not answer a close
// frame, must not hold a goroutine for long. Shutdown waits shutdownGrace.
const (
	closeGrace    = time.Second
	shutdownGrace = 250 * time.Millisecond
)

// wsConn is one upgraded connection of the hub.
type wsConn struct {
	hub  *Hub
	conn *websocket.Conn
	// netConn is the hijacked connection under conn: closing it (drop)
	// ends whatever conn is doing at once, a close handshake included.
	netConn net.Conn
	// ctx is the parent of every read and write on conn; drop cancels it.
	ctx     context.Context
	cancel  context.CancelFunc
	closing sync.Once
	closed  chan struct{} // closed when the connection is closed
}

// drop ends the connection without a close handshake.
func (c *wsConn) drop() {
	c.cancel()
	if c.netConn != nil {
		c.netConn.Close()
	}
}

// hijackRecorder keeps the net.Conn that websocket.Accept hijacks.
type hijackRecorder struct {
	http.ResponseWriter
	conn net.Conn
}

func (w *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	w.conn = conn
	return conn, brw, err
}

// closeErr is how a connection ends: a close code and a reason.
type closeErr struct {
	code   websocket.StatusCode
	reason string
}

func closeWith(code websocket.StatusCode, format string, args ...any) *closeErr {
	return &closeErr{code: code, reason: fmt.Sprintf(format, args...)}
}

// finish closes the connection with ce (or, when ce is nil because the peer
// is gone, without a handshake) unless a close began already, and waits
// until the connection is closed.
func (c *wsConn) finish(ce *closeErr) {
	c.closing.Do(func() { c.close(ce) })
	<-c.closed
}

// closeAsync starts closing the connection with ce without waiting, on a
// goroutine the hub waits for. It does nothing if a close began already.
func (c *wsConn) closeAsync(ce *closeErr) {
	c.closing.Do(func() {
		c.hub.wg.Add(1)
		go func() {
			defer c.hub.wg.Done()
			c.close(ce)
		}()
	})
}

// close sends ce and waits for the peer's answer for closeGrace at most,
// then drops the connection.
func (c *wsConn) close(ce *closeErr) {
	defer close(c.closed)
	defer c.drop()
	if ce == nil {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.conn.Close(ce.code, clip(ce.reason))
	}()
	t := time.NewTimer(closeGrace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		c.drop() // a full socket or a silent peer: Close returns now
		<-done
	}
}

// done forgets the connection; its goroutine is over.
func (c *wsConn) done() {
	c.hub.mu.Lock()
	delete(c.hub.conns, c)
	c.hub.mu.Unlock()
	c.hub.wg.Done()
}

// clip shortens a close reason to what fits a close frame (123 bytes).
func clip(s string) string {
	const limit = 123
	if len(s) <= limit {
		return s
	}
	s = s[:limit]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// closeFor maps an error from a Publisher to a close code.
func closeFor(err error) *closeErr {
	switch {
	case errors.Is(err, ErrBadWebM):
		return closeWith(websocket.StatusInvalidFramePayloadData, "%v", err)
	case errors.Is(err, ErrSegmentTooBig), errors.Is(err, ErrOverBudget):
		return closeWith(websocket.StatusMessageTooBig, "%v", err)
	case errors.Is(err, errNoInit):
		return closeWith(websocket.StatusProtocolError, "%v", err)
	case errors.Is(err, ErrHubClosed):
		return closeWith(websocket.StatusGoingAway, "hub shutting down")
	case errors.Is(err, ErrTooSlow):
		return closeWith(websocket.StatusTryAgainLater, "too slow")
	}
	return closeWith(websocket.StatusInternalError, "%v", err)
}

// inMessage is one message handed from a connection's reader goroutine.
type inMessage struct {
	typ  websocket.MessageType
	data []byte // valid until the reader is told to go on
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
	c, err := h.accept(w, r)
	if err != nil {
		p.Close()
		return
	}
	defer c.done()
	p.announce()
	c.conn.SetReadLimit(int64(h.cfg.maxMessageBytes))
	log := h.cfg.logger.With("stream", p.Stream(), "role", "publish", "remote", r.RemoteAddr, "legacy", legacy)
	log.Debug("segrelay: publisher connected")

	msgs := make(chan inMessage)
	next := make(chan struct{})
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
	if ce != nil && ce.code != websocket.StatusNormalClosure {
		log.Info("segrelay: publisher closed", "code", int(ce.code), "reason", ce.reason)
	}
	c.finish(ce)
	log.Debug("segrelay: publisher gone")
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
		if err == nil {
			err = held.resize(buf.Cap(), "a publisher's read buffer")
		}
		select {
		case msgs <- inMessage{typ: typ, data: buf.Bytes(), err: err}:
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

	// segments mode: the declared segment being received
	declared bool
	segSize  int
	segInit  bool
	segKey   bool
	segData  []byte

	files legacyAssembler
	held  holding // segData or the legacy file being assembled

	statsSent int
	statsAt   time.Time
}

// run handles messages until the connection ends. It returns how to close
// it, or nil when the peer closed it already.
//
// A v1 publisher must send its start within the start timeout; every
// publisher must publish at least the minimum bytes within every idle timeout:
// messages that publish nothing (a trickle of tiny chunks, stats, a segment
// sent byte by byte) do not keep a stream's name.
func (ps *pubSession) run(msgs <-chan inMessage, next chan<- struct{}) *closeErr {
	cfg := &ps.hub.cfg
	start := time.NewTimer(cfg.startTimeout)
	defer start.Stop()
	if ps.legacy {
		// No start message: a legacy page sends its first chunk when its
		// first file is recorded, seconds later. The idle rule bounds it.
		start.Stop()
	}
	idle := time.NewTimer(cfg.publisherIdleTimeout)
	defer idle.Stop()
	var progressAt int64 // p.Published() when idle was last reset
	progress := func() {
		if n := ps.p.Published(); n-progressAt >= int64(cfg.publisherMinBytes) {
			progressAt = n
			idle.Reset(cfg.publisherIdleTimeout)
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
				if err := ps.p.writeFile(f); err != nil {
					return closeFor(err)
				}
				progress()
			}
		case <-start.C:
			return closeWith(websocket.StatusPolicyViolation, "no start message within %v", cfg.startTimeout)
		case <-idle.C:
			return closeWith(websocket.StatusPolicyViolation, "idle: published less than %d bytes in %v", cfg.publisherMinBytes, cfg.publisherIdleTimeout)
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
	if ps.hub.isClosed() {
		return closeWith(websocket.StatusGoingAway, "hub shutting down")
	}
	return nil
}

// message handles one protocol v1 message from a publisher.
func (ps *pubSession) message(m inMessage) *closeErr {
	maxSeg := ps.hub.cfg.maxSegmentBytes
	if m.typ == websocket.MessageBinary {
		switch {
		case !ps.started:
			return closeWith(websocket.StatusProtocolError, "binary message before start")
		case ps.mode == ModeStream:
			if _, err := ps.p.Write(m.data); err != nil {
				return closeFor(err)
			}
		case !ps.declared:
			return closeWith(websocket.StatusProtocolError, "binary message without a segment declaration")
		case len(ps.segData)+len(m.data) > ps.segSize:
			return closeWith(websocket.StatusProtocolError, "segment bytes beyond the declared size %d", ps.segSize)
		default:
			ps.segData = append(ps.segData, m.data...)
			if len(ps.segData) == ps.segSize {
				kind := KindMedia
				if ps.segInit {
					kind = KindInit
				}
				data := ps.segData
				ps.declared, ps.segData = false, nil
				ps.held.release() // the stream counts what it keeps of it
				if err := ps.p.WriteSegment(Segment{Kind: kind, Keyframe: ps.segKey, Data: data}); err != nil {
					return closeFor(err)
				}
			}
		}
		ps.sendStats()
		return nil
	}

	msg, err := parseMessage(m.data)
	if err != nil {
		return closeWith(websocket.StatusInvalidFramePayloadData, "%v", err)
	}
	switch msg.Type {
	case "start":
		if ps.started {
			return closeWith(websocket.StatusProtocolError, "start sent twice")
		}
		mode := msg.Mode
		if mode == "" {
			mode = ModeStream
		}
		if mode != ModeStream && mode != ModeSegments {
			return closeWith(websocket.StatusProtocolError, "start: unknown mode %q: want %q or %q", msg.Mode, ModeStream, ModeSegments)
		}
		if msg.MIME == "" && mode == ModeSegments {
			return closeWith(websocket.StatusProtocolError, "start: segments mode needs a mime")
		}
		if !validMIME(msg.MIME) {
			return closeWith(websocket.StatusInvalidFramePayloadData, "start: bad mime %q", msg.MIME)
		}
		ps.started, ps.mode = true, mode
		if err := ps.p.begin(msg.MIME); err != nil {
			return closeFor(err)
		}
	case "segment":
		switch {
		case !ps.started:
			return closeWith(websocket.StatusProtocolError, "segment before start")
		case ps.mode != ModeSegments:
			return closeWith(websocket.StatusProtocolError, "segment message in stream mode")
		case ps.declared:
			return closeWith(websocket.StatusProtocolError, "segment declared before the previous one was complete (%d of %d bytes)", len(ps.segData), ps.segSize)
		case msg.Size == nil || *msg.Size == 0:
			return closeWith(websocket.StatusProtocolError, "segment without a size")
		case *msg.Size > int64(maxSeg):
			return closeWith(websocket.StatusMessageTooBig, "segment of %d bytes: the limit is %d", *msg.Size, maxSeg)
		case msg.Init && *msg.Size > int64(ps.hub.cfg.maxInitBytes):
			return closeWith(websocket.StatusMessageTooBig, "init segment of %d bytes: the limit is %d", *msg.Size, ps.hub.cfg.maxInitBytes)
		}
		size := int(*msg.Size)
		if err := ps.held.resize(size, "a declared segment"); err != nil {
			return closeFor(err)
		}
		ps.declared = true
		ps.segSize, ps.segInit, ps.segKey = size, msg.Init, msg.Keyframe
		ps.segData = make([]byte, 0, size) // no append growth: the size is known
	case "end":
		if ps.declared {
			return closeWith(websocket.StatusProtocolError, "end inside a segment (%d of %d bytes)", len(ps.segData), ps.segSize)
		}
		return closeWith(websocket.StatusNormalClosure, "end")
	default:
		return closeWith(websocket.StatusProtocolError, "unknown message type %q", msg.Type)
	}
	ps.sendStats()
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

// legacyMessage handles one message of a legacy publisher: binary chunks
// of files. Text messages carry nothing in the legacy framing and are
// ignored.
func (ps *pubSession) legacyMessage(m inMessage) *closeErr {
	if m.typ != websocket.MessageBinary {
		return nil
	}
	err := ps.held.resize(len(ps.files.buf)+len(m.data), "a legacy file")
	var f []byte
	if err == nil {
		f, err = ps.files.add(m.data)
	}
	if err == nil {
		err = ps.held.resize(cap(ps.files.buf), "a legacy file")
	}
	if err == nil && f != nil {
		err = ps.p.writeFile(f)
	}
	if err != nil {
		return closeFor(err)
	}
	return nil
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

func (h *Hub) isClosed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closed
}

// serveSubscriber runs a subscriber connection: this goroutine writes
// segments, another reads (pongs, close frames, and anything the peer sends).
func (h *Hub) serveSubscriber(w http.ResponseWriter, r *http.Request, s *Subscriber, legacy bool) {
	c, err := h.accept(w, r)
	if err != nil {
		s.Close()
		return
	}
	defer c.done()
	s.announce()
	c.conn.SetReadLimit(4096)
	log := h.cfg.logger.With("stream", s.Stream(), "role", "subscribe", "remote", r.RemoteAddr, "legacy", legacy)
	log.Debug("segrelay: subscriber connected")

	ctx, cancel := context.WithCancel(c.ctx)
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		defer cancel()
		for {
			typ, _, err := c.conn.Read(ctx)
			if err != nil {
				return
			}
			// v1 subscribers may send text messages in a later version;
			// binary ones mean a confused peer. Legacy peers are ignored.
			if typ == websocket.MessageBinary && !legacy {
				c.closeAsync(closeWith(websocket.StatusProtocolError, "subscribers send no binary messages"))
				return
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
	if ce != nil && ce.code != websocket.StatusNormalClosure {
		log.Debug("segrelay: subscriber closed", "code", int(ce.code), "reason", ce.reason)
	}
	c.finish(ce)
	cancel()
	log.Debug("segrelay: subscriber gone")
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
// connection is gone.
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

// runLegacy writes standalone WebM files in the legacy framing: chunks of
// the chunk size, then a shorter (possibly empty) one.
func (sw *subWriter) runLegacy() *closeErr {
	ping := time.NewTimer(sw.hub.cfg.pingInterval)
	defer ping.Stop()
	files := legacyFiles{maxFile: sw.hub.cfg.maxSegmentBytes}
	chunk := sw.hub.cfg.legacyChunkSize
	sw.buf = make([]byte, 0, chunk)
	for {
		seg, ce, ok := sw.wait(ping)
		if !ok {
			return ce
		}
		if err := files.push(seg, sw.writeFile); err != nil {
			return nil
		}
		ping.Reset(sw.hub.cfg.pingInterval)
	}
}

// writeFile sends one file made of parts in legacy chunks.
func (sw *subWriter) writeFile(parts [][]byte) error {
	chunk := sw.hub.cfg.legacyChunkSize
	ctx, cancel := context.WithTimeout(sw.ctx, sw.hub.cfg.writeTimeout)
	defer cancel()
	sw.buf = sw.buf[:0]
	for _, p := range parts {
		for len(p) > 0 {
			n := min(chunk-len(sw.buf), len(p))
			sw.buf = append(sw.buf, p[:n]...)
			p = p[n:]
			if len(sw.buf) == chunk {
				if err := sw.c.conn.Write(ctx, websocket.MessageBinary, sw.buf); err != nil {
					return err
				}
				sw.buf = sw.buf[:0]
			}
		}
	}
	return sw.c.conn.Write(ctx, websocket.MessageBinary, sw.buf)
}
