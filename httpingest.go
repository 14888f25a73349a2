package relay

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// ingestReadBytes is the buffer an HTTP publisher's body is read into, one
// per session, counted against the memory budget. It is the size of
// ffmpeg's own write buffer, so a read takes what one write sent.
const ingestReadBytes = 32 << 10

// serveIngest runs a publisher session fed by a request body: PUT or POST
// /{stream}/publish with a WebM or fragmented MP4 byte stream, chunked or
// with a length, as ffmpeg's `-f webm -method PUT` or `-f mp4 -movflags
// frag_keyframe+empty_moov+default_base_moof -method PUT` sends it; the
// first bytes say which container (Publisher.Write: the Content-Type is not
// read, ffmpeg sends application/octet-stream). The body goes to Publisher.Write
// as it arrives (stream mode: segmenting and coalescing as for a WebSocket
// publisher), and the answer comes when the body ends: 200 with what was
// published, or the status of what went wrong (see ingestStatus). The
// session keeps its stream only while it publishes: less than
// WithPublisherMinBytes within WithPublisherIdleTimeout answers 408.
func (h *Hub) serveIngest(w http.ResponseWriter, r *http.Request, p *Publisher) {
	p.announce(r)
	rc := http.NewResponseController(w)
	status, err := h.ingest(r, rc, p)
	if err == nil {
		p.Close()
	} else {
		p.end(err)
	}
	// The answer comes after the whole body: the server's WriteTimeout,
	// which counts from the request's start, may have passed.
	rc.SetWriteDeadline(time.Now().Add(h.cfg.writeTimeout))
	if err == nil {
		msg := fmt.Sprintf("relay: stream %q: published %d bytes", p.Stream(), p.Published())
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		fmt.Fprintln(w, msg)
	} else {
		leaveBody(w, r)
		httpError(w, status, err.Error())
	}
	h.emitEnd(p, nil)
}

// ingest reads r's body into p until it ends, and returns the answer's
// status and, unless the body ended well, the error that ended the session.
func (h *Hub) ingest(r *http.Request, rc *http.ResponseController, p *Publisher) (int, error) {
	cfg := &h.cfg
	held := holding{b: &h.budget}
	defer held.release()
	if err := held.resize(ingestReadBytes, "an HTTP publisher's read buffer"); err != nil {
		return statusOf(err), err
	}
	buf := make([]byte, ingestReadBytes)

	// A read waits at most until the idle deadline (publish_idle.go); the
	// deadline moves on each time the session made progress. When the
	// session ends from outside (Shutdown, Hub.CloseStream), a deadline in
	// the past ends the read at once. The deadlines replace the server's
	// ReadTimeout, which would cut a live body.
	ended := afterClose(p.done, func() { rc.SetReadDeadline(time.Unix(1, 0)) })
	defer ended()
	rule := newIdleRule(cfg)
	idleAt := time.Now().Add(rule.timeout)
	for {
		if err := rc.SetReadDeadline(idleAt); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return http.StatusInternalServerError, fmt.Errorf("relay: HTTP publisher: setting the read deadline: %w", err)
		}
		if isClosed(p.done) { // the deadline above may have replaced the one that ends the read
			return ingestEnded(p)
		}
		n, rerr := r.Body.Read(buf)
		if n > 0 {
			if _, err := p.Write(buf[:n]); err != nil {
				return ingestStatus(err), err
			}
			if rule.progressed(p.Published()) {
				idleAt = time.Now().Add(rule.timeout)
			}
		}
		switch {
		case rerr == nil:
		case rerr == io.EOF:
			return http.StatusOK, nil
		case isClosed(p.done):
			return ingestEnded(p)
		case errors.Is(rerr, os.ErrDeadlineExceeded):
			return http.StatusRequestTimeout, fmt.Errorf("%w: %s", ErrIdle, rule.reason())
		default:
			// The client left mid-body (ffmpeg killed): the session ends
			// like a WebSocket publisher's that dropped its connection.
			return http.StatusBadRequest, fmt.Errorf("relay: HTTP publisher's body ended early: %w", rerr)
		}
	}
}

// ingestEnded is the answer to a session ended from outside.
func ingestEnded(p *Publisher) (int, error) {
	err := p.endErr()
	if errors.Is(err, ErrClosedByApp) {
		return http.StatusForbidden, err
	}
	return statusOf(err), err
}

// ingestStatus maps an error of Publisher.Write to an HTTP status: 400 for
// a body that is neither WebM nor MP4 or does not parse, 413 over a size limit, 503 over the memory
// budget or shutting down.
func ingestStatus(err error) int {
	switch {
	case errors.Is(err, ErrBadWebM), errors.Is(err, ErrBadMP4), errors.Is(err, ErrBadData), errors.Is(err, errNoInit):
		return http.StatusBadRequest
	case errors.Is(err, ErrSegmentTooBig):
		return http.StatusRequestEntityTooLarge
	}
	return statusOf(err)
}

// isClosed reports whether ch is closed.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// afterClose runs f on a goroutine of its own once done is closed, unless
// the returned stop is called first; stop waits for that goroutine.
func afterClose(done <-chan struct{}, f func()) (stop func()) {
	quit := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		select {
		case <-done:
			f()
		case <-quit:
		}
	}()
	return func() {
		close(quit)
		<-exited
	}
}
