package relay

import (
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/segrelay/relay/internal/webm"
)

// A Publisher feeds one stream. It takes either a WebM or fragmented MP4
// byte stream (Write, as MediaRecorder produces it, in pieces of any size)
// or ready-made
// segments of any container (WriteSegment), not both. Its methods never wait
// for subscribers. They are safe for concurrent use, though one writer is the
// normal case.
type Publisher struct {
	hub    *Hub
	stream *stream
	once   sync.Once
	done   chan struct{} // closed when the session ended

	relayed bool // fed by a Bridge (PublishRelayed)

	mu        sync.Mutex
	stop      func() bool // stops the context.AfterFunc of Publish
	session   session
	held      holding // the splitter's held-back bytes, against the memory budget
	published int64   // bytes of init and media segments published
	segments  uint64  // init and media segments published
	mime      string
	started   bool // Start was published
	mode      publishMode
	splitter  splitter // stream mode: WebM or MP4 (container.go)
	err       error    // set once the publisher can no longer write

	// Stream-mode coalescing: whole elements the splitter holds back since
	// pendingAt (zero: none), forwarded by flushTimer at the latest.
	pendingAt  time.Time
	flushTimer *time.Timer
}

type publishMode uint8

const (
	modeUnset publishMode = iota
	modeBytes
	modeSegments
	modeFiles // legacy: standalone WebM files
)

// Write takes the next bytes of a WebM or fragmented MP4 stream. The
// container is the one the session's MIME names (Publish, or a WebSocket
// publisher's start), else the one the first bytes say: WebM's EBML header
// (1A 45 DF A3), or an ISO BMFF box (ftyp, styp, moov, moof, free, skip,
// wide, uuid, pdin, meta); bytes that are neither, or not the container the
// MIME names, are an error wrapping ErrBadData. A MIME that names neither
// container is replaced by the stream's own (e.g. `video/mp4;
// codecs="avc1.64001f,mp4a.40.2"`), so the session's Start waits for its
// init. The bytes may be cut anywhere; Write cuts the stream into segments
// at element (box) boundaries. For MP4, a fragment (moof + mdat, with any
// styp, sidx, prft or emsg before it) is what a Cluster is for WebM, and a
// moov after fragments a new init. A Cluster's whole elements are forwarded together: once they reach
// WithCoalesceBytes (64 KiB), or WithCoalesceDelay (50 ms) after the first of
// them was written, or at Flush, or when the next Cluster starts, whichever
// comes first; so a stream written in small pieces still reaches viewers in
// few segments. (Over a WebSocket, a message after which the publisher sent
// nothing more is forwarded at once.) Only a Cluster's start waits longer,
// until its first video block says whether it is a keyframe. A new EBML
// header starts a new init (the encoder restarted). Write does not keep b.
//
// An error that wraps ErrBadWebM, ErrBadMP4, ErrBadData or ErrSegmentTooBig
// means the stream cannot
// be parsed, ErrOverBudget that the hub's memory budget has no room for
// what must be held; the Publisher is unusable afterwards and should be
// closed.
func (p *Publisher) Write(b []byte) (int, error) { return p.write(b, true) }

// write is Write; more says whether more input may follow at once (false:
// forward what is whole now).
func (p *Publisher) write(b []byte, more bool) (n int, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.contain(&err)
	if err := p.use(modeBytes); err != nil {
		return 0, err
	}
	if p.splitter == nil {
		p.splitter = newSplitter(p.mime, p.hub.cfg.maxSegmentBytes, p.publishPiece)
	}
	p.hub.bytesIn.Add(uint64(len(b)))
	// Reserve what the splitter may keep before it keeps it; settle on what
	// it really holds afterwards. What coalescing holds back is in it.
	err = p.held.resize(p.splitter.HeldBytes()+len(b), p.heldWhat())
	if err == nil {
		err = p.splitter.Append(b)
	}
	if err == nil {
		err = p.coalesce(more)
	}
	if err == nil {
		err = p.held.resize(p.splitter.HeldBytes(), p.heldWhat())
	}
	if err != nil {
		p.err = err
		return 0, err
	}
	return len(b), nil
}

// coalesce forwards the whole elements held back when no more input follows
// at once or they reach the coalescing size; otherwise it makes sure the
// timer forwards them within the coalescing delay. Caller holds mu.
func (p *Publisher) coalesce(more bool) error {
	n := p.splitter.Pending()
	if n == 0 {
		p.pendingAt = time.Time{}
		return nil
	}
	if !more || n >= p.hub.cfg.coalesceBytes {
		p.pendingAt = time.Time{}
		return p.splitter.Flush()
	}
	if p.pendingAt.IsZero() {
		p.pendingAt = time.Now()
		if p.flushTimer == nil {
			p.flushTimer = time.AfterFunc(p.hub.cfg.coalesceDelay, p.flushLate)
		} else {
			p.flushTimer.Reset(p.hub.cfg.coalesceDelay)
		}
	}
	return nil
}

// flushLate is flushTimer's function: it forwards what waited for the
// coalescing delay. An error ends the publisher.
func (p *Publisher) flushLate() {
	p.mu.Lock()
	if p.err != nil || p.splitter == nil || p.pendingAt.IsZero() {
		p.mu.Unlock()
		return
	}
	if wait := p.hub.cfg.coalesceDelay - time.Since(p.pendingAt); wait > 0 {
		p.flushTimer.Reset(wait) // a later wait than the one this timer was set for
		p.mu.Unlock()
		return
	}
	err := p.flushLocked()
	p.mu.Unlock()
	if err != nil {
		p.end(err)
	}
}

// Flush forwards at once the whole elements that Write holds back to
// coalesce them. Only a Cluster's start, until its first video block, stays.
func (p *Publisher) Flush() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	return p.flushLocked()
}

// flushLocked is Flush. Caller holds mu.
func (p *Publisher) flushLocked() (err error) {
	if p.splitter == nil {
		return nil
	}
	defer p.contain(&err)
	p.pendingAt = time.Time{}
	err = p.splitter.Flush()
	if err == nil {
		err = p.held.resize(p.splitter.HeldBytes(), p.heldWhat())
	}
	if err != nil {
		p.err = err
	}
	return err
}

// WriteSegment publishes one segment: Kind KindInit or KindMedia, Keyframe
// on media a decoder can start from, and Data, which the hub keeps and shares
// from now on: do not modify it afterwards. Seq and Discontinuity are set by
// the hub. The first segment of a session must be an init. LegacyFiles (on
// an init) and FileEnd (on media) pass on a legacy publisher's files, as a
// bridge received them.
func (p *Publisher) WriteSegment(seg Segment) (err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.contain(&err)
	if err := p.use(modeSegments); err != nil {
		return err
	}
	if seg.Kind != KindInit && seg.Kind != KindMedia {
		return fmt.Errorf("relay: WriteSegment: kind %s: want init or media", seg.Kind)
	}
	if len(seg.Data) > p.hub.cfg.maxSegmentBytes {
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrSegmentTooBig, len(seg.Data), p.hub.cfg.maxSegmentBytes)
	}
	p.hub.bytesIn.Add(uint64(len(seg.Data)))
	media := seg.Kind == KindMedia
	return p.publish(&Segment{Kind: seg.Kind, Keyframe: seg.Keyframe && media, Data: seg.Data,
		LegacyFiles: seg.LegacyFiles && !media, FileEnd: seg.FileEnd && media})
}

// announce emits the session's start event: it really started.
func (p *Publisher) announce(r *http.Request) {
	p.hub.announce(&p.mu, func() bool { return p.err != nil }, &p.session, p.stream.name, r)
}

// endEvent returns the session's end event, or false if it never started.
func (p *Publisher) endEvent() (Event, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	stats := SessionStats{Bytes: uint64(p.published), Segments: p.segments}
	return p.session.endEvent(p.stream.name, stats, p.err), p.session.announced
}

// Published returns the bytes of init and media segments the session has
// published so far.
func (p *Publisher) Published() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.published
}

// use checks that the publisher can write in mode. Caller holds mu.
func (p *Publisher) use(mode publishMode) error {
	if p.err != nil {
		return p.err
	}
	if p.mode != modeUnset && p.mode != mode {
		return errors.New("relay: a publisher session is either a byte stream (Write) or segments (WriteSegment), not both")
	}
	p.mode = mode
	return nil
}

func pieceSegment(pc webm.Piece) *Segment {
	if pc.Init {
		return &Segment{Kind: KindInit, Data: pc.Data}
	}
	return &Segment{Kind: KindMedia, Keyframe: pc.Keyframe, Data: pc.Data}
}

// heldWhat names what the splitter holds, for the memory budget's errors.
// Caller holds mu.
func (p *Publisher) heldWhat() string {
	return "the " + p.splitter.container().name() + " held back"
}

// publishPiece is the splitter's emit function: a MIME that names no
// container gives way to the splitter's. Caller holds mu.
func (p *Publisher) publishPiece(seg *Segment) error {
	if seg.Kind == KindInit && ContainerOf(p.mime) == ContainerUnknown {
		p.mime = p.splitter.MIME()
	}
	return p.publish(seg)
}

// publish sends the session's Start before its first segment, then seg.
// Caller holds mu.
func (p *Publisher) publish(seg *Segment) error {
	if seg.Kind == KindInit && len(seg.Data) > p.hub.cfg.maxInitBytes {
		p.err = fmt.Errorf("%w: an init segment of %d bytes, the limit is %d", ErrSegmentTooBig, len(seg.Data), p.hub.cfg.maxInitBytes)
		return p.err
	}
	if !p.started {
		if seg.Kind != KindInit {
			return errNoInit
		}
		if err := p.stream.publish(p, &Segment{Kind: KindStart, MIME: p.mime}); err != nil {
			return err
		}
		p.started = true
	}
	err := p.stream.publish(p, seg)
	if err != nil {
		p.err = err
		return err
	}
	p.published += int64(len(seg.Data))
	p.segments++
	return nil
}

// begin publishes the session's Start now that its MIME type is known, so
// subscribers learn the stream is live before the first segment. A MIME
// that names no container waits for the first init unless now (Publish
// and PublishRelayed, whose MIME is the session's as given, and a
// segments-mode start): a WebSocket byte stream's splitter replaces it.
func (p *Publisher) begin(mime string, now bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	p.mime = mime
	if p.started || mime == "" || (!now && ContainerOf(mime) == ContainerUnknown) {
		return nil
	}
	if err := p.stream.publish(p, &Segment{Kind: KindStart, MIME: mime}); err != nil {
		return err
	}
	p.started = true
	return nil
}

// Subscribers returns how many subscribers the stream has now (as in
// Stats: the recorder is not one): what a publisher shows as viewers.
func (p *Publisher) Subscribers() int {
	p.stream.mu.Lock()
	defer p.stream.mu.Unlock()
	return p.stream.viewers()
}

// endErr returns why the session can no longer write, or nil.
func (p *Publisher) endErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Stream returns the name of the published stream.
func (p *Publisher) Stream() string { return p.stream.name }

// Close ends the session: subscribers receive KindEnd, the stream is free
// for the next publisher. Closing twice is harmless.
func (p *Publisher) Close() error {
	p.end(ErrClosed)
	return nil
}

// end ends the session once, for err.
func (p *Publisher) end(err error) {
	p.once.Do(func() {
		p.mu.Lock()
		if p.err == nil && p.splitter != nil {
			// What is held back and whole goes out; an element cut short is
			// dropped, since nothing can complete it.
			p.endSplitter()
		}
		p.splitter = nil
		if p.flushTimer != nil {
			p.flushTimer.Stop()
		}
		p.held.release()
		if p.err == nil {
			p.err = err
		}
		started, stop, inProcess := p.started, p.stop, p.session.req == nil
		p.mu.Unlock()
		if stop != nil {
			stop()
		}
		p.hub.unpublish(p, started)
		close(p.done)
		if inProcess { // a connection's handler reports it (a WebSocket's with its close frame)
			p.hub.emitEnd(p, nil)
		}
	})
}

// endSplitter sends what the splitter holds back and whole, at the
// session's end. Caller holds mu.
func (p *Publisher) endSplitter() (err error) {
	defer p.contain(&err)
	return p.splitter.End()
}

// contain, deferred by every method that parses a publisher's bytes or
// hands its segments on (the splitter, the subscribers' queues, a Bridge's
// Forward), turns a panic there into errBug for this publisher alone: it is
// logged with its stack, the publisher ends (close code 1011, HTTP 500), and
// the locks its caller took with defer are released as the panic unwinds, so
// every other stream goes on. Fuzzing keeps such bugs rare; a hub on the open
// internet must survive one. Caller holds mu.
func (p *Publisher) contain(err *error) {
	v := recover()
	if v == nil {
		return
	}
	p.hub.cfg.logger.Error("segrelay: panic on a publisher's path (a bug)", "stream", p.stream.name, "session", p.session.id, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	p.err = errBug
	*err = errBug
}
