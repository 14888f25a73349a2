// Command livehub serves one hub, built with the library's defaults, under
// /live/ and a folder of pages at /, on a loopback address it prints on its
// first line. The live benchmark (TestLiveBench) builds it from the working
// tree and from earlier revisions, so that two builds of the hub and of
// relay.js can be compared in one sitting; it uses only API that every
// revision has (NewHub, WithOriginPatterns).
//
//	livehub -pages e2e/testdata/browser [-relayjs FILE]
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"

	"github.com/segrelay/relay"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "loopback address to listen on")
	pages := flag.String("pages", ".", "folder served at /")
	relayJS := flag.String("relayjs", "", "serve this file as /live/relay.js instead of the hub's own (another revision's player)")
	flag.Parse()

	hub := relay.NewHub(relay.WithOriginPatterns("*"))
	mux := http.NewServeMux()
	if *relayJS != "" {
		js, err := os.ReadFile(*relayJS)
		if err != nil {
			log.Fatal(err)
		}
		mux.HandleFunc("/live/relay.js", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			w.Write(js)
		})
	}
	mux.Handle("/live/", http.StripPrefix("/live", hub))
	files := http.FileServer(http.Dir(*pages))
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		files.ServeHTTP(w, r)
	}))
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ln.Addr())
	log.Fatal(http.Serve(ln, mux))
}
