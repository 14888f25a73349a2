package relay

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// closeGrace is how long a close handshake may take before the connection
// is dropped: a peer whose socket is full, or that does not answer a close
// frame, must not hold a goroutine for long. Shutdown waits shutdownGrace.
const (
	closeGrace    = 2 * time.Second
	shutdownGrace = 250 * time.Millisecond
)

// wsConn is one upgraded connection of the hub.
type wsConn struct {
	hub  *Hub
	conn *websocket.Conn
	// netConn is the hijacked connection under conn: closing it (drop)
	// ends whatever conn is doing at once, a close handshake included.
	netConn net.Conn
	// cork, for subscribers, is netConn: it gathers a batch's writes.
	cork *corkConn
	// ctx is the parent of every read and write on conn; drop cancels it.
	ctx     context.Context
	cancel  context.CancelFunc
	closing sync.Once
	closed  chan struct{} // closed when the connection is closed
	ending  atomic.Bool   // a close began: writers stop, so the close frame goes next

	// The close frame that ended the connection, for its end event: the
	// one the hub sent, or else the peer's.
	sent, received atomic.Pointer[closeErr]
}

// notePeerClose keeps the peer's close frame when err carries one.
func (c *wsConn) notePeerClose(err error) {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		c.received.CompareAndSwap(nil, &closeErr{code: ce.Code, reason: ce.Reason})
	}
}

// withCloseFrame fills in ev's close code and reason.
func (c *wsConn) withCloseFrame(ev Event) Event {
	ce := c.sent.Load()
	if ce == nil {
		ce = c.received.Load()
	}
	if ce != nil {
		ev.CloseCode, ev.Reason = int(ce.code), ce.reason
	}
	return ev
}

// accept upgrades the request. The origin was checked already.
func (h *Hub) accept(w http.ResponseWriter, r *http.Request, stream string, role Role) (*wsConn, error) {
	hw := &hijackRecorder{ResponseWriter: w, small: role == RoleSubscribe, timeout: h.cfg.writeTimeout}
	conn, err := websocket.Accept(hw, r, &websocket.AcceptOptions{
		Subprotocols:       []string{Subprotocol},
		InsecureSkipVerify: true,
	})
	if err != nil {
		// Accept answered already (e.g. 400 for a bad Sec-WebSocket-Version).
		h.refused(r, stream, role, hw.status, err)
		return nil, err
	}
	c := &wsConn{hub: h, conn: conn, netConn: hw.conn, cork: hw.cork, closed: make(chan struct{})}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		c.close(closeFor(ErrHubClosed))
		return nil, ErrHubClosed
	}
	h.conns[c] = struct{}{}
	h.wg.Add(1)
	h.mu.Unlock()
	return c, nil
}

// hijackRecorder keeps the net.Conn that websocket.Accept hijacks, or the
// status it answered with instead. With small set (subscribers), the
// connection is a corkConn with small buffers (cork.go).
type hijackRecorder struct {
	http.ResponseWriter
	small   bool
	timeout time.Duration
	conn    net.Conn
	cork    *corkConn
	status  int
}

func (w *hijackRecorder) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}

func (w *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.small {
		cc, brw, err := smallHijack(w.ResponseWriter, w.timeout)
		if err != nil {
			return nil, nil, err
		}
		w.conn, w.cork = cc, cc
		return cc, brw, nil
	}
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	w.conn = conn
	return conn, brw, err
}

// done forgets the connection; its goroutine is over.
func (c *wsConn) done() {
	c.hub.mu.Lock()
	delete(c.hub.conns, c)
	c.hub.mu.Unlock()
	c.hub.wg.Done()
}

// finish closes the connection with ce (or, when ce is nil because the peer
// is gone, without a handshake) unless a close began already, and waits
// until the connection is closed.
func (c *wsConn) finish(ce *closeErr) {
	c.closing.Do(func() {
		c.ending.Store(true)
		c.close(ce)
	})
	<-c.closed
}

// closeAsync starts closing the connection with ce without waiting, on a
// goroutine the hub waits for. It does nothing if a close began already.
func (c *wsConn) closeAsync(ce *closeErr) {
	c.closing.Do(func() {
		c.ending.Store(true)
		c.hub.wg.Add(1)
		go func() {
			defer c.hub.wg.Done()
			c.close(ce)
		}()
	})
}

// close sends ce and waits for the peer's answer for closeGrace at most,
// then drops the connection. The deadline on the hijacked connection makes
// whatever the handshake waits for (a full socket, a silent peer) fail in
// time, as for a refusal (refuse.go).
func (c *wsConn) close(ce *closeErr) {
	defer close(c.closed)
	defer c.drop()
	if ce == nil {
		return
	}
	c.sent.Store(ce)
	c.netConn.SetDeadline(time.Now().Add(closeGrace))
	c.conn.Close(ce.code, clip(ce.reason))
}

// drop ends the connection without a close handshake.
func (c *wsConn) drop() {
	c.cancel()
	c.netConn.Close()
}

// closeConns starts closing every open connection with 1001 (going away),
// or drops them all when now is true.
func (h *Hub) closeConns(now bool) {
	h.mu.Lock()
	conns := make([]*wsConn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		if now {
			c.drop()
		} else {
			c.closeAsync(closeFor(ErrHubClosed))
		}
	}
}
