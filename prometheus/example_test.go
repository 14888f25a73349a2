package relayprom_test

import (
	"bufio"
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	relay "github.com/segrelay/relay"
	relayprom "github.com/segrelay/relay/prometheus"
)

// The hub under /live/ and its metrics at /metrics, in one mux. An
// in-process publisher stands in for a browser; the example then scrapes
// /metrics as Prometheus would and prints a few lines.
func Example() {
	hub := relay.NewHub()
	// A registry of its own, so /metrics shows only what is registered
	// here; prometheus.MustRegister(relayprom.New(hub)) would add the
	// hub to the default registry, beside the Go runtime's metrics.
	reg := prometheus.NewRegistry()
	reg.MustRegister(relayprom.New(hub, relayprom.WithMaxStreams(50)))

	mux := http.NewServeMux()
	mux.Handle("/live/", http.StripPrefix("/live", hub))
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := httptest.NewServer(mux) // in a real app: an http.Server with timeouts
	defer srv.Close()
	defer hub.Shutdown(context.Background())

	pub, err := hub.Publish(context.Background(), "room1", "video/webm")
	if err != nil {
		log.Fatal(err)
	}
	defer pub.Close()
	for _, seg := range []relay.Segment{
		{Kind: relay.KindInit, Data: make([]byte, 100)},
		{Kind: relay.KindMedia, Keyframe: true, Data: make([]byte, 900)},
	} {
		if err := pub.WriteSegment(seg); err != nil {
			log.Fatal(err)
		}
	}

	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		for _, name := range []string{"segrelay_publishers ", "segrelay_received_bytes_total ", "segrelay_stream_received_bytes_total{"} {
			if strings.HasPrefix(sc.Text(), name) {
				fmt.Println(sc.Text())
			}
		}
	}
	if err := sc.Err(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// segrelay_publishers 1
	// segrelay_received_bytes_total 1000
	// segrelay_stream_received_bytes_total{stream="room1"} 1000
}
