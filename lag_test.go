package relay

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// slowLink is a TCP proxy in front of addr that passes the server's bytes on
// at rate bytes a second, reading them in small pieces through a small
// receive buffer: what it has taken in but not passed on stays under 32 KB,
// so the lateness it causes sits in the server's send queue, where a
// router's queue on a real weak link puts it.
func slowLink(t *testing.T, addr string, rate int) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			up.(*net.TCPConn).SetReadBuffer(16 << 10)
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(up, c); up.Close() }()
			go func() {
				defer wg.Done()
				defer c.Close()
				defer up.Close()
				buf := make([]byte, 4<<10)
				start, sent := time.Now(), 0
				for {
					n, err := up.Read(buf)
					if n > 0 {
						if _, werr := c.Write(buf[:n]); werr != nil {
							return
						}
						sent += n
						time.Sleep(time.Until(start.Add(time.Duration(sent) * time.Second / time.Duration(rate))))
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// A viewer on a link at half the stream's rate stays within the time bound
// of live (WithSubscriberMaxLag): its queue skips to keyframes, and its
// writer does not bury the lateness in the kernel's buffers. Without the
// bound, the same viewer falls further behind every second. Lateness is
// measured at the viewer, from the send time each segment carries.
func TestWeakViewerStaysWithinTheLagBound(t *testing.T) {
	const (
		segBytes = 20 << 10 // 10 a second: 1.6 Mbit/s
		linkRate = 100 << 10
		run      = 10 * time.Second
	)
	worst := func(t *testing.T, opts ...Option) (lag time.Duration, discs int) {
		e := newEnv(t, opts...)
		u, err := url.Parse(e.srv.URL)
		require.NoError(t, err)
		weak := slowLink(t, u.Host, linkRate)
		sub, err := DialSubscribe(testCtx(t), "ws://"+weak+"/live/s/subscribe", nil)
		require.NoError(t, err)
		t.Cleanup(func() { sub.conn.CloseNow() })
		ctx := testCtx(t)
		pub, err := e.hub.Publish(ctx, "s", "x")
		require.NoError(t, err)
		defer pub.Close()
		require.NoError(t, pub.WriteSegment(Segment{Kind: KindInit, Data: []byte("init")}))
		done := make(chan struct{})
		go func() {
			defer close(done)
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for i := 0; time.Duration(i)*100*time.Millisecond < run; i++ {
				data := make([]byte, segBytes)
				binary.BigEndian.PutUint64(data, uint64(time.Now().UnixNano()))
				if pub.WriteSegment(Segment{Kind: KindMedia, Keyframe: i%5 == 0, Data: data}) != nil {
					return
				}
				<-tick.C
			}
		}()
		from := time.Now().Add(2 * time.Second) // the link's first queue fills
		for {
			readCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
			seg, err := sub.Next(readCtx)
			cancel()
			if err != nil {
				break // the publisher stopped long enough ago
			}
			if seg.Kind != KindMedia {
				continue
			}
			if seg.Discontinuity {
				discs++
			}
			if now := time.Now(); now.After(from) {
				lag = max(lag, now.Sub(time.Unix(0, int64(binary.BigEndian.Uint64(seg.Data)))))
			}
			select {
			case <-done:
				return lag, discs
			default:
			}
		}
		<-done
		return lag, discs
	}
	t.Run("bounded", func(t *testing.T) {
		t.Parallel()
		lag, discs := worst(t, WithSubscriberMaxLag(1500*time.Millisecond))
		t.Logf("worst lateness %v, %d discontinuities", lag, discs)
		// The bound, plus half of it in the kernel, plus a segment on the link.
		assert.Less(t, lag, 3*time.Second, "the viewer stays within the bound")
		assert.Positive(t, discs, "it skipped to keyframes")
	})
	t.Run("unbounded", func(t *testing.T) {
		t.Parallel()
		lag, _ := worst(t, WithSubscriberMaxLag(0))
		t.Logf("worst lateness %v", lag)
		assert.Greater(t, lag, 3*time.Second, "without a time bound the same link falls behind (the test can see the difference)")
	})
}

// On a link that keeps up, the time bound costs nothing: every segment
// arrives, none with Discontinuity.
func TestLagBoundCostsAGoodViewerNothing(t *testing.T) {
	e := newEnv(t, WithSubscriberMaxLag(200*time.Millisecond))
	sub := e.subscribe("s")
	ctx := testCtx(t)
	pub, err := e.hub.Publish(ctx, "s", "x")
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.WriteSegment(Segment{Kind: KindInit, Data: []byte("init")}))
	// A burst, as after a publisher's stalled uplink: all arrive at once.
	for i := range 50 {
		require.NoError(t, pub.WriteSegment(Segment{Kind: KindMedia, Keyframe: i%10 == 0, Data: []byte(strings.Repeat("m", 1000))}))
	}
	n := 0
	for n < 50 {
		seg, err := sub.Next(ctx)
		require.NoError(t, err)
		if seg.Kind == KindMedia {
			assert.False(t, seg.Discontinuity, "segment %d", seg.Seq)
			n++
		}
	}
	assert.Zero(t, e.hub.Stats().Drops)
}

// A late joiner's cached group of pictures counts from when it joined, not
// from when it was published: however old the last keyframe, the joiner
// gets all of it. (White box: a connection's subscriber without its
// connection, so that nothing drains the queue before the check.)
func TestLagBoundSparesALateJoinersCache(t *testing.T) {
	hub := NewHub(WithSubscriberMaxLag(100 * time.Millisecond))
	ctx := testCtx(t)
	defer hub.Shutdown(ctx)
	pub, err := hub.Publish(ctx, "s", "x")
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.WriteSegment(Segment{Kind: KindInit, Data: []byte("init")}))
	for i := range 5 {
		require.NoError(t, pub.WriteSegment(Segment{Kind: KindMedia, Keyframe: i == 0, Data: []byte("old")}))
	}
	time.Sleep(300 * time.Millisecond) // the cache is older than the bound
	sub, err := hub.subscribe("s", true)
	require.NoError(t, err)
	defer hub.connGone()
	defer sub.Close()
	require.NoError(t, pub.WriteSegment(Segment{Kind: KindMedia, Data: []byte("new")}))
	var seqs []uint64
	for len(seqs) < 6 {
		seg, err := sub.Next(ctx)
		require.NoError(t, err)
		if seg.Kind == KindMedia {
			assert.False(t, seg.Discontinuity)
			seqs = append(seqs, seg.Seq)
		}
	}
	assert.Equal(t, []uint64{2, 3, 4, 5, 6, 7}, seqs)
}
