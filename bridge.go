package relay

import (
	"context"
	"errors"
	"time"
)

// A Bridge connects a Hub to hubs on other nodes, for example through a
// message bus (the module github.com/segrelay/relay/natsrelay is one). The
// hub calls it; it never blocks the hub's locks, but Claim may take a
// network round trip on the path of a new publisher.
//
// The hub calls it only for its own sessions: a publisher started with
// PublishRelayed (the segments of another node's publisher, fed in by the
// bridge) is neither claimed, released nor forwarded.
type Bridge interface {
	// Claim is called before a publisher takes stream on this hub. An
	// error refuses the publisher with it (wrap ErrStreamBusy for 409: the
	// stream has a publisher on another node). After a nil error the hub
	// calls Release exactly once, when the session ends or when the hub
	// refused the publisher for a reason of its own.
	Claim(stream string) error
	// Release gives up what Claim took.
	Release(stream string)
	// Forward is called with every segment of this hub's own publishers,
	// in order, Seq set, on the publisher's path once its subscribers have
	// it: it must not block. seg.Data is shared; do not modify it.
	Forward(stream string, seg Segment)
	// Interest is called when stream gains its first subscriber or loses
	// its last one. Calls for one stream may overtake each other: read
	// Hub.SubscriberCount for the state now. It must not block.
	Interest(stream string)
	// Live says whether stream has a live publisher on another node, and
	// its session's MIME type. A HEAD of live.webm or live.mp4 asks it for
	// a stream that is not live on this hub (a GET subscribes, and the
	// bridge relays the stream for it). It may take a network round trip,
	// bounded by ctx.
	Live(ctx context.Context, stream string) (mime string, ok bool)
}

// bridgeLiveTimeout bounds a HEAD's question to the bridge.
const bridgeLiveTimeout = time.Second

// bridgeLive asks the bridge whether stream is live on another node.
func (h *Hub) bridgeLive(ctx context.Context, stream string) (mime string, ok bool) {
	c := h.bridgeOf()
	if c == nil {
		return "", false
	}
	ctx, cancel := context.WithTimeout(ctx, bridgeLiveTimeout)
	defer cancel()
	return c.Live(ctx, stream)
}

// bridgeRef holds the hub's Bridge for an atomic.Pointer.
type bridgeRef struct{ c Bridge }

// errBridgeSet: SetBridge was called twice.
var errBridgeSet = errors.New("relay: the hub has a bridge already")

// SetBridge connects the hub to c. Call it once, before the hub serves
// publishers: sessions that started earlier are not known to c.
func (h *Hub) SetBridge(c Bridge) error {
	if c == nil || !h.bridge.CompareAndSwap(nil, &bridgeRef{c: c}) {
		return errBridgeSet
	}
	return nil
}

func (h *Hub) bridgeOf() Bridge {
	if r := h.bridge.Load(); r != nil {
		return r.c
	}
	return nil
}

// PublishRelayed is Publish for a Bridge: it feeds this hub's subscribers
// with the segments of a publisher on another node (use WriteSegment). The
// session is not claimed through the hub's Bridge and its segments are not
// passed back to it, and it reports no events (EventPublish and
// EventUnpublish come from the publishing node's hub). It counts against
// WithMaxStreams like any publisher.
func (h *Hub) PublishRelayed(ctx context.Context, name, mime string) (*Publisher, error) {
	return h.openPublisher(ctx, name, mime, true)
}

// bridgeClaim asks the bridge for stream name (not for relayed
// publishers) and returns the function that gives it back.
func (h *Hub) bridgeClaim(name string, relayed bool) (release func(), err error) {
	c := h.bridgeOf()
	if c == nil || relayed {
		return func() {}, nil
	}
	if !validStreamName(name) {
		return nil, ErrBadStreamName
	}
	if h.shuttingDown() {
		return nil, ErrHubClosed
	}
	if err := c.Claim(name); err != nil {
		return nil, err
	}
	return func() { c.Release(name) }, nil
}

// bridgeForward passes a segment of p to the bridge.
func (h *Hub) bridgeForward(p *Publisher, seg *Segment) {
	if c := h.bridgeOf(); c != nil && !p.relayed {
		c.Forward(p.stream.name, *seg)
	}
}

// bridgeInterest tells the bridge that stream name gained its first
// subscriber or lost its last one.
func (h *Hub) bridgeInterest(name string) {
	if c := h.bridgeOf(); c != nil {
		c.Interest(name)
	}
}
