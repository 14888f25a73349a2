package natsrelay

import (
	"strconv"
	"sync"

	"github.com/nats-io/nats.go"
	relay "github.com/segrelay/relay"
)

// A sender takes the segments of the hub's own publishers off their path
// (push never blocks) and publishes them to NATS on a goroutine of its own,
// in order. While a stream is live it also answers the catch-up requests
// of other nodes.
type sender struct {
	b      *Bridge
	notify chan struct{}
	done   chan struct{}

	mu      sync.Mutex
	closed  bool
	queue   []outItem
	bytes   int
	sessN   uint64
	streams map[string]*outStream

	responders map[string]*nats.Subscription // the run goroutine's
}

type outItem struct {
	stream, session string
	seg             relay.Segment
}

// outStream is the sending state of one live stream of this hub.
type outStream struct {
	session string // the publisher session, unique in the cluster
	skip    bool   // media dropped: skip to the next keyframe
}

func (s *sender) init(b *Bridge) {
	s.b = b
	s.notify = make(chan struct{}, 1)
	s.done = make(chan struct{})
	s.streams = make(map[string]*outStream)
	s.responders = make(map[string]*nats.Subscription)
}

// push queues seg of stream. Media that would overflow the queue, or that
// comes while NATS is unreachable, is dropped up to the next keyframe:
// remote nodes see a gap in Seq and catch up.
func (s *sender) push(stream string, seg relay.Segment) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	st := s.streams[stream]
	if st == nil {
		st = &outStream{}
		s.streams[stream] = st
	}
	limit := s.b.opts.SendQueueBytes
	switch seg.Kind {
	case relay.KindStart:
		s.sessN++
		st.session = s.b.opts.NodeID + "-" + strconv.FormatUint(s.sessN, 10)
		st.skip = false
	case relay.KindMedia:
		if st.skip && !seg.Keyframe {
			s.b.stats.dropped.Add(1)
			return
		}
		st.skip = false
		if s.bytes+len(seg.Data) > limit || !s.b.nc.IsConnected() {
			st.skip = true
			s.b.stats.dropped.Add(1)
			return
		}
	case relay.KindInit:
		if s.bytes+len(seg.Data) > 2*limit {
			st.skip = true
			s.b.stats.dropped.Add(1)
			return
		}
	}
	s.queue = append(s.queue, outItem{stream: stream, session: st.session, seg: seg})
	s.bytes += len(seg.Data)
	if seg.Kind == relay.KindEnd {
		delete(s.streams, stream)
	}
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// session returns the live session of stream, "" when there is none.
func (s *sender) session(stream string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.streams[stream]; st != nil {
		return st.session
	}
	return ""
}

func (s *sender) close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.done)
	}
	s.mu.Unlock()
}

func (s *sender) run() {
	defer s.b.wg.Done()
	defer func() {
		for _, sub := range s.responders {
			sub.Unsubscribe()
		}
	}()
	var batch []outItem
	for {
		select {
		case <-s.done:
			return
		case <-s.notify:
		}
		s.mu.Lock()
		batch, s.queue = s.queue, batch[:0]
		s.bytes = 0
		s.mu.Unlock()
		for i := range batch {
			s.send(&batch[i])
			batch[i] = outItem{}
		}
	}
}

// send publishes one queued segment, and starts or stops answering
// catch-up requests at a session's Start and End.
func (s *sender) send(it *outItem) {
	b := s.b
	name := encodeName(it.stream)
	switch it.seg.Kind {
	case relay.KindStart:
		if s.responders[it.stream] == nil {
			stream := it.stream
			sub, err := b.nc.Subscribe(b.opts.Prefix+".gop."+name, func(m *nats.Msg) { s.answer(stream, m) })
			if err != nil {
				b.opts.Logger.Warn("natsrelay: cannot answer catch-up requests", "stream", stream, "err", err)
			} else {
				s.responders[stream] = sub
			}
		}
	case relay.KindEnd:
		if sub := s.responders[it.stream]; sub != nil {
			sub.Unsubscribe()
			delete(s.responders, it.stream)
		}
	}
	subject := b.opts.Prefix + ".seg." + name
	for _, m := range segmentMsgs(subject, b.opts.NodeID, it.session, it.seg, b.nc.MaxPayload()) {
		if err := b.nc.PublishMsg(m); err != nil {
			b.stats.dropped.Add(1)
			return
		}
		b.stats.msgsOut.Add(1)
		b.stats.bytesOut.Add(uint64(len(m.Data)))
	}
}

// answer sends a catch-up: the live session's Start, init and media since
// the last keyframe, then a done message with the stream's latest Seq; or,
// asked for the Start alone (Bridge.Live), that Start.
// Only a node with a live session of the stream subscribes to the request
// subject, so a requester with no answer knows there is none.
func (s *sender) answer(stream string, m *nats.Msg) {
	if m.Reply == "" {
		return
	}
	b := s.b
	session := s.session(stream)
	segs, seq := b.hub.Snapshot(stream)
	if session == "" {
		segs = nil
	}
	if m.Header.Get(hKind) == kindString(relay.KindStart) {
		// Bridge.Live: is it live, and its MIME; no answer if not.
		if len(segs) > 0 {
			for _, r := range segmentMsgs(m.Reply, b.opts.NodeID, session, segs[0], b.nc.MaxPayload()) {
				b.nc.PublishMsg(r)
			}
		}
		return
	}
	for _, seg := range segs {
		for _, r := range segmentMsgs(m.Reply, b.opts.NodeID, session, seg, b.nc.MaxPayload()) {
			if b.nc.PublishMsg(r) != nil {
				return
			}
		}
	}
	done := nats.NewMsg(m.Reply)
	done.Header.Set(hNode, b.opts.NodeID)
	done.Header.Set(hSession, session)
	done.Header.Set(hKind, kindDone)
	done.Header.Set(hSeq, strconv.FormatUint(seq, 10))
	b.nc.PublishMsg(done)
}
