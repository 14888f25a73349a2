package relay

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// A Hub relays streams from publishers to subscribers. It is an
// http.Handler (see ServeHTTP) and can also be used in-process through
// Publish and Subscribe. The zero Hub is not usable: create one with NewHub.
type Hub struct {
	cfg config

	budget budget // bytes held for publishers (WithMemoryBudget)
	ev     events // for WithEvents
	lastID atomic.Uint64

	refusedMu sync.Mutex
	refusedBy map[int]uint64 // refused requests by HTTP status

	mu      sync.Mutex
	streams map[string]*stream
	live    int                  // streams with a publisher
	nsubs   int                  // subscribers of all streams, recorders left out
	conns   map[*wsConn]struct{} // open WebSocket connections (wsconn.go)
	closed  bool

	wg sync.WaitGroup // WebSocket connection goroutines

	bridge atomic.Pointer[bridgeRef] // SetBridge (bridge.go)

	// Recorders write until this ends: when Shutdown's context is done
	// before they wrote what they have queued (recorder.go).
	recording     context.Context
	stopRecording context.CancelFunc

	bytesIn, bytesOut, segments, drops, slowClosed atomic.Uint64
}

// NewHub returns a Hub configured by opts.
func NewHub(opts ...Option) *Hub {
	h := &Hub{
		cfg:     newConfig(opts),
		streams: make(map[string]*stream),
		conns:   make(map[*wsConn]struct{}),
	}
	h.budget.limit = h.cfg.memoryBudget
	h.recording, h.stopRecording = context.WithCancel(context.Background())
	return h
}

// Publish takes the stream name for a new publisher session. mime is the
// stream's media type (e.g. "video/webm;codecs=vp9,opus"); when it is "",
// it is read from the first WebM init written. The session ends with
// Publisher.Close, or when ctx is done.
//
// Errors: ErrBadStreamName, ErrStreamBusy (the stream has a publisher),
// ErrTooManyStreams, ErrOverBudget, ErrHubClosed.
func (h *Hub) Publish(ctx context.Context, name, mime string) (*Publisher, error) {
	return h.openPublisher(ctx, name, mime, false)
}

// openPublisher is Publish, or PublishRelayed when relayed.
func (h *Hub) openPublisher(ctx context.Context, name, mime string, relayed bool) (*Publisher, error) {
	p, err := h.claimAs(name, relayed)
	if err != nil {
		return nil, err
	}
	if !relayed { // the publishing node reports the session
		p.announce(nil)
	}
	if err := p.begin(mime, true); err != nil {
		p.Close()
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { p.end(ctx.Err()) })
	p.mu.Lock()
	p.stop = stop
	p.mu.Unlock()
	return p, nil
}

// claim makes a new publisher the owner of stream name. Its session is not
// announced (EventPublish) until the caller knows it really started.
func (h *Hub) claim(name string) (*Publisher, error) { return h.claimAs(name, false) }

// claimAs is claim; a relayed publisher (PublishRelayed) is not claimed
// through the hub's Bridge.
func (h *Hub) claimAs(name string, relayed bool) (*Publisher, error) {
	record := h.records(name, relayed)
	release, err := h.bridgeClaim(name, relayed)
	if err != nil {
		return nil, err
	}
	st, err := h.lockStream(name)
	if err != nil {
		release()
		return nil, err
	}
	switch {
	case st.pub != nil:
		err = ErrStreamBusy
	case h.live >= h.cfg.maxStreams:
		err = ErrTooManyStreams
	case h.budget.full():
		err = ErrOverBudget
	}
	if err != nil {
		h.unlockStream(st)
		release()
		return nil, err
	}
	p := &Publisher{hub: h, stream: st, held: holding{b: &h.budget}, done: make(chan struct{}), relayed: relayed}
	p.session = session{id: h.lastID.Add(1), role: RolePublish}
	st.pub = p
	st.pubSince = time.Now()
	h.live++
	if record {
		h.joinRecorder(st, p)
	}
	h.unlockStream(st)
	return p, nil
}

// lockStream returns stream name, created if need be, with h.mu and the
// stream's mu held: release them with unlockStream. A stream is kept while
// it has a publisher or subscribers, so the publisher and subscriber limits
// bound the streams.
func (h *Hub) lockStream(name string) (*stream, error) {
	if !validStreamName(name) {
		return nil, ErrBadStreamName
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrHubClosed
	}
	st := h.streams[name]
	if st == nil {
		st = &stream{hub: h, name: name, held: holding{b: &h.budget}}
		h.streams[name] = st
	}
	st.mu.Lock()
	return st, nil
}

// unlockStream releases what lockStream took, forgetting the stream if
// nothing holds it.
func (h *Hub) unlockStream(st *stream) {
	if st.idle() && h.streams[st.name] == st {
		delete(h.streams, st.name)
	}
	st.mu.Unlock()
	h.mu.Unlock()
}

// unpublish ends p's session: subscribers get KindEnd if they got Start.
// It runs once per publisher (Publisher.end).
func (h *Hub) unpublish(p *Publisher, started bool) {
	st := p.stream
	if started {
		st.publish(p, &Segment{Kind: KindEnd}) // fails only if p no longer owns st
	}
	h.mu.Lock()
	st.mu.Lock()
	owned := st.pub == p
	if owned {
		st.pub = nil
		h.live--
		st.start = nil
		st.setInit(nil)
		st.resetGOP(false)
		h.detachRecorder(st, started)
	}
	h.unlockStream(st)
	if owned && !p.relayed {
		if c := h.bridgeOf(); c != nil {
			c.Release(st.name)
		}
	}
}

// Subscribe joins stream name, which need not have a publisher yet. A
// subscriber that joins a live stream first receives the session's Start,
// its init and the media since the last keyframe, so it can show a picture
// at once. It stays across publisher sessions (KindEnd, then KindStart when
// the next publisher comes) until Subscriber.Close, or until ctx is done.
//
// Errors: ErrBadStreamName, ErrTooManySubscribers, ErrHubClosed.
func (h *Hub) Subscribe(ctx context.Context, name string) (*Subscriber, error) {
	s, err := h.subscribe(name, false)
	if err != nil {
		return nil, err
	}
	s.announce(nil)
	stop := context.AfterFunc(ctx, func() { s.end(ctx.Err()) })
	s.mu.Lock()
	s.stop = stop
	s.mu.Unlock()
	return s, nil
}

// subscribe joins a new subscriber to stream name; conn says it is a
// connection's (Subscriber.conn). It is not announced (EventSubscribe)
// until the caller knows it really started.
func (h *Hub) subscribe(name string, conn bool) (*Subscriber, error) {
	st, err := h.lockStream(name)
	if err != nil {
		return nil, err
	}
	if h.nsubs >= h.cfg.maxSubscribers || (h.cfg.maxSubscribersPerStream > 0 && st.viewers() >= h.cfg.maxSubscribersPerStream) {
		h.unlockStream(st)
		return nil, ErrTooManySubscribers
	}
	s := &Subscriber{hub: h, stream: st, limit: h.cfg.queueBytes, notify: make(chan struct{}, 1), conn: conn}
	if conn {
		s.maxLag = h.cfg.subscriberLag
	}
	s.session = session{id: h.lastID.Add(1), role: RoleSubscribe}
	st.join(s)
	h.nsubs++
	first := st.viewers() == 1
	h.unlockStream(st)
	if first {
		h.bridgeInterest(name)
	}
	return s, nil
}

// leave removes an ended subscriber from its stream.
func (h *Hub) leave(s *Subscriber) {
	st := s.stream
	h.mu.Lock()
	st.mu.Lock()
	last := false
	if st.remove(s) && s != st.rec { // a recorder is no viewer: not in nsubs
		if !s.conn {
			h.nsubs--
		}
		last = st.viewers() == 0
	}
	h.unlockStream(st)
	if last {
		h.bridgeInterest(st.name)
	}
}

// connGone gives back the subscriber slot of a connection's subscriber
// once the connection is gone (Subscriber.conn). Its handler calls it once.
func (h *Hub) connGone() {
	h.mu.Lock()
	h.nsubs--
	h.mu.Unlock()
}

// CloseStream ends stream name for good: its publisher and every subscriber
// are closed with ErrClosedByApp and reason (WebSocket close code 4403, so
// relay.js does not reconnect; in-process, Next and the Publisher's methods
// return the error). Use it to end a banned user's stream; WithAuthorize
// keeps them from coming back. It reports whether the stream existed.
func (h *Hub) CloseStream(name, reason string) bool {
	h.mu.Lock()
	st := h.streams[name]
	var pub *Publisher
	var subs []*Subscriber
	if st != nil {
		st.mu.Lock()
		pub = st.pub
		subs = st.appendViewers(subs)
		st.mu.Unlock()
	}
	h.mu.Unlock()
	if st == nil {
		return false
	}
	err := closedByApp(reason)
	for _, s := range subs {
		s.end(err) // before the publisher's End, which would reach them first
	}
	if pub != nil {
		pub.end(err)
	}
	return true
}

// CloseSubscriber closes the subscriber whose ID is id (Subscriber.ID,
// Event.ID) with ErrClosedByApp and reason (WebSocket close code 4403). It
// reports whether there was such a subscriber.
func (h *Hub) CloseSubscriber(id uint64, reason string) bool {
	var found *Subscriber
	h.mu.Lock()
	for _, st := range h.streams {
		st.mu.Lock()
		for _, s := range st.subs {
			if s.session.id == id {
				found = s
			}
		}
		st.mu.Unlock()
		if found != nil {
			break
		}
	}
	h.mu.Unlock()
	if found == nil {
		return false
	}
	found.end(closedByApp(reason))
	return true
}

func closedByApp(reason string) error {
	if reason == "" {
		return ErrClosedByApp
	}
	return fmt.Errorf("%w: %s", ErrClosedByApp, reason)
}

func (h *Hub) countRefused(status int) {
	h.refusedMu.Lock()
	if h.refusedBy == nil {
		h.refusedBy = make(map[int]uint64)
	}
	h.refusedBy[status]++
	h.refusedMu.Unlock()
}

// Shutdown stops the hub: new requests get 503 and ErrHubClosed, every
// WebSocket is sent a 1001 ("going away") close frame, in-process publishers
// and subscribers end with ErrHubClosed. A connection whose socket is full,
// or whose peer does not answer the close within 250 ms, is dropped without
// a handshake, so Shutdown returns promptly whatever the clients do. If ctx
// is done first, the remaining connections are dropped at once and ctx's
// error is returned. It waits for the recordings of WithRecording to write
// what they have queued and end their files; if ctx is done first, they
// end their files at once with what they wrote. It does not shut down the
// http.Server the hub is mounted on.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	h.closed = true
	var pubs []*Publisher
	var subs []*Subscriber
	for _, st := range h.streams {
		st.mu.Lock()
		if st.pub != nil {
			pubs = append(pubs, st.pub)
		}
		subs = st.appendViewers(subs)
		st.mu.Unlock()
	}
	h.mu.Unlock()

	h.closeConns(false)
	for _, p := range pubs {
		p.end(ErrHubClosed)
	}
	for _, s := range subs {
		s.end(ErrHubClosed)
	}

	done := make(chan struct{})
	go func() {
		h.wg.Wait()
		close(done)
	}()
	grace := time.NewTimer(shutdownGrace)
	defer grace.Stop()
	select {
	case <-done:
		return nil
	case <-grace.C:
	case <-ctx.Done():
	}
	h.closeConns(true) // full sockets and silent peers
	select {
	case <-done:
	case <-ctx.Done():
		h.stopRecording() // their files end with what they wrote
		<-done
	}
	return ctx.Err()
}

// shuttingDown reports whether Shutdown has begun.
func (h *Hub) shuttingDown() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closed
}
