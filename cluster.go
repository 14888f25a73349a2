package relay

import (
	"context"
	"errors"
)

// A Cluster connects a Hub to hubs on other nodes, for example through a
// message bus (the module github.com/segrelay/relay/natsrelay is one). The
// hub calls it; it never blocks the hub's locks, but Claim may take a
// network round trip on the path of a new publisher.
//
// The hub calls it only for its own sessions: a publisher started with
// PublishRelayed (the segments of another node's publisher, fed in by the
// cluster) is neither claimed, released nor passed to Segment.
type Cluster interface {
	// Claim is called before a publisher takes stream on this hub. An
	// error refuses the publisher with it (wrap ErrStreamBusy for 409: the
	// stream has a publisher on another node). After a nil error the hub
	// calls Release exactly once, when the session ends or when the hub
	// refused the publisher for a reason of its own.
	Claim(stream string) error
	// Release gives up what Claim took.
	Release(stream string)
	// Segment is called with every segment of this hub's own publishers,
	// in order, Seq set, on the publisher's path once its subscribers have
	// it: it must not block. seg.Data is shared; do not modify it.
	Segment(stream string, seg Segment)
	// Interest is called when stream gains its first subscriber or loses
	// its last one. Calls for one stream may overtake each other: read
	// Hub.SubscriberCount for the state now. It must not block.
	Interest(stream string)
}

// clusterRef holds the hub's Cluster for an atomic.Pointer.
type clusterRef struct{ c Cluster }

// errClusterSet: SetCluster was called twice.
var errClusterSet = errors.New("relay: the hub has a cluster already")

// SetCluster connects the hub to c. Call it once, before the hub serves
// publishers: sessions that started earlier are not known to c.
func (h *Hub) SetCluster(c Cluster) error {
	if c == nil || !h.cluster.CompareAndSwap(nil, &clusterRef{c: c}) {
		return errClusterSet
	}
	return nil
}

func (h *Hub) clusterOf() Cluster {
	if r := h.cluster.Load(); r != nil {
		return r.c
	}
	return nil
}

// PublishRelayed is Publish for a cluster: it feeds this hub's subscribers
// with the segments of a publisher on another node (use WriteSegment). The
// session is not claimed through the hub's Cluster and its segments are not
// passed back to it, and it reports no events (EventPublish and
// EventUnpublish come from the publishing node's hub). It counts against
// WithMaxStreams like any publisher.
func (h *Hub) PublishRelayed(ctx context.Context, name, mime string) (*Publisher, error) {
	return h.publish(ctx, name, mime, true)
}

// clusterClaim asks the cluster for stream name (not for relayed
// publishers) and returns the function that gives it back.
func (h *Hub) clusterClaim(name string, relayed bool) (release func(), err error) {
	c := h.clusterOf()
	if c == nil || relayed {
		return func() {}, nil
	}
	if !validStreamName(name) {
		return nil, ErrBadStreamName
	}
	if h.isClosed() {
		return nil, ErrHubClosed
	}
	if err := c.Claim(name); err != nil {
		return nil, err
	}
	return func() { c.Release(name) }, nil
}

// clusterSegment passes a segment of p to the cluster.
func (h *Hub) clusterSegment(p *Publisher, seg *Segment) {
	if c := h.clusterOf(); c != nil && !p.relayed {
		c.Segment(p.stream.name, *seg)
	}
}

// clusterInterest tells the cluster that stream name gained its first
// subscriber or lost its last one.
func (h *Hub) clusterInterest(name string) {
	if c := h.clusterOf(); c != nil {
		c.Interest(name)
	}
}

// SubscriberCount returns how many subscribers stream name has now.
func (h *Hub) SubscriberCount(name string) int {
	n := 0
	h.withStream(name, func(st *stream) { n = len(st.subs) })
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
