// Package app is the web app of the examples: the hub mounted under /live/,
// a publisher page and a viewer page that use relay.js, and an index of the
// live streams. examples/minimal serves it; natsrelay/examples/minimal serves
// the same app with its hub bridged to other nodes.
package app

import (
	"embed"
	"html/template"
	"io/fs"
	"net/http"

	relay "github.com/segrelay/relay"
)

//go:embed pages
var pagesFS embed.FS

// NewMux is the app: the hub under /live/, the pages, and the index.
func NewMux(hub *relay.Hub) *http.ServeMux {
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
{{range .Streams}}<tr><td><code>{{.Name}}</code></td><td>{{if .Live}}live{{else}}waiting for a publisher{{end}}</td><td>{{.MIME}}</td><td>{{.Subscribers}}</td><td><a href="/watch.html?stream={{.Name}}">watch</a>{{if .Live}} · <a href="/live/{{.Name}}/live.webm">live.webm</a>{{end}}</td></tr>
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
<h2>Without JavaScript</h2>
<p>Publish with ffmpeg (a file, or <code>-f v4l2 -i /dev/video0</code> and
<code>-c:v libvpx -deadline realtime -g 30 -c:a libopus</code> for a camera):</p>
<pre>ffmpeg -re -i in.webm -c copy -f webm -method PUT http://{{.Host}}/live/room1/publish</pre>
<p>Watch in any player: <code>ffplay http://{{.Host}}/live/room1/live.webm</code>, or
<code>&lt;video src="/live/room1/live.webm" autoplay muted&gt;</code>.</p>
</body>
</html>
`))
