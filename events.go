package relay

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// EventKind says what an Event reports.
type EventKind uint8

const (
	// EventPublish: a publisher session started (for a WebSocket, once the
	// upgrade succeeded: a failed upgrade reports nothing).
	EventPublish EventKind = iota + 1
	// EventUnpublish: a publisher session ended; Session has its figures.
	EventUnpublish
	// EventSubscribe: a subscriber joined a stream.
	EventSubscribe
	// EventUnsubscribe: a subscriber left; Session has its figures.
	EventUnsubscribe
	// EventRefused: a request was refused before the upgrade; Status and
	// Err say why.
	EventRefused
	// EventRecordStart: a recording file began (WithRecording); Path
	// names it, ID is the recorded publisher session's.
	EventRecordStart
	// EventRecordEnd: a recording file ended: Err is nil when it ended
	// cleanly, or says why the recording stopped (the file is finished
	// as far as it got). Session has its figures: Duration of its media,
	// Bytes of the file, Segments written, Drops skipped (a slow disk). A
	// file that could not begin reports EventRecordEnd alone.
	EventRecordEnd
)

func (k EventKind) String() string {
	switch k {
	case EventPublish:
		return "publish"
	case EventUnpublish:
		return "unpublish"
	case EventSubscribe:
		return "subscribe"
	case EventUnsubscribe:
		return "unsubscribe"
	case EventRefused:
		return "refused"
	case EventRecordStart:
		return "record-start"
	case EventRecordEnd:
		return "record-end"
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// An Event reports a session's start or end, a refused request, or a
// recording file's start or end, to the function given to WithEvents.
type Event struct {
	Kind   EventKind
	Time   time.Time
	Stream string
	Role   Role
	// ID identifies the session within the hub (Hub.CloseSubscriber takes
	// a subscriber's); 0 for EventRefused; the recorded publisher's for
	// EventRecordStart and EventRecordEnd (whose Role is RolePublish).
	ID uint64
	// Request is the HTTP request of a WebSocket session or of a refused
	// request; nil for in-process sessions. Read it, do not keep its Body.
	Request *http.Request
	// Status is the HTTP status of EventRefused.
	Status int
	// Err says why a session ended (ErrClosed when its owner or peer
	// closed it normally; for a WebSocket session whose peer left without
	// a close frame, nil) or why a request was refused.
	Err error
	// CloseCode and Reason are the WebSocket close frame the hub sent or
	// received at the end of a WebSocket session (0 and "" in-process, or
	// when the connection was dropped without one).
	CloseCode int
	Reason    string
	// Session has the session's figures, on EventUnpublish and
	// EventUnsubscribe, and a recording's on EventRecordEnd.
	Session SessionStats
	// Path is the file of EventRecordStart and EventRecordEnd.
	Path string
}

// SessionStats are the figures of one publisher or subscriber session.
type SessionStats struct {
	Duration time.Duration
	Bytes    uint64 // published (publisher), or handed to the subscriber
	Segments uint64 // init and media segments, the same way
	Drops    uint64 // media segments the subscriber skipped
}

// WithEvents sets the function that receives the hub's events: sessions
// starting and ending, and refused requests. It runs on a goroutine of its
// own, one event at a time, in the order they happened, never on the path
// of a publisher or under the hub's locks, so a slow function delays only
// the events after it. Up to 4,096 events, and 16 MiB of what their
// requests carry (headers, URL), wait for it; beyond that they are dropped
// and counted in Stats.EventsDropped. (An event keeps its Request, whose
// headers a client may make as large as the server's MaxHeaderBytes, 1 MB
// by default.)
func WithEvents(f func(Event)) Option {
	return func(c *config) { c.events = f }
}

// maxPendingEvents and maxPendingEventBytes bound the events waiting for
// the WithEvents function, in count and in what their requests hold.
const (
	maxPendingEvents     = 4096
	maxPendingEventBytes = 16 << 20
)

// eventBytes is what ev keeps alive that a client chose the size of: its
// request's headers and URL (a fixed share for the rest of the Event).
func eventBytes(ev *Event) int {
	n := 256
	if r := ev.Request; r != nil {
		n += len(r.RequestURI) + len(r.RemoteAddr) + len(r.Host)
		for k, vs := range r.Header {
			n += len(k)
			for _, v := range vs {
				n += len(v) + 16
			}
		}
	}
	return n
}

// events delivers a hub's events on a goroutine that runs while there are
// some to deliver, so an idle hub has none running.
type events struct {
	pending []pendingEvent // guarded by Hub.mu
	bytes   int            // guarded by Hub.mu: the pending events' eventBytes
	running bool           // guarded by Hub.mu: a goroutine is delivering
	dropped atomic.Uint64
}

// pendingEvent is a queued event with its eventBytes, measured once, off
// the hub's lock.
type pendingEvent struct {
	ev    Event
	bytes int
}

// emit logs ev and queues it for the WithEvents function. Safe with no lock
// held; never blocks.
func (h *Hub) emit(ev Event) {
	ev.Time = time.Now()
	h.logEvent(ev)
	f := h.cfg.events
	if f == nil {
		return
	}
	n := eventBytes(&ev)
	h.mu.Lock()
	if len(h.ev.pending) >= maxPendingEvents || h.ev.bytes+n > maxPendingEventBytes {
		h.mu.Unlock()
		h.ev.dropped.Add(1)
		return
	}
	h.ev.pending = append(h.ev.pending, pendingEvent{ev, n})
	h.ev.bytes += n
	if h.ev.running {
		h.mu.Unlock()
		return
	}
	h.ev.running = true
	h.wg.Add(1)
	h.mu.Unlock()
	go h.deliver(f)
}

// deliver calls f for every pending event until there are none.
func (h *Hub) deliver(f func(Event)) {
	defer h.wg.Done()
	for {
		h.mu.Lock()
		if len(h.ev.pending) == 0 {
			h.ev.running = false
			h.ev.pending = nil
			h.mu.Unlock()
			return
		}
		pe := h.ev.pending[0]
		h.ev.pending[0] = pendingEvent{}
		h.ev.pending = h.ev.pending[1:]
		h.ev.bytes -= pe.bytes
		h.mu.Unlock()
		f(pe.ev)
	}
}

// logEvent writes the operator's line for ev: refusals at Info (404 and
// 400, the noise of scanners and plain HTTP requests, at Debug), session
// starts at Debug, one summary line per session end at Info, a recording's
// start and end at Info (an end with an error at Warn).
func (h *Hub) logEvent(ev Event) {
	log := h.cfg.logger
	attrs := []any{"stream", ev.Stream, "role", ev.Role.String()}
	if ev.Request != nil {
		attrs = append(attrs, "remote", ev.Request.RemoteAddr)
	}
	switch ev.Kind {
	case EventRefused:
		level := slog.LevelInfo
		if ev.Status == http.StatusNotFound || ev.Status == http.StatusBadRequest {
			level = slog.LevelDebug
		}
		log.Log(context.Background(), level, "segrelay: refused", append(attrs, "status", ev.Status, "reason", errText(ev.Err))...)
	case EventPublish, EventSubscribe:
		log.Debug("segrelay: session started", append(attrs, "id", ev.ID)...)
	case EventUnpublish, EventUnsubscribe:
		s := ev.Session
		log.Info("segrelay: session ended", append(attrs, "id", ev.ID,
			"duration", s.Duration.Round(time.Millisecond), "bytes", s.Bytes, "segments", s.Segments, "drops", s.Drops,
			"code", ev.CloseCode, "reason", ev.Reason, "err", errText(ev.Err))...)
	case EventRecordStart:
		log.Info("segrelay: recording started", append(attrs, "id", ev.ID, "path", ev.Path)...)
	case EventRecordEnd:
		level := slog.LevelInfo
		if ev.Err != nil {
			level = slog.LevelWarn
		}
		s := ev.Session
		log.Log(context.Background(), level, "segrelay: recording ended", append(attrs, "id", ev.ID, "path", ev.Path,
			"duration", s.Duration.Round(time.Millisecond), "bytes", s.Bytes, "drops", s.Drops, "err", errText(ev.Err))...)
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// session is what a Publisher or a Subscriber reports in its events.
type session struct {
	id        uint64
	role      Role
	since     time.Time
	req       *http.Request // nil in-process
	announced bool          // its start event was emitted
}

// announce emits ss's start event (r is the WebSocket request, nil
// in-process) unless its owner ended already: then neither its start nor
// its end is reported. mu is the owner's lock; ended, called under it,
// reports whether the owner ended. A WebSocket session's end event is
// emitted by its connection, which knows the close frame.
func (h *Hub) announce(mu *sync.Mutex, ended func() bool, ss *session, stream string, r *http.Request) {
	mu.Lock()
	if ended() {
		mu.Unlock()
		return
	}
	ss.req = r
	ev := ss.startEvent(stream)
	mu.Unlock()
	h.emit(ev)
}

// endedSession is a Publisher or a Subscriber whose session ended.
type endedSession interface{ endEvent() (Event, bool) }

// emitEnd emits the end event of s's session, the one place a session's
// end is reported; nothing if the session never started. c is the
// session's WebSocket, whose close frame the event carries; nil for HTTP
// and in-process sessions.
func (h *Hub) emitEnd(s endedSession, c *wsConn) {
	ev, ok := s.endEvent()
	if !ok {
		return
	}
	if c != nil {
		ev = c.withCloseFrame(ev)
	}
	h.emit(ev)
}

// startEvent marks the session announced and returns its start event.
// Caller holds the owner's lock.
func (ss *session) startEvent(stream string) Event {
	ss.announced = true
	ss.since = time.Now()
	kind := EventPublish
	if ss.role == RoleSubscribe {
		kind = EventSubscribe
	}
	return Event{Kind: kind, Stream: stream, Role: ss.role, ID: ss.id, Request: ss.req}
}

// endEvent is the session's end event, with its figures.
func (ss *session) endEvent(stream string, stats SessionStats, err error) Event {
	kind := EventUnpublish
	if ss.role == RoleSubscribe {
		kind = EventUnsubscribe
	}
	stats.Duration = time.Since(ss.since)
	return Event{Kind: kind, Stream: stream, Role: ss.role, ID: ss.id, Request: ss.req, Err: err, Session: stats}
}
