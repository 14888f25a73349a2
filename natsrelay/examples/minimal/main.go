// Command minimal is the root module's examples/minimal with a -nats flag:
// with it, the hub joins the other instances connected to the same NATS
// through natsrelay, so a stream published on one instance can be watched
// on any other.
//
//	nats-server -js &                    # or: go run ./natsrelay/examples/natsserver
//	go run ./natsrelay/examples/minimal -addr 127.0.0.1:8080 -nats nats://127.0.0.1:4222
//	go run ./natsrelay/examples/minimal -addr 127.0.0.1:8081 -nats nats://127.0.0.1:4222
//
// Publish on http://127.0.0.1:8080/publish.html and watch on
// http://127.0.0.1:8081/watch.html (the same stream name). Without -nats it
// is the single-node example.
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

	"github.com/nats-io/nats.go"
	relay "github.com/segrelay/relay"
	"github.com/segrelay/relay/examples/minimal/app"
	"github.com/segrelay/relay/natsrelay"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	natsURL := flag.String("nats", "", "NATS server URL, e.g. nats://127.0.0.1:4222 (with JetStream: nats-server -js); empty: a single node")
	flag.Parse()

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	hub, bridge, err := newHub(logger, *natsURL, *addr)
	if err != nil {
		log.Fatal(err)
	}

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
		if bridge != nil {
			bridge.Close() // gives up this node's claims at once
			bridge.Conn().Close()
		}
		srv.Shutdown(ctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

// newHub makes the hub, and with a NATS URL connects it to the other
// nodes through a natsrelay Bridge.
func newHub(logger *slog.Logger, natsURL, name string) (*relay.Hub, *natsrelay.Bridge, error) {
	// The hub logs refusals and one line per session end; events are where
	// an app reacts (here: who is live).
	hub := relay.NewHub(
		relay.WithLogger(logger),
		relay.WithEvents(func(ev relay.Event) {
			switch ev.Kind {
			case relay.EventPublish:
				logger.Info("live", "stream", ev.Stream)
			case relay.EventUnpublish:
				logger.Info("offline", "stream", ev.Stream, "after", ev.Session.Duration.Round(time.Second))
			}
		}),
	)
	if natsURL == "" {
		return hub, nil, nil
	}
	// Scaling out: the bridge must be in place before the hub serves
	// publishers. NATS reconnects forever: while it is away, local viewers
	// of local publishers keep watching.
	nc, err := nats.Connect(natsURL, nats.Name("segrelay "+name), nats.MaxReconnects(-1))
	if err != nil {
		return nil, nil, err
	}
	bridge, err := natsrelay.New(hub, nc, natsrelay.Options{Logger: logger})
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	logger.Info("joined the cluster", "nats", natsURL, "node", bridge.NodeID())
	return hub, bridge, nil
}
