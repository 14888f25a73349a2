// Command minimal mounts a segrelay Hub under /live/ of an ordinary web app.
//
//	go run ./examples/minimal            # listens on 127.0.0.1:8080
//	go run ./examples/minimal -addr :9000
//
// Open the printed URL: the page lists the live streams. Publishers connect
// to ws://ADDR/live/{stream}/publish, viewers to ws://ADDR/live/{stream}/subscribe
// (protocol v1 with the WebSocket subprotocol "segrelay.v1", or the legacy
// framing without one).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	relay "github.com/segrelay/relay"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	flag.Parse()

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	hub := relay.NewHub(
		relay.WithLogger(logger),
		relay.OnPublish(func(stream string) { logger.Info("live", "stream", stream) }),
		relay.OnUnpublish(func(stream string) { logger.Info("offline", "stream", stream) }),
	)

	mux := http.NewServeMux()
	mux.Handle("/live/", http.StripPrefix("/live", hub)) // the relay, under a route of the app's choosing
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		page.Execute(w, struct {
			Host    string
			Streams []relay.StreamInfo
		}{r.Host, hub.Streams()})
	})

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("segrelay example: open http://%s/\n", ln.Addr())

	go func() {
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
		<-stop
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		hub.Shutdown(ctx) // closes every stream with 1001 "going away"
		srv.Shutdown(ctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="3">
<title>segrelay example</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:46em;margin:2em auto;padding:0 1em}code,pre{background:#f3f3f3;padding:.1em .3em}pre{padding:1em;overflow:auto}</style>
</head>
<body>
<h1>segrelay example</h1>
<h2>Streams</h2>
{{if .Streams}}<table>
<tr><th align="left">stream</th><th align="left">status</th><th align="left">type</th><th align="right">viewers</th></tr>
{{range .Streams}}<tr><td><code>{{.Name}}</code></td><td>{{if .Live}}live{{else}}waiting for a publisher{{end}}</td><td>{{.MIME}}</td><td align="right">{{.Subscribers}}</td></tr>
{{end}}</table>
{{else}}<p>No streams yet. This page refreshes every 3 seconds.</p>{{end}}

<h2>Publish and watch</h2>
<p>The hub is mounted at <code>/live/</code>. A publisher connects to
<code>ws://{{.Host}}/live/STREAM/publish</code>, a viewer to
<code>ws://{{.Host}}/live/STREAM/subscribe</code>, with the WebSocket subprotocol
<code>segrelay.v1</code> (see the README for the protocol). The browser client
(<code>relay.js</code>) is not part of this version yet; from Go:</p>
<pre>pub, err := relay.DialPublish(ctx, "ws://{{.Host}}/live/room1/publish",
	relay.PublishStart{MIME: "video/webm;codecs=vp8"}, nil)
// pub.Send(ctx, webmBytes) as a MediaRecorder would deliver them

sub, err := relay.DialSubscribe(ctx, "ws://{{.Host}}/live/room1/subscribe", nil)
for {
	seg, err := sub.Next(ctx) // start, init, media segments, end
	...
}</pre>
</body>
</html>
`))
