package relayprom_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	relay "github.com/segrelay/relay"
	relayprom "github.com/segrelay/relay/prometheus"
)

// value gathers c and returns the value of series name (with the label
// stream=stream when stream is not ""), failing the test when it is absent.
func value(t *testing.T, c prometheus.Collector, name, stream string) float64 {
	t.Helper()
	v, ok := series(t, c, name, stream)
	if !ok {
		t.Fatalf("no series %s (stream %q)", name, stream)
	}
	return v
}

// series gathers c and returns the value of series name (with the label
// stream=stream when stream is not ""), and whether it was there.
func series(t *testing.T, c prometheus.Collector, name, stream string) (float64, bool) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := m.GetLabel()
			if (stream == "" && len(labels) == 0) ||
				(len(labels) == 1 && labels[0].GetName() == "stream" && labels[0].GetValue() == stream) {
				if m.GetCounter() != nil {
					return m.GetCounter().GetValue(), true
				}
				return m.GetGauge().GetValue(), true
			}
		}
	}
	return 0, false
}

// Every counter that the other tests only see at 0 (drops, skips, slow
// closes, dropped events) is made non-zero here, each with a value of its
// own, and sent bytes differ from received ones (two viewers): a series
// that exports the wrong figure shows (issue 24: figures whose tests only
// ever see zero, or all equal).
func TestFiguresThatAreNeitherZeroNorEqual(t *testing.T) {
	release := make(chan struct{})
	hub := relay.NewHub(relay.WithSubscriberQueueBytes(1000),
		relay.WithEvents(func(relay.Event) { <-release })) // takes one event, then holds the rest
	t.Cleanup(func() {
		close(release)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := hub.Shutdown(ctx); err != nil {
			t.Errorf("hub.Shutdown: %v", err)
		}
	})
	ctx := testCtx(t)
	var fast []*relay.Subscriber
	for range 2 {
		s, err := hub.Subscribe(ctx, "room1")
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		fast = append(fast, s)
	}
	slow, err := hub.Subscribe(ctx, "room1") // never reads
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	pub, err := hub.Publish(ctx, "room1", "video/webm")
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	drain := func() {
		t.Helper()
		for _, s := range fast {
			for {
				rctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
				_, err := s.Next(rctx)
				cancel()
				if err != nil {
					break
				}
			}
		}
	}
	write := func(seg relay.Segment) {
		t.Helper()
		if err := pub.WriteSegment(seg); err != nil {
			t.Fatal(err)
		}
		drain()
	}
	write(relay.Segment{Kind: relay.KindInit, Data: make([]byte, 100)})
	// Three times a keyframe and a delta of 600 bytes: the slow viewer's
	// queue (1,000 bytes, the init in it) overflows at each delta, drops
	// the keyframe and the delta (the third time, the keyframe only: it
	// is closed as too slow): 5 drops, 3 skips, 1 slow close.
	for range 3 {
		write(relay.Segment{Kind: relay.KindMedia, Keyframe: true, Data: make([]byte, 600)})
		write(relay.Segment{Kind: relay.KindMedia, Data: make([]byte, 600)})
	}
	// Events beyond the queue's bound are dropped.
	for range 2500 {
		s, err := hub.Subscribe(ctx, "other")
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	}

	st := hub.Stats()
	var info relay.StreamInfo
	for _, i := range hub.Streams() {
		if i.Name == "room1" {
			info = i
		}
	}
	if st.BytesIn != 3700 || st.BytesOut != 2*3700 || info.Drops != 5 || info.Skips != 3 || info.SlowClosed != 1 ||
		st.Drops != 5 || st.SlowClosed != 1 || st.EventsDropped < 100 {
		t.Fatalf("the hub's figures are not those this test is built on: %+v, %+v", st, info)
	}
	c := relayprom.New(hub)
	for _, w := range []struct {
		name, stream string
		want         float64
	}{
		{"segrelay_received_bytes_total", "", float64(st.BytesIn)},
		{"segrelay_sent_bytes_total", "", float64(st.BytesOut)},
		{"segrelay_dropped_segments_total", "", float64(st.Drops)},
		{"segrelay_slow_subscribers_closed_total", "", float64(st.SlowClosed)},
		{"segrelay_events_dropped_total", "", float64(st.EventsDropped)},
		{"segrelay_stream_received_bytes_total", "room1", float64(info.BytesIn)},
		{"segrelay_stream_sent_bytes_total", "room1", float64(info.BytesOut)},
		{"segrelay_stream_dropped_segments_total", "room1", float64(info.Drops)},
		{"segrelay_stream_subscriber_skips_total", "room1", float64(info.Skips)},
		{"segrelay_stream_slow_subscribers_closed_total", "room1", float64(info.SlowClosed)},
		{"segrelay_stream_subscribers", "room1", 2},
	} {
		if got := value(t, c, w.name, w.stream); got != w.want {
			t.Errorf("%s{stream=%q} = %v, want %v", w.name, w.stream, got, w.want)
		}
	}
}
