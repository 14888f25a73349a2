package relay

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// The write path of a subscriber connection. coder/websocket writes every
// frame (it is the only writer of frames: its framing and close state stay
// its own) into the bufio.Writer it takes over from the hijacked connection.
// For subscribers the hub hands it small buffers instead of net/http's two
// 4 KB ones, and puts a corkConn under the writer: between cork and uncork
// the frames of a whole batch of queued segments are gathered and go out in
// one writev. Segment data is never copied: bufio passes a payload larger
// than its free space through to the corkConn, which keeps a reference to it
// (segment data is immutable); only frame headers, JSON headers and the few
// payload bytes that fill up bufio's small buffer are copied.
const (
	// subReadBuffer: a subscriber sends nothing but pongs and a close frame
	// (the read limit is 4096, and a longer message is read in pieces).
	subReadBuffer = 256
	// subWriteBuffer holds a frame header with a JSON header, or a whole
	// control frame (at most 2 + 125 bytes from a server).
	subWriteBuffer = 128
	// corkCopyMax: corked writes up to this size are copied (bufio reuses
	// its buffer, and the writer its JSON header); larger ones can only be
	// segment data, kept by reference.
	corkCopyMax = 512
	// Bounds of one batch: segments, and bytes of segment data.
	batchSegments = 32
	batchBytes    = 512 << 10
	// corkScratch is the scratch space of a batch, which also ends it when
	// full: about 8 segments' headers and copied bytes (each under 2 ×
	// subWriteBuffer), plenty to amortize the writev. A writer whose socket
	// is full holds its batch while it waits, so batches are kept small.
	corkScratch = 2 << 10
)

// corkConn is a subscriber's hijacked connection as coder/websocket sees it.
type corkConn struct {
	net.Conn
	timeout time.Duration // bounds every write (the hub's write timeout)
	// limit, in Unix nanoseconds (0: none), is a deadline no write may
	// outlast: the close handshake's (SetDeadline).
	limit atomic.Int64

	mu       sync.Mutex // held for a write, and for the cork state
	deadline time.Time  // the write deadline set last
	corked   bool
	batch    *corkBatch // while corked
}

// corkBatch is what a corked connection gathers: pooled, so that an idle
// subscriber holds none and a busy one allocates nothing per batch.
type corkBatch struct {
	scratch []byte
	bufs    net.Buffers
	iov     net.Buffers // what WriteTo consumes
}

var corkBatches = sync.Pool{New: func() any {
	return &corkBatch{scratch: make([]byte, 0, corkScratch), bufs: make(net.Buffers, 0, 32)}
}}

// Write writes p at once, or adds it to the batch when corked.
func (w *corkConn) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.corked {
		w.setWriteDeadline()
		return w.Conn.Write(p)
	}
	b := w.batch
	switch {
	case len(p) > corkCopyMax:
		b.bufs = append(b.bufs, p)
		return len(p), nil
	case len(b.scratch)+len(p) > cap(b.scratch):
		// Never on the writer's path (full ends a batch first); control
		// frames of another goroutine may come here.
		b.bufs = append(b.bufs, bytes.Clone(p))
		return len(p), nil
	}
	start := len(b.scratch)
	b.scratch = append(b.scratch, p...)
	if n := len(b.bufs); n > 0 && sameEnd(b.bufs[n-1], b.scratch[:start]) {
		b.bufs[n-1] = b.scratch[start-len(b.bufs[n-1]) : len(b.scratch) : len(b.scratch)]
	} else {
		b.bufs = append(b.bufs, b.scratch[start:len(b.scratch):len(b.scratch)])
	}
	return len(p), nil
}

// sameEnd reports whether a ends where b ends, in the same array: then the
// bytes appended after b extend a, and the two go out as one iovec.
func sameEnd(a, b []byte) bool {
	return len(a) > 0 && len(b) > 0 && len(a) <= len(b) && &a[len(a)-1] == &b[len(b)-1]
}

// full reports whether the batch has no room for another segment's copied
// bytes. Only the writer, between cork and uncork, calls it.
func (w *corkConn) full() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return cap(w.batch.scratch)-len(w.batch.scratch) < 2*subWriteBuffer+corkCopyMax
}

// cork makes writes gather until uncork.
func (w *corkConn) cork() {
	w.mu.Lock()
	w.corked = true
	w.batch = corkBatches.Get().(*corkBatch)
	w.mu.Unlock()
}

// uncork writes what was gathered, in one writev when the connection
// supports it, within the write timeout.
func (w *corkConn) uncork() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.corked = false
	b := w.batch
	w.batch = nil
	var err error
	if len(b.bufs) > 0 {
		w.setWriteDeadline()
		b.iov = b.bufs
		_, err = b.iov.WriteTo(w.Conn)
	}
	clear(b.bufs[:cap(b.bufs)]) // keep no segment alive from the pool
	b.bufs, b.iov, b.scratch = b.bufs[:0], nil, b.scratch[:0]
	corkBatches.Put(b)
	return err
}

// setWriteDeadline bounds the next write by the timeout and the limit.
// Setting a deadline re-arms a runtime timer, which costs more than a
// writev's framing: the one set last is kept while it leaves the write at
// least 7/8 of the timeout. Caller holds mu.
func (w *corkConn) setWriteDeadline() {
	limit := w.limit.Load()
	now := time.Now() // monotonic: a step of the wall clock does not fool the check
	if limit == 0 && w.deadline.Sub(now) >= w.timeout-w.timeout/8 {
		return
	}
	d := now.Add(w.timeout)
	if limit != 0 && limit < d.UnixNano() {
		d = time.Unix(0, limit)
	}
	w.Conn.SetWriteDeadline(d)
	w.deadline = d
	if w.limit.Load() != limit { // a close set its deadline meanwhile
		w.setWriteDeadline()
	}
}

// SetDeadline is the close handshake's: every write from now on ends by t.
func (w *corkConn) SetDeadline(t time.Time) error {
	w.limit.Store(t.UnixNano())
	return w.Conn.SetDeadline(t)
}

// smallHijack, given to websocket.Accept for a subscriber, hands it small
// buffers on a corkConn instead of net/http's (bytes the peer sent early are
// kept: Accept carries over what the reader has buffered).
func smallHijack(w http.ResponseWriter, timeout time.Duration) (*corkConn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, nil, err
	}
	cc := &corkConn{Conn: conn, timeout: timeout}
	var br *bufio.Reader
	if n := brw.Reader.Buffered(); n > 0 {
		early, _ := brw.Reader.Peek(n)
		br = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(early)), cc), max(subReadBuffer, n))
		br.Peek(n) // into the buffer, where Accept looks for it
	} else {
		br = bufio.NewReaderSize(cc, subReadBuffer)
	}
	return cc, bufio.NewReadWriter(br, bufio.NewWriterSize(cc, subWriteBuffer)), nil
}
