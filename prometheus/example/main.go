// Command example serves a segrelay Hub under /live/ and its Prometheus
// metrics at /metrics, on one port.
//
//	cd prometheus && go run ./example                # listens on 127.0.0.1:8080
//	cd prometheus && go run ./example -addr :9000
//
// Publish and watch with relay.js pages (see examples/minimal in the root
// module), or put load on it from the root module:
//
//	go run ./cmd/relayload -addr 127.0.0.1:8080 -n 20 -duration 10s
//
// and read the figures while it runs:
//
//	curl -s 127.0.0.1:8080/metrics | grep ^segrelay_
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	relay "github.com/segrelay/relay"
	relayprom "github.com/segrelay/relay/prometheus"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	maxStreams := flag.Int("metrics-max-streams", relayprom.DefaultMaxStreams, "streams with per-stream series at most (0: none)")
	flag.Parse()

	hub := relay.NewHub()
	// The hub beside the process's own figures (CPU, memory, goroutines,
	// GC), which tell whether the host keeps up with the streams.
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		relayprom.New(hub, relayprom.WithMaxStreams(*maxStreams)),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)

	mux := http.NewServeMux()
	mux.Handle("/live/", http.StripPrefix("/live", hub))
	// On the open internet, serve /metrics on another listener or behind
	// authentication: stream names and figures are the operator's.
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	// What a server that faces the internet sets (root README, Deploying):
	// the hub's WebSockets are hijacked, so these do not cut live streams.
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	fmt.Printf("segrelay: hub at ws://%[1]s/live/{stream}/publish and /subscribe, metrics at http://%[1]s/metrics\n", ln.Addr())

	go func() {
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
		<-stop
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := hub.Shutdown(ctx); err != nil {
			log.Printf("hub shutdown: %v", err)
		}
		if err := srv.Shutdown(ctx); err != nil {
			log.Printf("server shutdown: %v", err)
		}
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
