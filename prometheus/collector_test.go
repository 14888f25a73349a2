package relayprom_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	relay "github.com/segrelay/relay"
	relayprom "github.com/segrelay/relay/prometheus"
	"go.uber.org/goleak"
)

// Every test that opens connections must leave no goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newHub returns a Hub mounted under /live/ of a real HTTP server on
// loopback, and the WebSocket URL of that mount point. Cleanup shuts both
// down.
func newHub(t *testing.T) (*relay.Hub, string) {
	t.Helper()
	hub := relay.NewHub()
	mux := http.NewServeMux()
	mux.Handle("/live/", http.StripPrefix("/live", hub))
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := hub.Shutdown(ctx); err != nil {
			t.Errorf("hub.Shutdown: %v", err)
		}
		srv.Close()
	})
	return hub, "ws" + strings.TrimPrefix(srv.URL, "http") + "/live/"
}

// Names of the per-stream series, to count or filter them.
var streamSeries = []string{
	"segrelay_stream_live",
	"segrelay_stream_subscribers",
	"segrelay_stream_publisher_uptime_seconds",
	"segrelay_stream_received_bytes_total",
	"segrelay_stream_sent_bytes_total",
	"segrelay_stream_segments_total",
	"segrelay_stream_publish_rate_bytes_per_second",
	"segrelay_stream_dropped_segments_total",
	"segrelay_stream_subscriber_skips_total",
	"segrelay_stream_slow_subscribers_closed_total",
	"segrelay_stream_gop_cache_bytes",
}

// Names of the hub-wide series.
var hubSeries = []string{
	"segrelay_streams",
	"segrelay_publishers",
	"segrelay_subscribers",
	"segrelay_held_bytes",
	"segrelay_received_bytes_total",
	"segrelay_sent_bytes_total",
	"segrelay_segments_total",
	"segrelay_dropped_segments_total",
	"segrelay_slow_subscribers_closed_total",
	"segrelay_refused_requests_total",
	"segrelay_events_dropped_total",
	"segrelay_streams_omitted",
}

// without returns names minus the ones given.
func without(names []string, drop ...string) []string {
	var out []string
	for _, n := range names {
		if !slices.Contains(drop, n) {
			out = append(out, n)
		}
	}
	return out
}

// A publisher and a subscriber over WebSocket, and a second publisher
// refused with 409: every figure the hub keeps shows up under its name.
func TestTraffic(t *testing.T) {
	hub, url := newHub(t)
	ctx := testCtx(t)
	sub, err := relay.DialSubscribe(ctx, url+"room1/subscribe", nil)
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	defer sub.Close()
	pub, err := relay.DialPublish(ctx, url+"room1/publish", relay.PublishStart{MIME: "video/webm", Mode: relay.ModeSegments}, nil)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	defer pub.Close()
	// 100 + 1,000 + 500 + 2,000 = 3,600 bytes; the GOP cache holds the
	// last keyframe's segment: 2,000 bytes.
	sent := []relay.Segment{
		{Kind: relay.KindInit, Data: make([]byte, 100)},
		{Kind: relay.KindMedia, Keyframe: true, Data: make([]byte, 1000)},
		{Kind: relay.KindMedia, Data: make([]byte, 500)},
		{Kind: relay.KindMedia, Keyframe: true, Data: make([]byte, 2000)},
	}
	for _, seg := range sent {
		if err := pub.SendSegment(ctx, seg); err != nil {
			t.Fatalf("send %s: %v", seg.Kind, err)
		}
	}
	_, err = relay.DialPublish(ctx, url+"room1/publish", relay.PublishStart{MIME: "video/webm"}, nil)
	var he *relay.HandshakeError
	if !errors.As(err, &he) || he.Status != http.StatusConflict {
		t.Fatalf("second publisher: got %v, want a HandshakeError with 409", err)
	}
	// The subscriber has read everything once it has the last segment:
	// the hub counts bytes out as it hands them over.
	for range len(sent) + 1 { // Start, then the segments
		if _, err := sub.Next(ctx); err != nil {
			t.Fatalf("subscriber: %v", err)
		}
	}

	c := relayprom.New(hub)
	// Held bytes include the publisher's read buffer, whose size is the
	// hub's business: take the hub's own figure.
	held := hub.Stats().Held
	if held < 2100 {
		t.Errorf("held %d bytes, want at least the init and the GOP cache (2,100)", held)
	}
	want := `
# HELP segrelay_streams Streams that have a publisher or subscribers.
# TYPE segrelay_streams gauge
segrelay_streams 1
# HELP segrelay_publishers Live publishers, one per live stream.
# TYPE segrelay_publishers gauge
segrelay_publishers 1
# HELP segrelay_subscribers Subscribers (viewers), in-process, WebSocket and live.webm; recorders are not counted.
# TYPE segrelay_subscribers gauge
segrelay_subscribers 1
# HELP segrelay_held_bytes Bytes held on behalf of publishers (inits, GOP caches, segments being received), counted against the hub's memory budget.
# TYPE segrelay_held_bytes gauge
segrelay_held_bytes ` + strconv.FormatInt(held, 10) + `
# HELP segrelay_received_bytes_total Media bytes accepted from publishers.
# TYPE segrelay_received_bytes_total counter
segrelay_received_bytes_total 3600
# HELP segrelay_sent_bytes_total Media bytes handed to subscribers, all of them together.
# TYPE segrelay_sent_bytes_total counter
segrelay_sent_bytes_total 3600
# HELP segrelay_segments_total Init and media segments published.
# TYPE segrelay_segments_total counter
segrelay_segments_total 4
# HELP segrelay_dropped_segments_total Media segments skipped for slow subscribers, one per subscriber per segment.
# TYPE segrelay_dropped_segments_total counter
segrelay_dropped_segments_total 0
# HELP segrelay_slow_subscribers_closed_total Subscribers closed because they were too slow (close code 1013).
# TYPE segrelay_slow_subscribers_closed_total counter
segrelay_slow_subscribers_closed_total 0
# HELP segrelay_refused_requests_total Requests refused before the WebSocket upgrade, by HTTP status.
# TYPE segrelay_refused_requests_total counter
segrelay_refused_requests_total{status="409"} 1
# HELP segrelay_events_dropped_total Events dropped because the WithEvents function was too slow to take them.
# TYPE segrelay_events_dropped_total counter
segrelay_events_dropped_total 0
# HELP segrelay_streams_omitted Streams left out of the per-stream series by the collector's bound (WithMaxStreams).
# TYPE segrelay_streams_omitted gauge
segrelay_streams_omitted 0
# HELP segrelay_stream_live 1 if the stream has a publisher, else 0.
# TYPE segrelay_stream_live gauge
segrelay_stream_live{stream="room1"} 1
# HELP segrelay_stream_subscribers Subscribers of the stream.
# TYPE segrelay_stream_subscribers gauge
segrelay_stream_subscribers{stream="room1"} 1
# HELP segrelay_stream_received_bytes_total Bytes of init and media segments published to the stream.
# TYPE segrelay_stream_received_bytes_total counter
segrelay_stream_received_bytes_total{stream="room1"} 3600
# HELP segrelay_stream_sent_bytes_total Bytes of the stream handed to its subscribers, all of them together.
# TYPE segrelay_stream_sent_bytes_total counter
segrelay_stream_sent_bytes_total{stream="room1"} 3600
# HELP segrelay_stream_segments_total Init and media segments published to the stream.
# TYPE segrelay_stream_segments_total counter
segrelay_stream_segments_total{stream="room1"} 4
# HELP segrelay_stream_dropped_segments_total Media segments of the stream skipped for slow subscribers, one per subscriber per segment.
# TYPE segrelay_stream_dropped_segments_total counter
segrelay_stream_dropped_segments_total{stream="room1"} 0
# HELP segrelay_stream_subscriber_skips_total Times a subscriber of the stream skipped to the next keyframe, or had an unsent init replaced.
# TYPE segrelay_stream_subscriber_skips_total counter
segrelay_stream_subscriber_skips_total{stream="room1"} 0
# HELP segrelay_stream_slow_subscribers_closed_total Subscribers of the stream closed because they were too slow.
# TYPE segrelay_stream_slow_subscribers_closed_total counter
segrelay_stream_slow_subscribers_closed_total{stream="room1"} 0
# HELP segrelay_stream_gop_cache_bytes Bytes in the stream's cache that a late joiner receives first (from the last keyframe on).
# TYPE segrelay_stream_gop_cache_bytes gauge
segrelay_stream_gop_cache_bytes{stream="room1"} 2000
`
	// The uptime and the rate depend on the clock; TestUptimeAndRate
	// checks them.
	names := without(append(hubSeries, streamSeries...),
		"segrelay_stream_publisher_uptime_seconds", "segrelay_stream_publish_rate_bytes_per_second")
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(c); n != len(hubSeries)+len(streamSeries) {
		t.Errorf("collected %d series, want %d: one of each hub-wide and per-stream name", n, len(hubSeries)+len(streamSeries))
	}
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatalf("lint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}

	// When the publisher leaves, the stream stays for its subscriber, no
	// longer live, and without an uptime.
	if err := pub.Close(); err != nil {
		t.Fatalf("publisher close: %v", err)
	}
	if seg, err := sub.Next(ctx); err != nil || seg.Kind != relay.KindEnd {
		t.Fatalf("subscriber after the publisher left: got %v, %v; want end", seg, err)
	}
	want = `
# HELP segrelay_publishers Live publishers, one per live stream.
# TYPE segrelay_publishers gauge
segrelay_publishers 0
# HELP segrelay_stream_live 1 if the stream has a publisher, else 0.
# TYPE segrelay_stream_live gauge
segrelay_stream_live{stream="room1"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"segrelay_publishers", "segrelay_stream_live", "segrelay_stream_publisher_uptime_seconds"); err != nil {
		t.Error(err)
	}
}

// gather returns the value of the series name with the label
// stream="room1", and whether it was there.
func gather(t *testing.T, c prometheus.Collector, name string) (float64, bool) {
	t.Helper()
	return series(t, c, name, "room1")
}

// The publisher's uptime grows; the publish rate is the bit rate of the
// last whole 2-second window, in bytes.
func TestUptimeAndRate(t *testing.T) {
	hub, _ := newHub(t)
	c := relayprom.New(hub)
	pub, err := hub.Publish(testCtx(t), "room1", "video/webm")
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	defer pub.Close()
	for _, seg := range []relay.Segment{
		{Kind: relay.KindInit, Data: make([]byte, 100)},
		{Kind: relay.KindMedia, Keyframe: true, Data: make([]byte, 10_000)},
	} {
		if err := pub.WriteSegment(seg); err != nil {
			t.Fatalf("write %s: %v", seg.Kind, err)
		}
	}
	if rate, _ := gather(t, c, "segrelay_stream_publish_rate_bytes_per_second"); rate != 0 {
		t.Errorf("rate %v before the first 2-second window is over, want 0", rate)
	}
	first, ok := gather(t, c, "segrelay_stream_publisher_uptime_seconds")
	if !ok {
		t.Fatal("no uptime for a live stream")
	}
	// The next segment closes the first window: 10,100 bytes over at
	// least 2.1 s (more on a loaded machine; 10 s would be absurd).
	time.Sleep(2100 * time.Millisecond)
	if err := pub.WriteSegment(relay.Segment{Kind: relay.KindMedia, Data: make([]byte, 10)}); err != nil {
		t.Fatalf("write media: %v", err)
	}
	rate, _ := gather(t, c, "segrelay_stream_publish_rate_bytes_per_second")
	if rate < 10_100/10 || rate > 10_100/2.1 {
		t.Errorf("rate %v bytes/s, want 10,100 bytes over 2.1 to 10 s", rate)
	}
	if want := hub.Streams()[0].Bitrate / 8; rate != want {
		t.Errorf("rate %v bytes/s, want the hub's bit rate / 8 = %v", rate, want)
	}
	if up, _ := gather(t, c, "segrelay_stream_publisher_uptime_seconds"); up < first+2 {
		t.Errorf("uptime %v s after 2.1 s more, want at least %v", up, first+2)
	}
}

// fiveStreams gives hub five streams: "a" live without subscribers, "b" and
// "d" with 3 subscribers, "e" with 2, "c" with 1 (all in-process).
func fiveStreams(t *testing.T, hub *relay.Hub) {
	t.Helper()
	ctx := testCtx(t)
	pub, err := hub.Publish(ctx, "a", "video/webm")
	if err != nil {
		t.Fatalf("publish a: %v", err)
	}
	t.Cleanup(func() { pub.Close() })
	for name, n := range map[string]int{"b": 3, "c": 1, "d": 3, "e": 2} {
		for range n {
			sub, err := hub.Subscribe(ctx, name)
			if err != nil {
				t.Fatalf("subscribe %s: %v", name, err)
			}
			t.Cleanup(func() { sub.Close() })
		}
	}
}

// With more streams than the bound, the live stream and then the most
// watched get series; the rest are counted.
func TestMaxStreams(t *testing.T) {
	hub, _ := newHub(t)
	fiveStreams(t, hub)
	c := relayprom.New(hub, relayprom.WithMaxStreams(3))
	want := `
# HELP segrelay_streams Streams that have a publisher or subscribers.
# TYPE segrelay_streams gauge
segrelay_streams 5
# HELP segrelay_streams_omitted Streams left out of the per-stream series by the collector's bound (WithMaxStreams).
# TYPE segrelay_streams_omitted gauge
segrelay_streams_omitted 2
# HELP segrelay_stream_live 1 if the stream has a publisher, else 0.
# TYPE segrelay_stream_live gauge
segrelay_stream_live{stream="a"} 1
segrelay_stream_live{stream="b"} 0
segrelay_stream_live{stream="d"} 0
# HELP segrelay_stream_subscribers Subscribers of the stream.
# TYPE segrelay_stream_subscribers gauge
segrelay_stream_subscribers{stream="a"} 0
segrelay_stream_subscribers{stream="b"} 3
segrelay_stream_subscribers{stream="d"} 3
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"segrelay_streams", "segrelay_streams_omitted", "segrelay_stream_live", "segrelay_stream_subscribers"); err != nil {
		t.Error(err)
	}
	// 3 streams × 10 series, and the uptime of the live one.
	if n := testutil.CollectAndCount(c, streamSeries...); n != 3*10+1 {
		t.Errorf("%d per-stream series, want 31", n)
	}
}

// By default every stream of a small hub gets series.
func TestDefaultShowsEveryStream(t *testing.T) {
	hub, _ := newHub(t)
	fiveStreams(t, hub)
	c := relayprom.New(hub)
	if n := testutil.CollectAndCount(c, "segrelay_stream_subscribers"); n != 5 {
		t.Errorf("%d streams with series, want all 5", n)
	}
	if err := testutil.CollectAndCompare(c, strings.NewReader(`
# HELP segrelay_streams_omitted Streams left out of the per-stream series by the collector's bound (WithMaxStreams).
# TYPE segrelay_streams_omitted gauge
segrelay_streams_omitted 0
`), "segrelay_streams_omitted"); err != nil {
		t.Error(err)
	}
}

// WithMaxStreams(0) turns the per-stream series off and keeps the rest.
func TestPerStreamOff(t *testing.T) {
	hub, _ := newHub(t)
	fiveStreams(t, hub)
	c := relayprom.New(hub, relayprom.WithMaxStreams(0))
	if n := testutil.CollectAndCount(c, streamSeries...); n != 0 {
		t.Errorf("%d per-stream series, want none", n)
	}
	// Every hub-wide name but refusals, of which there were none.
	if n := testutil.CollectAndCount(c); n != len(hubSeries)-1 {
		t.Errorf("%d series, want the %d hub-wide ones", n, len(hubSeries)-1)
	}
	if err := testutil.CollectAndCompare(c, strings.NewReader(`
# HELP segrelay_subscribers Subscribers (viewers), in-process, WebSocket and live.webm; recorders are not counted.
# TYPE segrelay_subscribers gauge
segrelay_subscribers 9
# HELP segrelay_streams_omitted Streams left out of the per-stream series by the collector's bound (WithMaxStreams).
# TYPE segrelay_streams_omitted gauge
segrelay_streams_omitted 5
`), "segrelay_subscribers", "segrelay_streams_omitted"); err != nil {
		t.Error(err)
	}
}

// Two hubs in one registry, told apart by a label, as the package doc
// says: their series do not collide.
func TestTwoHubs(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	for _, name := range []string{"east", "west"} {
		hub, _ := newHub(t)
		fiveStreams(t, hub)
		prometheus.WrapRegistererWith(prometheus.Labels{"hub": name}, reg).MustRegister(relayprom.New(hub))
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP segrelay_publishers Live publishers, one per live stream.
# TYPE segrelay_publishers gauge
segrelay_publishers{hub="east"} 1
segrelay_publishers{hub="west"} 1
`), "segrelay_publishers"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg, "segrelay_stream_subscribers"); err != nil || n != 10 {
		t.Errorf("gathered %d per-stream subscriber series (%v), want 5 per hub", n, err)
	}
}

// A nil hub is a mistake to report at once, not at the first scrape.
func TestNewNilHub(t *testing.T) {
	defer func() {
		if r := recover(); r != "relayprom: New: nil *relay.Hub" {
			t.Errorf("New(nil) panicked with %v, want a message naming the nil hub", r)
		}
	}()
	relayprom.New(nil)
}
