package relay

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeBridge records the hub's calls; busy streams are refused.
type fakeBridge struct {
	mu       sync.Mutex
	busy     map[string]bool
	claims   []string
	releases []string
	segs     []Segment
	interest []string
}

func (c *fakeBridge) Claim(stream string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.busy[stream] {
		return fmt.Errorf("%w: on node B", ErrStreamBusy)
	}
	c.claims = append(c.claims, stream)
	return nil
}

func (c *fakeBridge) Release(stream string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.releases = append(c.releases, stream)
}

func (c *fakeBridge) Forward(stream string, seg Segment) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.segs = append(c.segs, seg)
}

func (c *fakeBridge) Interest(stream string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.interest = append(c.interest, stream)
}

func (c *fakeBridge) Live(ctx context.Context, stream string) (string, bool) { return "", false }

func (c *fakeBridge) snapshot() (claims, releases []string, segs []Segment, interest []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.claims...), append([]string(nil), c.releases...), append([]Segment(nil), c.segs...), append([]string(nil), c.interest...)
}

func TestBridgeClaimRefusesWith409(t *testing.T) {
	e := newEnv(t)
	c := &fakeBridge{busy: map[string]bool{"taken": true}}
	require.NoError(t, e.hub.SetBridge(c))
	require.ErrorIs(t, e.hub.SetBridge(c), errBridgeSet)

	_, err := DialPublish(testCtx(t), e.url("taken/publish"), PublishStart{MIME: "video/webm", Mode: ModeSegments}, nil)
	var he *HandshakeError
	require.ErrorAs(t, err, &he)
	assert.Equal(t, http.StatusConflict, he.Status)
	assert.ErrorIs(t, err, ErrStreamBusy)
	assert.Contains(t, he.Body, "on node B")

	_, err = e.hub.Publish(testCtx(t), "taken", "video/webm")
	assert.ErrorIs(t, err, ErrStreamBusy)

	// A relayed publisher is not claimed: the bridge feeds it.
	rp, err := e.hub.PublishRelayed(testCtx(t), "taken", "video/webm")
	require.NoError(t, err)
	require.NoError(t, rp.WriteSegment(Segment{Kind: KindInit, Data: []byte("init")}))
	require.NoError(t, rp.Close())
	claims, releases, segs, _ := c.snapshot()
	assert.Empty(t, claims)
	assert.Empty(t, releases)
	assert.Empty(t, segs, "a relayed publisher's segments do not go back to the bridge")
}

func TestBridgeReleaseOncePerClaim(t *testing.T) {
	e := newEnv(t, WithMaxStreams(1))
	c := &fakeBridge{}
	require.NoError(t, e.hub.SetBridge(c))

	pub := e.publish("one", PublishStart{MIME: "video/webm", Mode: ModeSegments})
	waitFor(t, "the publisher", func() bool { return e.hub.Stats().Publishers == 1 })
	// Refused by the hub after the bridge agreed: released at once.
	_, err := e.hub.Publish(testCtx(t), "two", "video/webm")
	require.ErrorIs(t, err, ErrTooManyStreams)
	claims, releases, _, _ := c.snapshot()
	assert.Equal(t, []string{"one", "two"}, claims)
	assert.Equal(t, []string{"two"}, releases)

	require.NoError(t, pub.Close())
	waitFor(t, "the release", func() bool { _, r, _, _ := c.snapshot(); return len(r) == 2 })
	_, releases, _, _ = c.snapshot()
	assert.Equal(t, []string{"two", "one"}, releases)
}

func TestBridgeForwardsInOrderAndInterest(t *testing.T) {
	e := newEnv(t)
	c := &fakeBridge{}
	require.NoError(t, e.hub.SetBridge(c))

	sub := e.subscribe("room")
	waitFor(t, "interest", func() bool { _, _, _, i := c.snapshot(); return len(i) == 1 })
	assert.Equal(t, 1, e.hub.SubscriberCount("room"))
	sub2 := e.subscribe("room")
	waitFor(t, "two subscribers", func() bool { return e.hub.SubscriberCount("room") == 2 })

	pub := e.publish("room", PublishStart{MIME: "video/webm", Mode: ModeSegments})
	ctx := testCtx(t)
	require.NoError(t, pub.SendSegment(ctx, Segment{Kind: KindInit, Data: []byte("init")}))
	for i := range 5 {
		require.NoError(t, pub.SendSegment(ctx, Segment{Kind: KindMedia, Keyframe: i == 0 || i == 3, Data: []byte{byte(i)}}))
	}
	waitFor(t, "the segments", func() bool { _, _, s, _ := c.snapshot(); return len(s) == 7 })

	segs, seq := e.hub.Snapshot("room")
	require.Len(t, segs, 4, "start, init, and the GOP since keyframe 3")
	assert.Equal(t, []Kind{KindStart, KindInit, KindMedia, KindMedia}, []Kind{segs[0].Kind, segs[1].Kind, segs[2].Kind, segs[3].Kind})
	assert.Equal(t, []byte{3}, segs[2].Data)
	assert.Equal(t, uint64(5), segs[2].Seq)
	assert.True(t, segs[2].Keyframe)
	assert.Equal(t, uint64(6), seq)

	require.NoError(t, pub.Close())
	waitFor(t, "the end", func() bool { _, _, s, _ := c.snapshot(); return len(s) == 8 })
	_, _, got, _ := c.snapshot()
	assert.Equal(t, KindStart, got[0].Kind)
	assert.Equal(t, "video/webm", got[0].MIME)
	for i, seg := range got[1:7] {
		assert.Equal(t, uint64(i+1), seg.Seq)
	}
	assert.Equal(t, KindEnd, got[7].Kind)
	segs, _ = e.hub.Snapshot("room")
	assert.Empty(t, segs, "no live session")

	// The interest ends with the last subscriber.
	require.NoError(t, sub.Close())
	require.NoError(t, sub2.Close())
	waitFor(t, "no interest", func() bool { _, _, _, i := c.snapshot(); return len(i) == 2 })
	assert.Equal(t, 0, e.hub.SubscriberCount("room"))

	// Hub refuses bad names before asking the bridge.
	_, err := e.hub.Publish(ctx, ".bad", "")
	assert.True(t, errors.Is(err, ErrBadStreamName))
}

func TestBridgeRelayedPublisherReportsNoEvents(t *testing.T) {
	var mu sync.Mutex
	var kinds []EventKind
	e := newEnv(t, WithEvents(func(ev Event) {
		mu.Lock()
		kinds = append(kinds, ev.Kind)
		mu.Unlock()
	}))
	rp, err := e.hub.PublishRelayed(testCtx(t), "room", "video/webm")
	require.NoError(t, err)
	require.NoError(t, rp.Close())
	p, err := e.hub.Publish(testCtx(t), "room", "video/webm")
	require.NoError(t, err)
	require.NoError(t, p.Close())
	waitFor(t, "the events", func() bool { mu.Lock(); defer mu.Unlock(); return len(kinds) == 2 })
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []EventKind{EventPublish, EventUnpublish}, kinds, "only the hub's own publisher")
}
