package relay

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Slow-subscriber policy: a subscriber whose queue overflows skips to the
// next keyframe; one that overflows slowOverflows times within slowWindow is
// closed with ErrTooSlow. maxQueueSegments bounds the queue's length for
// streams of many tiny segments.
const (
	slowOverflows    = 3
	slowWindow       = 30 * time.Second
	maxQueueSegments = 4096
)

// A Subscriber receives a stream's segments through a bounded queue of its
// own. The publisher never waits for it: when the queue overflows, the
// subscriber skips to the next keyframe and the segment it resumes with
// carries Discontinuity.
type Subscriber struct {
	hub    *Hub
	stream *stream
	limit  int // queue bytes
	index  int // position in stream.subs, guarded by stream.mu
	// conn: a connection's subscriber (WebSocket, live.webm), whose slot
	// of WithMaxSubscribers its handler gives back when the connection is
	// gone (Hub.connGone), not when it leaves the stream: a subscriber cut
	// off as too slow may hold its socket until the write timeout.
	conn bool
	// maxLag, for a connection's subscriber, is WithSubscriberMaxLag: how
	// long ago the oldest segment it has not received may have arrived.
	maxLag time.Duration

	// notify wakes Next; it holds at most one pending wake-up.
	notify chan struct{}

	mu        sync.Mutex
	stop      func() bool // stops the context.AfterFunc of Subscribe
	session   session
	bytesOut  uint64 // handed out by Next
	segsOut   uint64 // init and media segments handed out
	drops     uint64 // media segments skipped
	queue     ring
	queued    int   // bytes in queue
	err       error // set once: why the subscriber ended
	skipping  bool  // dropping media until the next keyframe (after an overflow)
	waitKey   bool  // joined without a cached keyframe: wait for the next one
	gotMedia  bool  // a media segment was queued before
	nextDisc  bool  // the next queued media segment carries Discontinuity
	overflow  [slowOverflows]time.Time
	nOverflow int
	// handed: the latest segments handed out, by where their bytes end in
	// bytesOut and when they were queued; with inFlight, the bytes its
	// writer reports the kernel still holds, they say how late the peer is
	// (wireLate).
	handed   [handedLen]handout
	nHanded  int
	inFlight uint64
}

// handedLen bounds what a subscriber keeps of the segments in flight: past
// it, the oldest two merge, keeping the older time (lateness is never
// underestimated).
const handedLen = 8

type handout struct {
	end uint64
	at  time.Time
}

// entry is one queued segment. The Segment is shared by every subscriber;
// disc is this subscriber's own Discontinuity flag.
type entry struct {
	seg  *Segment
	disc bool
	at   time.Time // when it was queued for this subscriber
}

// ring is a growable FIFO of entries; it allocates only to grow.
type ring struct {
	buf  []entry
	head int
	n    int
}

func (r *ring) push(e entry) {
	if r.n == len(r.buf) {
		buf := make([]entry, max(16, 2*len(r.buf)))
		for i := 0; i < r.n; i++ {
			buf[i] = r.buf[(r.head+i)%len(r.buf)]
		}
		r.buf, r.head = buf, 0
	}
	r.buf[(r.head+r.n)%len(r.buf)] = e
	r.n++
}

func (r *ring) pop() entry {
	e := r.buf[r.head]
	r.buf[r.head] = entry{}
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	return e
}

// filter keeps, in order, only the entries for which keep returns true.
func (r *ring) filter(keep func(entry) bool) {
	n := 0
	for i := 0; i < r.n; i++ {
		e := r.buf[(r.head+i)%len(r.buf)]
		r.buf[(r.head+i)%len(r.buf)] = entry{}
		if keep(e) {
			r.buf[(r.head+n)%len(r.buf)] = e
			n++
		}
	}
	r.n = n
}

func (r *ring) clear() {
	clear(r.buf)
	r.head, r.n = 0, 0
}

// Next returns the stream's next segment, waiting for it until ctx is done.
// After the Subscriber ended it returns why: ErrClosed after Close,
// ErrTooSlow, ErrHubClosed, or ctx's error when the context given to
// Subscribe is done.
func (s *Subscriber) Next(ctx context.Context) (Segment, error) {
	seg, _, err := s.next(ctx, nil)
	return seg, err
}

// next is Next that also returns, with ok false, when idle fires first.
func (s *Subscriber) next(ctx context.Context, idle <-chan time.Time) (seg Segment, ok bool, err error) {
	for {
		if seg, ok, err := s.tryNext(); ok || err != nil {
			return seg, ok, err
		}
		select {
		case <-s.notify:
		case <-idle:
			return Segment{}, false, nil
		case <-ctx.Done():
			return Segment{}, false, ctx.Err()
		}
	}
}

// nextWoken is next for the hub's WebSocket writer, which parks on notify
// alone: one channel costs less to park on than a select of three, for every
// subscriber at every segment. What else must wake it sends to notify after
// it happened: its connection's end after ctx is done, its ping timer after
// setting idle.
func (s *Subscriber) nextWoken(ctx context.Context, idle *atomic.Bool) (seg Segment, ok bool, err error) {
	for {
		if seg, ok, err := s.tryNext(); ok || err != nil {
			return seg, ok, err
		}
		if err := ctx.Err(); err != nil {
			return Segment{}, false, err
		}
		if idle.Swap(false) {
			return Segment{}, false, nil
		}
		<-s.notify
	}
}

// tryNext returns the next queued segment without waiting: ok is false
// when the queue is empty, err set once the subscriber ended.
func (s *Subscriber) tryNext() (seg Segment, ok bool, err error) {
	s.mu.Lock()
	if s.err != nil {
		err := s.err
		s.mu.Unlock()
		return Segment{}, false, err
	}
	if s.queue.n == 0 {
		s.mu.Unlock()
		return Segment{}, false, nil
	}
	e := s.queue.pop()
	s.queued -= len(e.seg.Data)
	n := uint64(len(e.seg.Data))
	s.bytesOut += n
	if e.seg.Kind == KindInit || e.seg.Kind == KindMedia {
		s.segsOut++
		if s.maxLag > 0 {
			s.handOut(e.at)
		}
	}
	s.mu.Unlock()
	seg = *e.seg
	seg.Discontinuity = e.disc
	s.hub.bytesOut.Add(n)
	s.stream.bytesOut.Add(n)
	return seg, true, nil
}

// Close leaves the stream. Next returns ErrClosed from then on.
func (s *Subscriber) Close() error {
	s.end(ErrClosed)
	return nil
}

// end ends the subscriber with err, once, and leaves the stream.
func (s *Subscriber) end(err error) {
	if !s.fail(err) {
		return
	}
	s.mu.Lock()
	stop, inProcess := s.stop, s.session.req == nil
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
	s.hub.leave(s)
	if inProcess { // a connection's handler reports it (a WebSocket's with its close frame)
		s.hub.emitEnd(s, nil)
	}
}

// fail records err as the reason the subscriber ended and wakes Next. It
// reports whether this call ended it. Safe to call with stream.mu held.
func (s *Subscriber) fail(err error) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return false
	}
	s.err = err
	s.queue.clear()
	s.queued = 0
	s.wake()
	return true
}

func (s *Subscriber) wake() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// offer queues seg for the subscriber without ever blocking: it is called on
// the publisher's path with the stream locked. It reports false when the
// subscriber overflowed once too often and must be closed as too slow.
//
// Every entry counts against the queue's bytes and entries. Start, init and
// end entries are never dropped for lack of room, so that they stay bounded
// they replace what they make useless: a Start drops what is queued of the
// sessions before it (but their End); an init drops a queued init and the
// media that came after that one. Replacing an init the subscriber has not
// received yet is an overflow like any other: a publisher that restarts its
// recorder faster than the subscriber drains makes that subscriber too slow.
func (s *Subscriber) offer(seg *Segment, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return true
	}
	switch seg.Kind {
	case KindStart:
		var end *Segment
		s.drop(func(e entry) bool {
			if e.seg.Kind == KindEnd {
				end = e.seg
			}
			return true
		})
		if end != nil {
			s.queue.push(entry{seg: end})
		}
		return s.push(entry{seg: seg, at: now})
	case KindInit:
		if s.queued+len(seg.Data) <= s.limit && s.queue.n < maxQueueSegments {
			// While the queue has room, a new init (an encoder restart, a
			// legacy publisher's next file) waits behind what came before
			// it: a burst costs the subscriber nothing, and a recorder
			// keeps the file before a restart (recorder.go).
			return s.push(entry{seg: seg, at: now})
		}
		// Under pressure, a queued init the subscriber has not received is
		// replaced, with the media after it, which is of no use without
		// it; that counts as an overflow.
		afterInit := false
		if replaced := s.drop(func(e entry) bool {
			afterInit = afterInit || e.seg.Kind == KindInit
			return afterInit && e.seg.Kind != KindStart && e.seg.Kind != KindEnd
		}); replaced > 0 && s.tooSlow(now) {
			return false
		}
		return s.push(entry{seg: seg, at: now})
	case KindEnd:
		return s.push(entry{seg: seg, at: now})
	}
	if s.skipping || s.waitKey {
		if !seg.Keyframe {
			if s.skipping {
				s.countDrops(1)
			}
			return true
		}
		s.skipping, s.waitKey = false, false
	}
	if s.maxLag > 0 && s.queue.n > 0 {
		if at, ok := s.oldestQueuedMedia(); ok && now.Sub(at) > s.maxLag {
			// Late in time: the queued media is stale for a live viewer
			// whose link is slower than the stream. Resume at a keyframe,
			// without counting towards ErrTooSlow: a weak link gets a live
			// picture at a lower frame rate, not a close.
			s.drop(func(e entry) bool { return e.seg.Kind == KindMedia })
			s.stream.skips++
			s.nextDisc = true
			if !seg.Keyframe {
				s.skipping = true
				s.countDrops(1)
				return true
			}
		}
	}
	if s.queue.n > 0 && (s.queued+len(seg.Data) > s.limit || s.queue.n >= maxQueueSegments) {
		// Overflow: drop the queued media, which is stale now, and resume
		// at a keyframe (this one, or the next).
		s.drop(func(e entry) bool { return e.seg.Kind == KindMedia })
		if s.tooSlow(now) {
			return false
		}
		s.nextDisc = true
		if !seg.Keyframe {
			s.skipping = true
			s.countDrops(1)
			return true
		}
	}
	disc := (seg.Discontinuity || s.nextDisc) && s.gotMedia
	s.nextDisc = false
	s.gotMedia = true
	return s.push(entry{seg: seg, disc: disc, at: now})
}

// oldestQueuedMedia returns when the first media segment in the queue was
// queued. Caller holds mu.
func (s *Subscriber) oldestQueuedMedia() (time.Time, bool) {
	for i := 0; i < s.queue.n; i++ {
		if e := s.queue.buf[(s.queue.head+i)%len(s.queue.buf)]; e.seg.Kind == KindMedia {
			return e.at, true
		}
	}
	return time.Time{}, false
}

// handOut records a segment handed out, queued at at. Caller holds mu.
func (s *Subscriber) handOut(at time.Time) {
	if s.nHanded == handedLen {
		// handed[0] keeps its time and now ends where handed[1] ended.
		s.handed[0].end = s.handed[1].end
		copy(s.handed[1:], s.handed[2:])
		s.nHanded--
	}
	s.handed[s.nHanded] = handout{end: s.bytesOut, at: at}
	s.nHanded++
}

// wireLate records that n bytes the subscriber was handed are still in
// flight (in the kernel's send queue), forgets the segments that left, and
// returns how long ago the oldest one still in flight was queued.
func (s *Subscriber) wireLate(n uint64, now time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inFlight = n
	delivered := s.bytesOut - min(n, s.bytesOut)
	i := 0
	for i < s.nHanded && s.handed[i].end <= delivered {
		i++
	}
	copy(s.handed[:], s.handed[i:s.nHanded])
	s.nHanded -= i
	if s.nHanded == 0 {
		return 0
	}
	return now.Sub(s.handed[0].at)
}

// push queues e and wakes Next. It returns true, for offer's convenience.
func (s *Subscriber) push(e entry) bool {
	s.queue.push(e)
	s.queued += len(e.seg.Data)
	s.wake()
	return true
}

// drop removes the queued entries for which match returns true and returns
// how many of them were init segments. Dropped media counts in the hub's
// drops, and the next media queued carries Discontinuity.
func (s *Subscriber) drop(match func(entry) bool) (inits int) {
	media := 0
	s.queue.filter(func(e entry) bool {
		if !match(e) {
			return true
		}
		s.queued -= len(e.seg.Data)
		switch e.seg.Kind {
		case KindInit:
			inits++
		case KindMedia:
			media++
		}
		return false
	})
	if media > 0 {
		s.countDrops(media)
		s.nextDisc = true
	}
	return inits
}

// countDrops counts n media segments skipped for the subscriber, in its
// stream's and the hub's figures too. Caller holds mu and stream.mu.
func (s *Subscriber) countDrops(n int) {
	s.drops += uint64(n)
	s.stream.drops += uint64(n)
	s.hub.drops.Add(uint64(n))
}

// tooSlow records an overflow (a skip to the next keyframe, or an unsent
// init replaced) at now and reports whether it is one too many. Caller
// holds mu and stream.mu.
func (s *Subscriber) tooSlow(now time.Time) bool {
	s.stream.skips++
	s.overflow[s.nOverflow%slowOverflows] = now
	s.nOverflow++
	// The slot written next holds the oldest of the last slowOverflows.
	return s.nOverflow >= slowOverflows && now.Sub(s.overflow[s.nOverflow%slowOverflows]) < slowWindow
}

// announce emits the session's start event: it really started.
func (s *Subscriber) announce(r *http.Request) {
	s.hub.announce(&s.mu, func() bool { return s.err != nil }, &s.session, s.stream.name, r)
}

// endEvent returns the session's end event, or false if it never started.
func (s *Subscriber) endEvent() (Event, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	stats := SessionStats{Bytes: s.bytesOut, Segments: s.segsOut, Drops: s.drops}
	return s.session.endEvent(s.stream.name, stats, s.err), s.session.announced
}

// ID identifies the subscriber within its hub (see Hub.CloseSubscriber and
// Event.ID).
func (s *Subscriber) ID() uint64 { return s.session.id }

// Stream returns the name of the subscribed stream.
func (s *Subscriber) Stream() string { return s.stream.name }
