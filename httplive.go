package relay

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// serveLive answers GET /{stream}/live.webm (c: ContainerWebM) and GET
// /{stream}/live.mp4 (ContainerMP4): the stream as one WebM or fragmented
// MP4 byte stream in a response that does not end while the stream is
// live, for players without JavaScript (a plain <video src>, ffplay, VLC,
// ffmpeg -i). A session in the other container (or in one the hub does not
// know: a segments-mode MIME) is answered 406.
//
// The response starts when a publisher session is live, waiting for one at
// most WithLiveWait (404 after that). It carries the session's init, the
// cached media since the last keyframe, then live media, so a player starts
// at a keyframe. The viewer is a Subscriber like any other: the same limits
// (429), the same slow-consumer policy (it skips to the next keyframe, then
// is cut off). A new init (the next publisher session, or an encoder
// restart) is written as it comes: a new EBML header and Segment in the
// same response, which ffmpeg reads on from and a browser's <video> does
// not show (measured: README, "Over plain HTTP"). When the
// publisher leaves, the response waits WithLiveWait for the next one and
// then ends.
//
// live.mp4 ends instead where its init would change: at the session's End,
// or at a new moov within it (an encoder restart). An MP4 demuxer reads one
// moov per file (ffmpeg skips a second one as a duplicate, and the new
// session's decode times start over), so the player reconnects and gets the
// new init first.
func (h *Hub) serveLive(w http.ResponseWriter, r *http.Request, s *Subscriber, c Container) {
	s.announce(r)
	lw := liveWriter{hub: h, w: w, rc: http.NewResponseController(w), s: s, ctx: r.Context(), container: c}
	status, err := lw.run()
	if !lw.started {
		httpError(w, status, err.Error())
	}
	s.Close()
	h.connGone() // the handler returns: net/http closes or reuses the connection
	h.emitEnd(s, nil)
}

// liveWriter writes a subscriber's segments to a live.webm response.
type liveWriter struct {
	hub     *Hub
	w       http.ResponseWriter
	rc      *http.ResponseController
	s       *Subscriber
	ctx     context.Context // the request's: done when the client left
	started bool            // the response's header was written
	live    bool            // between a Start and an End
	held    *Segment        // a Start or End write took from the queue: next returns it first

	container Container // the route's: live.webm's or live.mp4's
	inits     int       // init segments written
}

// run writes until the response ends. Before the header is written it
// returns the status and error to answer with.
func (lw *liveWriter) run() (int, error) {
	for {
		seg, err := lw.next()
		if err != nil {
			if errors.Is(err, errNoPublisher) {
				return http.StatusNotFound, fmt.Errorf("relay: stream %q has no publisher (waited %v)", lw.s.Stream(), lw.hub.cfg.liveWait)
			}
			return statusOf(err), err
		}
		switch seg.Kind {
		case KindStart:
			if err := liveAccepts(lw.container, lw.s.Stream(), seg.MIME); err != nil {
				return http.StatusNotAcceptable, err
			}
			lw.live = true
			if !lw.started {
				h := lw.w.Header()
				h.Set("Content-Type", seg.MIME)
				h.Set("Cache-Control", "no-store")
				h.Set("X-Content-Type-Options", "nosniff")
				lw.w.WriteHeader(http.StatusOK)
				lw.started = true
			}
		case KindEnd:
			lw.live = false
			if lw.container == ContainerMP4 && lw.started {
				return 0, errLiveEnded
			}
		case KindInit, KindMedia:
			if err := lw.write(seg); err != nil {
				return 0, err // the client left, or stayed full past the write timeout
			}
		}
	}
}

// errNoPublisher: no publisher session came within WithLiveWait.
var errNoPublisher = errors.New("relay: no publisher")

// errLiveEnded: live.mp4's init changed; the response ends.
var errLiveEnded = errors.New("relay: the MP4 stream's init changed")

// liveContainer is the container of a live route: "live.webm" or
// "live.mp4"; ContainerUnknown for another action.
func liveContainer(action string) Container {
	switch action {
	case "live.webm":
		return ContainerWebM
	case "live.mp4":
		return ContainerMP4
	}
	return ContainerUnknown
}

// liveAccepts says why the live route of container c cannot serve a
// session of MIME type mime (406), or nil when it can.
func liveAccepts(c Container, stream, mime string) error {
	if ContainerOf(mime) == c {
		return nil
	}
	return fmt.Errorf("relay: stream %q is %q: live.%s serves %s streams only", stream, mime, c, c.name())
}

// next returns the next segment. Outside a publisher session it waits at
// most WithLiveWait.
func (lw *liveWriter) next() (Segment, error) {
	if seg := lw.held; seg != nil {
		lw.held = nil
		return *seg, nil
	}
	if lw.live {
		return lw.s.Next(lw.ctx)
	}
	wait := time.NewTimer(lw.hub.cfg.liveWait)
	defer wait.Stop()
	seg, ok, err := lw.s.next(lw.ctx, wait.C)
	if err == nil && !ok {
		err = errNoPublisher
	}
	return seg, err
}

// write writes seg's data, and whatever else is queued behind it, then
// flushes: one flush per batch, each bounded by the write timeout.
func (lw *liveWriter) write(seg Segment) error {
	if err := lw.rc.SetWriteDeadline(time.Now().Add(lw.hub.cfg.writeTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	for {
		if seg.Kind == KindInit {
			if lw.inits > 0 && lw.container == ContainerMP4 {
				lw.rc.Flush()
				return errLiveEnded
			}
			lw.inits++
		}
		if _, err := lw.w.Write(seg.Data); err != nil {
			return err
		}
		var ok bool
		seg, ok, _ = lw.s.tryNext()
		if !ok {
			break
		}
		if seg.Kind != KindInit && seg.Kind != KindMedia {
			// Start and End change what the response is: run handles
			// them, after this batch goes out.
			lw.held = &seg
			break
		}
	}
	return lw.rc.Flush()
}

// serveLiveHead answers HEAD /{stream}/live.webm and live.mp4 at once: 200
// with the live session's Content-Type, 404 when the stream has no
// publisher, 406 when its container is not the route's.
func (h *Hub) serveLiveHead(w http.ResponseWriter, r *http.Request, name string, c Container) {
	var mime string
	var live bool
	h.withStream(name, func(st *stream) {
		live = st.pub != nil && st.start != nil
		if live {
			mime = st.start.MIME
		}
	})
	if !live {
		// On a node that relays the stream only for its subscribers.
		mime, live = h.bridgeLive(r.Context(), name)
	}
	switch {
	case !live:
		w.WriteHeader(http.StatusNotFound)
	case liveAccepts(c, name, mime) != nil:
		w.WriteHeader(http.StatusNotAcceptable)
	default:
		w.Header().Set("Content-Type", mime)
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
	}
}
