package relay

import (
	"maps"
	"sort"
	"time"
)

// The hub's read-only queries: what an operator's page, a metrics exporter
// or a Bridge reads.

// Stats returns a snapshot of the hub's counters.
func (h *Hub) Stats() Stats {
	s := Stats{
		BytesIn:    h.bytesIn.Load(),
		BytesOut:   h.bytesOut.Load(),
		Segments:   h.segments.Load(),
		Drops:      h.drops.Load(),
		SlowClosed: h.slowClosed.Load(),
		Held:       h.budget.held.Load(),

		EventsDropped: h.ev.dropped.Load(),
	}
	h.refusedMu.Lock()
	if len(h.refusedBy) > 0 {
		s.Refused = maps.Clone(h.refusedBy)
	}
	h.refusedMu.Unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	s.Streams = len(h.streams)
	for _, st := range h.streams {
		st.mu.Lock()
		if st.pub != nil {
			s.Publishers++
		}
		s.Subscribers += st.viewers()
		st.mu.Unlock()
	}
	return s
}

// Streams lists the hub's streams, sorted by name, with their figures.
func (h *Hub) Streams() []StreamInfo {
	now := time.Now()
	h.mu.Lock()
	list := make([]StreamInfo, 0, len(h.streams))
	for _, st := range h.streams {
		st.mu.Lock()
		list = append(list, st.info(now))
		st.mu.Unlock()
	}
	h.mu.Unlock()
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	return list
}

// SubscriberCount returns how many subscribers stream name has now (as in
// Stats: the recorder is not one).
func (h *Hub) SubscriberCount(name string) int {
	n := 0
	h.withStream(name, func(st *stream) { n = st.viewers() })
	return n
}

// withStream runs fn with stream name locked, if the stream exists.
func (h *Hub) withStream(name string, fn func(st *stream)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.streams[name]
	if st == nil {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	fn(st)
}

// Snapshot returns what a subscriber joining stream name now would receive
// first: the live session's Start, its init and the media since the last
// keyframe (none when the cache holds no keyframe), with their Seq; and the
// Seq of the stream's latest segment. It returns no segments when the
// stream has no live session.
func (h *Hub) Snapshot(name string) (segs []Segment, seq uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.streams[name]
	if st == nil {
		return nil, 0
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.start == nil || st.init == nil {
		return nil, st.seq
	}
	segs = append(segs, *st.start, *st.init)
	if st.gopOK {
		for _, seg := range st.gop {
			segs = append(segs, *seg)
		}
	}
	return segs, st.seq
}
