package relay

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// serveLive answers GET /{stream}/live.webm: the stream as one WebM byte
// stream in a response that does not end while the stream is live, for
// players without JavaScript (a plain <video src>, ffplay, VLC, ffmpeg -i).
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
func (h *Hub) serveLive(w http.ResponseWriter, r *http.Request, s *Subscriber) {
	s.announce(r)
	lw := liveWriter{hub: h, w: w, rc: http.NewResponseController(w), s: s, ctx: r.Context()}
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
			if !isWebM(seg.MIME) {
				return http.StatusNotAcceptable, fmt.Errorf("relay: stream %q is %q: live.webm serves WebM streams only", lw.s.Stream(), seg.MIME)
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
		case KindInit, KindMedia:
			if err := lw.write(seg); err != nil {
				return 0, err // the client left, or stayed full past the write timeout
			}
		}
	}
}

// errNoPublisher: no publisher session came within WithLiveWait.
var errNoPublisher = errors.New("relay: no publisher")

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

// isWebM reports whether mime is a WebM media type.
func isWebM(mime string) bool {
	base, _, _ := strings.Cut(mime, ";")
	base = strings.ToLower(strings.TrimSpace(base))
	return base == "video/webm" || base == "audio/webm"
}

// serveLiveHead answers HEAD /{stream}/live.webm at once: 200 with the
// live session's Content-Type, or 404 when the stream has no publisher.
func (h *Hub) serveLiveHead(w http.ResponseWriter, r *http.Request, name string) {
	var mime string
	var live bool
	h.withStream(name, func(st *stream) {
		live = st.pub != nil && st.start != nil
		if live {
			mime = st.start.MIME
		}
	})
	switch {
	case !live:
		w.WriteHeader(http.StatusNotFound)
	case !isWebM(mime):
		w.WriteHeader(http.StatusNotAcceptable)
	default:
		w.Header().Set("Content-Type", mime)
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
	}
}
