package relay

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/coder/websocket"
)

// A Hub relays streams from publishers to subscribers. It is an
// http.Handler (see ServeHTTP) and can also be used in-process through
// Publish and Subscribe. The zero Hub is not usable: create one with NewHub.
type Hub struct {
	cfg config

	mu      sync.Mutex
	streams map[string]*stream
	conns   map[*wsConn]struct{}
	closed  bool

	wg sync.WaitGroup // WebSocket connection goroutines

	bytesIn, bytesOut, segments, drops, slowClosed atomic.Uint64
}

// NewHub returns a Hub configured by opts.
func NewHub(opts ...Option) *Hub {
	return &Hub{
		cfg:     newConfig(opts),
		streams: make(map[string]*stream),
		conns:   make(map[*wsConn]struct{}),
	}
}

// Publish takes the stream name for a new publisher session. mime is the
// stream's media type (e.g. "video/webm;codecs=vp9,opus"); when it is "",
// it is read from the first WebM init written. The session ends with
// Publisher.Close, or when ctx is done.
//
// Errors: ErrBadStreamName, ErrStreamBusy (the stream has a publisher),
// ErrTooManyStreams, ErrHubClosed.
func (h *Hub) Publish(ctx context.Context, name, mime string) (*Publisher, error) {
	p, err := h.claim(name)
	if err != nil {
		return nil, err
	}
	if err := p.begin(mime); err != nil {
		p.Close()
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { p.end(ctx.Err()) })
	p.mu.Lock()
	p.stop = stop
	p.mu.Unlock()
	return p, nil
}

// claim makes a publisher the owner of stream name.
func (h *Hub) claim(name string) (*Publisher, error) {
	st, err := h.lockStream(name)
	if err != nil {
		return nil, err
	}
	if st.pub != nil {
		h.unlockStream(st)
		return nil, ErrStreamBusy
	}
	p := &Publisher{hub: h, stream: st}
	st.pub = p
	h.unlockStream(st)
	if f := h.cfg.onPublish; f != nil {
		f(name)
	}
	return p, nil
}

// lockStream returns stream name, created within the stream limit if need
// be, with h.mu and the stream's mu held: release them with unlockStream.
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
		if h.cfg.maxStreams > 0 && len(h.streams) >= h.cfg.maxStreams {
			h.mu.Unlock()
			return nil, ErrTooManyStreams
		}
		st = &stream{hub: h, name: name}
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
		st.start, st.init = nil, nil
		st.resetGOP(false)
	}
	h.unlockStream(st)
	if f := h.cfg.onUnpublish; owned && f != nil {
		f(st.name)
	}
}

// Subscribe joins stream name, which need not have a publisher yet. A
// subscriber that joins a live stream first receives the session's Start,
// its init and the media since the last keyframe, so it can show a picture
// at once. It stays across publisher sessions (KindEnd, then KindStart when
// the next publisher comes) until Subscriber.Close, or until ctx is done.
//
// Errors: ErrBadStreamName, ErrTooManyStreams, ErrTooManySubscribers,
// ErrHubClosed.
func (h *Hub) Subscribe(ctx context.Context, name string) (*Subscriber, error) {
	s, err := h.subscribe(name)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { s.end(ctx.Err()) })
	s.mu.Lock()
	s.stop = stop
	s.mu.Unlock()
	return s, nil
}

func (h *Hub) subscribe(name string) (*Subscriber, error) {
	st, err := h.lockStream(name)
	if err != nil {
		return nil, err
	}
	if h.cfg.maxSubscribers > 0 && len(st.subs) >= h.cfg.maxSubscribers {
		h.unlockStream(st)
		return nil, ErrTooManySubscribers
	}
	s := &Subscriber{hub: h, stream: st, limit: h.cfg.queueBytes, notify: make(chan struct{}, 1)}
	st.join(s)
	h.unlockStream(st)
	if f := h.cfg.onSubscribe; f != nil {
		f(name)
	}
	return s, nil
}

// leave removes an ended subscriber from its stream.
func (h *Hub) leave(s *Subscriber) {
	st := s.stream
	h.mu.Lock()
	st.mu.Lock()
	st.remove(s)
	h.unlockStream(st)
	if f := h.cfg.onUnsubscribe; f != nil {
		f(st.name)
	}
}

// Stats returns a snapshot of the hub's counters.
func (h *Hub) Stats() Stats {
	s := Stats{
		BytesIn:    h.bytesIn.Load(),
		BytesOut:   h.bytesOut.Load(),
		Segments:   h.segments.Load(),
		Drops:      h.drops.Load(),
		SlowClosed: h.slowClosed.Load(),
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	s.Streams = len(h.streams)
	for _, st := range h.streams {
		st.mu.Lock()
		if st.pub != nil {
			s.Publishers++
		}
		s.Subscribers += len(st.subs)
		st.mu.Unlock()
	}
	return s
}

// Streams lists the hub's streams, sorted by name.
func (h *Hub) Streams() []StreamInfo {
	h.mu.Lock()
	list := make([]StreamInfo, 0, len(h.streams))
	for _, st := range h.streams {
		st.mu.Lock()
		info := StreamInfo{Name: st.name, Live: st.pub != nil, Subscribers: len(st.subs)}
		if st.start != nil {
			info.MIME = st.start.MIME
		}
		st.mu.Unlock()
		list = append(list, info)
	}
	h.mu.Unlock()
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	return list
}

// Shutdown stops the hub: new requests get 503 and ErrHubClosed, every
// WebSocket is closed with 1001 ("going away"), in-process publishers and
// subscribers end with ErrHubClosed. It waits for the hub's goroutines to
// finish, or until ctx is done: then it drops the remaining connections
// without a close handshake, waits for their goroutines, and returns ctx's
// error. It does not shut down the http.Server the hub is mounted on.
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
		subs = append(subs, st.subs...)
		st.mu.Unlock()
	}
	conns := h.connList()
	h.mu.Unlock()

	for _, c := range conns {
		c.closeAsync(closeWith(websocket.StatusGoingAway, "hub shutting down"))
	}
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
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	h.mu.Lock()
	conns = h.connList()
	h.mu.Unlock()
	for _, c := range conns {
		c.conn.CloseNow()
	}
	<-done
	return ctx.Err()
}

// connList returns the open WebSocket connections. Caller holds h.mu.
func (h *Hub) connList() []*wsConn {
	list := make([]*wsConn, 0, len(h.conns))
	for c := range h.conns {
		list = append(list, c)
	}
	return list
}
