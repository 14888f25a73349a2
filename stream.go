package relay

import (
	"sync"
	"sync/atomic"
	"time"
)

// A stream is one named channel of a Hub: at most one publisher, any number
// of subscribers, and what a late joiner needs to start at once.
type stream struct {
	hub  *Hub
	name string

	mu          sync.Mutex
	pub         *Publisher
	start       *Segment // the live session's Start, nil before its MIME is known
	init        *Segment // the live session's current init
	gop         []*Segment
	gopBytes    int
	held        holding // init and gop, against the hub's memory budget
	gopOK       bool    // gop starts at a keyframe and is complete since
	hadInit     bool    // an init was published before (this session or an earlier one)
	pendingDisc bool    // the next media segment follows a replaced init
	seq         uint64
	subs        []*Subscriber
	rec         *Subscriber // the live session's recorder (recorder.go), one of subs

	// Figures for StreamInfo, under mu but bytesOut.
	pubSince   time.Time // when the publisher took the stream
	bytesIn    uint64
	segments   uint64
	drops      uint64 // media segments skipped for slow subscribers
	skips      uint64 // overflows: a subscriber skipped to a keyframe
	slowClosed uint64
	rate       rateMeter
	bytesOut   atomic.Uint64
}

// rateMeter measures a stream's bit rate over windows of about rateWindow.
type rateMeter struct {
	at    time.Time // start of the current window
	bytes uint64    // bytes in it so far
	bps   float64   // the last whole window's rate
}

const rateWindow = 2 * time.Second

func (m *rateMeter) add(now time.Time, n int) {
	if m.at.IsZero() {
		m.at = now
	}
	if d := now.Sub(m.at); d >= rateWindow {
		m.bps = float64(m.bytes*8) / d.Seconds()
		m.at, m.bytes = now, 0
	}
	m.bytes += uint64(n)
}

// rate returns the bit rate, 0 when nothing came for two windows.
func (m *rateMeter) rate(now time.Time) float64 {
	if now.Sub(m.at) >= 2*rateWindow {
		return 0
	}
	return m.bps
}

// idle reports whether nothing holds the stream any more. Caller holds mu.
func (st *stream) idle() bool { return st.pub == nil && len(st.subs) == 0 }

// publish numbers seg, updates the late-joiner state and offers seg to every
// subscriber. It never waits for a subscriber. seg must not be modified by
// anyone afterwards.
func (st *stream) publish(p *Publisher, seg *Segment) error {
	slow, err := st.offer(p, seg)
	if err != nil {
		return err
	}
	if seg.Kind == KindInit || seg.Kind == KindMedia {
		st.hub.segments.Add(1)
	}
	st.hub.bridgeForward(p, seg)
	for _, sub := range slow {
		st.hub.slowClosed.Add(1)
		sub.end(ErrTooSlow)
	}
	return nil
}

// offer records seg and offers it to every subscriber, under mu (released
// by defer, so that a panic cannot leave it held: Publisher.contain), and
// returns the subscribers too slow to take it.
func (st *stream) offer(p *Publisher, seg *Segment) (slow []*Subscriber, err error) {
	now := time.Now()
	st.mu.Lock()
	defer st.mu.Unlock()
	if err := st.record(p, seg, now); err != nil {
		return nil, err
	}
	for _, sub := range st.subs {
		if !sub.offer(seg, now) {
			slow = append(slow, sub)
		}
	}
	st.slowClosed += uint64(len(slow))
	return slow, nil
}

// record numbers seg and keeps what a late joiner needs of it, or says why
// p may not publish it. Caller holds mu.
func (st *stream) record(p *Publisher, seg *Segment, now time.Time) error {
	if st.pub != p {
		return ErrClosed
	}
	switch seg.Kind {
	case KindStart:
		st.start = seg
		seg.Seq = st.seq
		return nil
	case KindEnd:
		seg.Seq = st.seq
		st.start = nil
		st.setInit(nil)
		st.resetGOP(false)
		return nil
	case KindInit:
		st.resetGOP(false)
		if err := st.setInit(seg); err != nil {
			return err
		}
		st.pendingDisc = st.hadInit
		st.hadInit = true
	case KindMedia:
		if st.init == nil {
			return errNoInit
		}
		if err := st.cache(seg); err != nil {
			return err
		}
		seg.Discontinuity = st.pendingDisc
		st.pendingDisc = false
	}
	st.seq++
	seg.Seq = st.seq
	st.segments++
	st.bytesIn += uint64(len(seg.Data))
	st.rate.add(now, len(seg.Data))
	return nil
}

// setInit makes seg (nil: none) the init a late joiner receives, within the
// hub's memory budget. Caller holds mu.
func (st *stream) setInit(seg *Segment) error {
	st.init = nil
	n := 0
	if seg != nil {
		n = len(seg.Data)
	}
	if err := st.held.resize(n+st.gopBytes, "the init segment"); err != nil {
		st.held.resize(st.gopBytes, "")
		return err
	}
	st.init = seg
	return nil
}

func (st *stream) initBytes() int {
	if st.init == nil {
		return 0
	}
	return len(st.init.Data)
}

// cache keeps media since the last keyframe for late joiners, within the
// configured bytes and the hub's memory budget. Caller holds mu.
func (st *stream) cache(seg *Segment) error {
	if seg.Keyframe {
		st.resetGOP(true)
	} else if !st.gopOK {
		return nil
	}
	if st.gopBytes+len(seg.Data) > st.hub.cfg.gopCacheBytes && len(st.gop) > 0 {
		// Too long a group of pictures: late joiners wait for the next keyframe.
		st.resetGOP(false)
		return nil
	}
	if err := st.held.resize(st.initBytes()+st.gopBytes+len(seg.Data), "the GOP cache"); err != nil {
		st.resetGOP(false)
		return err
	}
	st.gop = append(st.gop, seg)
	st.gopBytes += len(seg.Data)
	return nil
}

func (st *stream) resetGOP(ok bool) {
	clear(st.gop) // let the old segments go
	st.gop = st.gop[:0]
	st.gopBytes = 0
	st.gopOK = ok
	st.held.resize(st.initBytes(), "")
}

// join adds sub and queues what it needs to start at once: the session's
// Start, the init and the cached group of pictures. Without a cached
// keyframe it waits for the next one. Caller holds mu.
func (st *stream) join(sub *Subscriber) {
	now := time.Now() // what it gets at once is not late
	if st.start != nil {
		sub.queue.push(entry{seg: st.start})
	}
	if st.init != nil {
		sub.queue.push(entry{seg: st.init, at: now})
		sub.queued += len(st.init.Data)
	}
	if st.gopOK && len(st.gop) > 0 {
		for _, seg := range st.gop {
			sub.queue.push(entry{seg: seg, at: now})
			sub.queued += len(seg.Data)
		}
		sub.gotMedia = true
	} else {
		sub.waitKey = true
	}
	sub.index = len(st.subs)
	st.subs = append(st.subs, sub)
}

// remove takes sub out of subs, and reports whether it was there. Caller
// holds mu.
func (st *stream) remove(sub *Subscriber) bool {
	i := sub.index
	if i < 0 || i >= len(st.subs) || st.subs[i] != sub {
		return false
	}
	last := len(st.subs) - 1
	st.subs[i] = st.subs[last]
	st.subs[i].index = i
	st.subs[last] = nil
	st.subs = st.subs[:last]
	sub.index = -1
	return true
}

// viewers counts st's subscribers but its recorder (WithRecording): the
// subscribers every count the hub reports is of. Caller holds st.mu.
func (st *stream) viewers() int {
	if st.recording() {
		return len(st.subs) - 1
	}
	return len(st.subs)
}

// recording reports whether st's recorder is among its subscribers.
// Caller holds st.mu.
func (st *stream) recording() bool { return st.rec != nil && st.rec.index >= 0 }

// info describes the stream. Caller holds mu.
func (st *stream) info(now time.Time) StreamInfo {
	info := StreamInfo{
		Name:        st.name,
		Live:        st.pub != nil,
		Subscribers: st.viewers(),
		Recording:   st.recording(),
		BytesIn:     st.bytesIn,
		BytesOut:    st.bytesOut.Load(),
		Segments:    st.segments,
		Bitrate:     st.rate.rate(now),
		Drops:       st.drops,
		Skips:       st.skips,
		SlowClosed:  st.slowClosed,
		GOPBytes:    st.gopBytes,
	}
	if st.start != nil {
		info.MIME, info.Container = st.start.MIME, st.start.Container()
	}
	if st.pub != nil {
		info.PublisherID = st.pub.session.id
		info.Uptime = now.Sub(st.pubSince)
	}
	return info
}
