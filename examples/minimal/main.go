// Command minimal mounts a segrelay Hub under /live/ of an ordinary web app,
// with a publisher page and a viewer page that use the browser client
// relay.js (served by the hub at /live/relay.js).
//
//	go run ./examples/minimal            # listens on 127.0.0.1:8080
//	go run ./examples/minimal -addr :9000
//	go run ./examples/minimal -record /tmp/rec   # and record every session
//
// Open the printed URL in two tabs: in one, publish your camera or screen
// (publish.html); in the other, watch it (watch.html). The index page lists
// the live streams. Publishers connect to ws://ADDR/live/{stream}/publish,
// viewers to ws://ADDR/live/{stream}/subscribe (protocol v1 with the
// WebSocket subprotocol "segrelay.v1", or the legacy framing without one).
//
// Browsers allow the camera and the microphone only in a secure context:
// http://127.0.0.1 and http://localhost count as one, another host needs
// HTTPS (put the app behind a TLS proxy, or use http.ListenAndServeTLS).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	relay "github.com/segrelay/relay"
	"github.com/segrelay/relay/examples/minimal/app"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	record := flag.String("record", "", "record every publisher session to files under this directory")
	flag.Parse()

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	// The hub logs refusals and one line per session end; events are where
	// an app reacts (here: who is live).
	opts := []relay.Option{
		relay.WithLogger(logger),
		relay.WithEvents(func(ev relay.Event) {
			switch ev.Kind {
			case relay.EventPublish:
				logger.Info("live", "stream", ev.Stream)
			case relay.EventUnpublish:
				logger.Info("offline", "stream", ev.Stream, "after", ev.Session.Duration.Round(time.Second))
			}
		}),
	}
	if *record != "" {
		// One seekable WebM file per session: <dir>/<stream>/<start>.webm
		// (the hub logs each file's start and end).
		opts = append(opts, relay.WithRecording(*record, nil))
	}
	hub := relay.NewHub(opts...)

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	// What a server that faces the internet sets (README, Deploying): the
	// hub's WebSockets are hijacked, so these do not cut live streams.
	srv := &http.Server{
		Handler:           app.NewMux(hub),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	fmt.Printf("segrelay example: open http://%s/ (publish in one tab, watch in another)\n", ln.Addr())

	go func() {
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
		<-stop
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		hub.Shutdown(ctx) // closes every stream with 1001 "going away"; clients reconnect to the next server
		srv.Shutdown(ctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
