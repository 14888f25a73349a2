// Package relayprom exports a segrelay Hub's figures to Prometheus.
//
// New returns a prometheus.Collector that reads Hub.Stats and Hub.Streams
// when Prometheus scrapes it: there is no goroutine and nothing to stop.
// Register it and serve the registry next to the hub:
//
//	hub := relay.NewHub()
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(relayprom.New(hub))
//	mux.Handle("/live/", http.StripPrefix("/live", hub))
//	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// Hub-wide series carry no label but refusals' status. Per-stream series
// carry the label stream, and a stream name is chosen by whoever connects:
// to keep the number of series bounded, they cover at most WithMaxStreams
// streams (default 100), live streams first, then the most watched.
// WithMaxStreams(0) turns them off. See the README for the list.
//
// To export several hubs from one process, register each collector through
// prometheus.WrapRegistererWith with a label that tells them apart.
package relayprom

import (
	"cmp"
	"slices"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	relay "github.com/segrelay/relay"
)

// DefaultMaxStreams is how many streams get per-stream series unless
// WithMaxStreams says otherwise: enough for a typical site's live streams,
// few enough that their 11 series each stay cheap to scrape and store.
const DefaultMaxStreams = 100

// An Option configures a Collector.
type Option func(*Collector)

// WithMaxStreams sets how many streams at most get per-stream series
// (default DefaultMaxStreams). When a hub has more, live streams (those with
// a publisher) come first, then the ones with the most subscribers, then by
// name; segrelay_streams_omitted counts the others. 0 (or less) turns the
// per-stream series off; the hub-wide ones remain.
func WithMaxStreams(n int) Option {
	return func(c *Collector) { c.maxStreams = max(n, 0) }
}

// A Collector is a prometheus.Collector over a Hub's Stats and Streams.
// It is safe for concurrent scrapes.
type Collector struct {
	hub        *relay.Hub
	maxStreams int
}

// New returns a Collector for hub. Register it with a prometheus.Registerer.
func New(hub *relay.Hub, opts ...Option) *Collector {
	if hub == nil {
		// Fail where the mistake is, not at the first scrape.
		panic("relayprom: New: nil *relay.Hub")
	}
	c := &Collector{hub: hub, maxStreams: DefaultMaxStreams}
	for _, o := range opts {
		o(c)
	}
	return c
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("segrelay_"+name, help, labels, nil)
}

// Hub-wide series.
var (
	streamsDesc     = desc("streams", "Streams that have a publisher or subscribers.")
	publishersDesc  = desc("publishers", "Live publishers, one per live stream.")
	subscribersDesc = desc("subscribers", "Subscribers (viewers), in-process, WebSocket and live.webm; recorders are not counted.")
	heldDesc        = desc("held_bytes", "Bytes held on behalf of publishers (inits, GOP caches, segments being received), counted against the hub's memory budget.")
	bytesInDesc     = desc("received_bytes_total", "Media bytes accepted from publishers.")
	bytesOutDesc    = desc("sent_bytes_total", "Media bytes handed to subscribers, all of them together.")
	segmentsDesc    = desc("segments_total", "Init and media segments published.")
	dropsDesc       = desc("dropped_segments_total", "Media segments skipped for slow subscribers, one per subscriber per segment.")
	slowClosedDesc  = desc("slow_subscribers_closed_total", "Subscribers closed because they were too slow (close code 1013).")
	refusedDesc     = desc("refused_requests_total", "Requests refused before the WebSocket upgrade, by HTTP status.", "status")
	evDroppedDesc   = desc("events_dropped_total", "Events dropped because the WithEvents function was too slow to take them.")
	omittedDesc     = desc("streams_omitted", "Streams left out of the per-stream series by the collector's bound (WithMaxStreams).")
)

// Per-stream series. A stream's counters start at 0 each time the stream
// comes to be (its first publisher or subscriber since it had neither), so
// they reset like a restarted process's: rate() and increase() handle that.
var (
	sLiveDesc        = desc("stream_live", "1 if the stream has a publisher, else 0.", "stream")
	sSubscribersDesc = desc("stream_subscribers", "Subscribers of the stream.", "stream")
	sUptimeDesc      = desc("stream_publisher_uptime_seconds", "How long the stream's publisher has been on; only for live streams.", "stream")
	sBytesInDesc     = desc("stream_received_bytes_total", "Bytes of init and media segments published to the stream.", "stream")
	sBytesOutDesc    = desc("stream_sent_bytes_total", "Bytes of the stream handed to its subscribers, all of them together.", "stream")
	sSegmentsDesc    = desc("stream_segments_total", "Init and media segments published to the stream.", "stream")
	sRateDesc        = desc("stream_publish_rate_bytes_per_second", "Bytes per second published to the stream over the last whole 2-second window; 0 after 4 s without data. Times 8 for the bit rate.", "stream")
	sDropsDesc       = desc("stream_dropped_segments_total", "Media segments of the stream skipped for slow subscribers, one per subscriber per segment.", "stream")
	sSkipsDesc       = desc("stream_subscriber_skips_total", "Times a subscriber of the stream skipped to the next keyframe, or had an unsent init replaced.", "stream")
	sSlowClosedDesc  = desc("stream_slow_subscribers_closed_total", "Subscribers of the stream closed because they were too slow.", "stream")
	sGOPDesc         = desc("stream_gop_cache_bytes", "Bytes in the stream's cache that a late joiner receives first (from the last keyframe on).", "stream")
)

var hubDescs = []*prometheus.Desc{
	streamsDesc, publishersDesc, subscribersDesc, heldDesc,
	bytesInDesc, bytesOutDesc, segmentsDesc, dropsDesc, slowClosedDesc,
	refusedDesc, evDroppedDesc, omittedDesc,
}

var streamDescs = []*prometheus.Desc{
	sLiveDesc, sSubscribersDesc, sUptimeDesc, sBytesInDesc, sBytesOutDesc,
	sSegmentsDesc, sRateDesc, sDropsDesc, sSkipsDesc, sSlowClosedDesc, sGOPDesc,
}

// Describe sends the descriptors of every series the Collector may export.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range hubDescs {
		ch <- d
	}
	if c.maxStreams > 0 {
		for _, d := range streamDescs {
			ch <- d
		}
	}
}

// Collect reads the hub's figures and sends them as metrics.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.hub.Stats()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(streamsDesc, float64(s.Streams))
	gauge(publishersDesc, float64(s.Publishers))
	gauge(subscribersDesc, float64(s.Subscribers))
	gauge(heldDesc, float64(s.Held))
	counter(bytesInDesc, s.BytesIn)
	counter(bytesOutDesc, s.BytesOut)
	counter(segmentsDesc, s.Segments)
	counter(dropsDesc, s.Drops)
	counter(slowClosedDesc, s.SlowClosed)
	counter(evDroppedDesc, s.EventsDropped)
	for status, n := range s.Refused {
		counter(refusedDesc, n, strconv.Itoa(status))
	}

	if c.maxStreams == 0 {
		// Count without listing: Stats already has the number, and
		// Streams would take every stream's lock for nothing.
		gauge(omittedDesc, float64(s.Streams))
		return
	}
	// A second snapshot: a stream that comes or goes in between is
	// counted in one of segrelay_streams and the per-stream series only.
	streams := c.hub.Streams()
	shown := busiest(streams, c.maxStreams)
	gauge(omittedDesc, float64(len(streams)-len(shown)))
	for _, st := range shown {
		name := st.Name
		live := 0.0
		if st.Live {
			live = 1
			gauge(sUptimeDesc, st.Uptime.Seconds(), name)
		}
		gauge(sLiveDesc, live, name)
		gauge(sSubscribersDesc, float64(st.Subscribers), name)
		counter(sBytesInDesc, st.BytesIn, name)
		counter(sBytesOutDesc, st.BytesOut, name)
		counter(sSegmentsDesc, st.Segments, name)
		gauge(sRateDesc, st.Bitrate/8, name)
		counter(sDropsDesc, st.Drops, name)
		counter(sSkipsDesc, st.Skips, name)
		counter(sSlowClosedDesc, st.SlowClosed, name)
		gauge(sGOPDesc, float64(st.GOPBytes), name)
	}
}

// busiest returns the n streams to export: live ones first, since a
// publisher is what an app usually authorizes, so anonymous subscribers
// waiting on made-up names cannot push real streams out of the series;
// then the most watched; then by name, so the choice is stable between
// scrapes. It reorders streams.
func busiest(streams []relay.StreamInfo, n int) []relay.StreamInfo {
	if len(streams) <= n {
		return streams
	}
	slices.SortFunc(streams, func(a, b relay.StreamInfo) int {
		if a.Live != b.Live {
			if a.Live {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(b.Subscribers, a.Subscribers), cmp.Compare(a.Name, b.Name))
	})
	return streams[:n]
}
