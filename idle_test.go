package relay

import (
	"context"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/segrelay/relay/internal/webm/webmtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The publisher idle timeout counts from the last message, not from the
// start: a publisher that keeps sending stays well past it, and is closed
// with 1008 once it stops.
//
// Timing assumption: neither the test client nor the hub's connection
// goroutines are starved for 2 s (the client sends every 100 ms against a
// 2 s timeout; a 1 s timeout flaked once in 10 runs beside two CPU hogs and
// a browser test); a timer that is not reset on messages closes the
// publisher after 2 s, less than half of the 5 s it is active.
func TestPublisherActivePastIdleTimeout(t *testing.T) {
	const timeout, every, active = 2 * time.Second, 100 * time.Millisecond, 5 * time.Second
	for _, mode := range []string{ModeStream, ModeSegments} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, WithPublisherIdleTimeout(timeout), WithPublisherMinBytes(1))
			l := webmtest.Build(webmtest.Spec{Clusters: 60, Frames: 1, FrameBytes: 100})
			pub := e.publish("s", PublishStart{MIME: l.MIME, Mode: mode})
			ctx := testCtx(t)
			if mode == ModeSegments {
				require.NoError(t, pub.SendSegment(ctx, Segment{Kind: KindInit, Data: l.Data[:l.InitLen]}))
			} else {
				require.NoError(t, pub.Send(ctx, l.Data[:l.InitLen]))
			}
			begin := time.Now()
			last, longest := begin, time.Duration(0) // the longest gap between two sends
			for i := 0; time.Since(begin) < active; i++ {
				require.Less(t, i, len(l.Clusters), "more messages than the sleeps allow")
				c := l.Clusters[i]
				var err error
				if mode == ModeSegments {
					err = pub.SendSegment(ctx, Segment{Kind: KindMedia, Keyframe: true, Data: l.Data[c.Offset : c.Offset+c.Len]})
				} else {
					err = pub.Send(ctx, l.Data[c.Offset:c.Offset+c.Len])
				}
				require.NoError(t, err, "message %d, %v after start", i, time.Since(begin))
				longest = max(longest, time.Since(last))
				last = time.Now()
				time.Sleep(every)
			}
			select {
			case <-pub.Done():
				t.Fatalf("publisher closed while active (longest gap between sends %v): %v", longest, pub.Err())
			default:
			}
			assert.Equal(t, 1, e.hub.Stats().Publishers)

			// Now silent: closed for being idle.
			select {
			case <-pub.Done():
			case <-ctx.Done():
				t.Fatal("an idle publisher was not closed")
			}
			assert.Equal(t, websocket.StatusPolicyViolation, websocket.CloseStatus(pub.Err()), "%v", pub.Err())
		})
	}
}

// A short idle timeout closes a publisher that never sent anything after
// its start, in segments mode too, and frees the stream.
func TestPublisherIdleTimeoutFreesStream(t *testing.T) {
	e := newEnv(t, WithPublisherIdleTimeout(100*time.Millisecond))
	pub := e.publish("s", PublishStart{MIME: "x", Mode: ModeSegments})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	select {
	case <-pub.Done():
	case <-ctx.Done():
		t.Fatal("not closed")
	}
	assert.Equal(t, websocket.StatusPolicyViolation, websocket.CloseStatus(pub.Err()), "%v", pub.Err())
	waitFor(t, "the stream to be free", func() bool { return e.hub.Stats().Streams == 0 })
	e.publish("s", PublishStart{MIME: "x"})
}
