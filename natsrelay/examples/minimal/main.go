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
	"embed"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"io/fs"
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
	"github.com/segrelay/relay/natsrelay"
)

//go:embed pages
var pagesFS embed.FS

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
		Handler:           newMux(hub),
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

// newMux is the app: the hub under /live/, the pages, and the index.
func newMux(hub *relay.Hub) *http.ServeMux {
	pages, err := fs.Sub(pagesFS, "pages")
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/live/", http.StripPrefix("/live", hub)) // the relay, under a route of the app's choosing
	mux.Handle("GET /publish.html", http.FileServerFS(pages))
	mux.Handle("GET /watch.html", http.FileServerFS(pages))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		index.Execute(w, struct {
			Host    string
			Streams []relay.StreamInfo
		}{r.Host, hub.Streams()})
	})
	return mux
}

var index = template.Must(template.New("index").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="refresh" content="5">
<title>segrelay example</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;max-width:46em;margin:2em auto;padding:0 1em;color:#222}
code,pre{background:#f3f3f3;padding:.1em .3em;border-radius:3px}pre{padding:1em;overflow:auto;font-size:.85em}
table{border-collapse:collapse}td,th{padding:.2em 1em .2em 0;text-align:left}
.actions a{display:inline-block;margin-right:1em;padding:.5em 1em;background:#1a5fb4;color:#fff;border-radius:4px;text-decoration:none}
</style>
</head>
<body>
<h1>segrelay example</h1>
<p class="actions"><a href="/publish.html">Publish</a><a href="/watch.html">Watch</a></p>
<p>Open <b>Publish</b> in one tab and <b>Watch</b> in another (same stream name): the viewer
plays the publisher's camera or screen about half a second behind.</p>
<h2>Streams</h2>
{{if .Streams}}<table>
<tr><th>stream</th><th>status</th><th>type</th><th>viewers</th><th></th></tr>
{{range .Streams}}<tr><td><code>{{.Name}}</code></td><td>{{if .Live}}live{{else}}waiting for a publisher{{end}}</td><td>{{.MIME}}</td><td>{{.Subscribers}}</td><td><a href="/watch.html?stream={{.Name}}">watch</a></td></tr>
{{end}}</table>
{{else}}<p>No streams yet. This page refreshes every 5 seconds.</p>{{end}}
<h2>In your pages</h2>
<pre>import { publish, play } from "/live/relay.js";

// a publisher page
const media = await navigator.mediaDevices.getUserMedia({video: true, audio: true});
const pub = publish("/live/room1/publish", media);

// a viewer page
const player = play("/live/room1/subscribe", document.querySelector("video"));</pre>
<p>From Go: <code>relay.DialPublish(ctx, "ws://{{.Host}}/live/room1/publish", ...)</code> and
<code>relay.DialSubscribe(ctx, "ws://{{.Host}}/live/room1/subscribe", nil)</code>.</p>
</body>
</html>
`))
