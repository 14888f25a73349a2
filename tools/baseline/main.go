// Command baseline is the side-by-side peer of segrelay's load runs: a chunk
// relay written the way such relays usually are, with gorilla/websocket and
// the structure of gorilla's chat example (a hub goroutine that registers,
// unregisters and broadcasts; per client a send channel of 256 messages, a
// readPump and a writePump with pings and write deadlines). Every binary
// message a publisher sends to /live/{stream}/publish goes to every
// subscriber of /live/{stream}/subscribe as its own message; a subscriber
// whose channel is full is dropped, as in the chat example. No reassembly,
// no late-joiner cache.
//
// It is a nested module so that segrelay's module does not depend on
// gorilla/websocket. relayload starts it with -server gorilla:
//
//	go run ./cmd/relayload -mode chunkrelay -server gorilla -n 1000
//
// or by hand: go run ./tools/baseline -addr 127.0.0.1:8080; it prints
// "baseline: listening on ADDR" and exits when its standard input closes
// (with -watch-stdin), on SIGTERM, or after -timeout.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

const (
	writeWait      = 10 * time.Second
	pongWait       = 60 * time.Second
	pingPeriod     = (pongWait * 9) / 10
	maxMessageSize = 1 << 20
)

var upgrader = websocket.Upgrader{
	ReadBufferSize:  4096,
	WriteBufferSize: 4096,
	CheckOrigin:     func(*http.Request) bool { return true },
}

// client is one subscriber (or, with send nil, a publisher).
type client struct {
	hub  *hub
	conn *websocket.Conn
	send chan []byte
}

type message struct {
	stream string
	data   []byte
}

type registration struct {
	stream string
	c      *client
}

// hub is the chat example's hub, with a set of clients per stream.
type hub struct {
	streams    map[string]map[*client]bool
	broadcast  chan message
	register   chan registration
	unregister chan registration
	clients    atomic.Int64 // registered subscribers, for the benchmark
}

func newHub() *hub {
	return &hub{
		streams:    map[string]map[*client]bool{},
		broadcast:  make(chan message, 256),
		register:   make(chan registration),
		unregister: make(chan registration),
	}
}

func (h *hub) run() {
	for {
		select {
		case r := <-h.register:
			if h.streams[r.stream] == nil {
				h.streams[r.stream] = map[*client]bool{}
			}
			h.streams[r.stream][r.c] = true
			h.clients.Add(1)
		case r := <-h.unregister:
			if _, ok := h.streams[r.stream][r.c]; ok {
				delete(h.streams[r.stream], r.c)
				close(r.c.send)
			}
		case m := <-h.broadcast:
			for c := range h.streams[m.stream] {
				select {
				case c.send <- m.data:
				default:
					close(c.send)
					delete(h.streams[m.stream], c)
				}
			}
		}
	}
}

// readPump reads a publisher's messages into the hub; for a subscriber it
// only handles control frames (and drops what it sends).
func (c *client) readPump(stream string, publisher bool) {
	defer func() {
		if !publisher {
			c.hub.unregister <- registration{stream, c}
		}
		c.conn.Close()
	}()
	c.conn.SetReadLimit(maxMessageSize)
	c.conn.SetReadDeadline(time.Now().Add(pongWait))
	c.conn.SetPongHandler(func(string) error { c.conn.SetReadDeadline(time.Now().Add(pongWait)); return nil })
	for {
		_, data, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		if publisher {
			c.conn.SetReadDeadline(time.Now().Add(pongWait))
			c.hub.broadcast <- message{stream, data}
		}
	}
}

// writePump sends a subscriber its messages, and pings.
func (c *client) writePump() {
	ticker := time.NewTicker(pingPeriod)
	defer func() {
		ticker.Stop()
		c.conn.Close()
	}()
	for {
		select {
		case data, ok := <-c.send:
			c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if !ok {
				c.conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseTryAgainLater, "too slow"))
				return
			}
			if err := c.conn.WriteMessage(websocket.BinaryMessage, data); err != nil {
				return
			}
		case <-ticker.C:
			c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if err := c.conn.WriteMessage(websocket.PingMessage, nil); err != nil {
				return
			}
		}
	}
}

func (h *hub) serveWS(w http.ResponseWriter, r *http.Request) {
	name, action, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/live/"), "/")
	if name == "" || (action != "publish" && action != "subscribe") {
		http.NotFound(w, r)
		return
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &client{hub: h, conn: conn}
	if action == "publish" {
		go c.readPump(name, true)
		return
	}
	c.send = make(chan []byte, 256)
	h.register <- registration{name, c}
	go c.writePump()
	go c.readPump(name, false)
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	watchStdin := flag.Bool("watch-stdin", false, "exit when standard input closes")
	timeout := flag.Duration("timeout", 10*time.Minute, "exit after this long whatever happens")
	flag.Parse()
	raiseNoFile()
	h := newHub()
	go h.run()
	mux := http.NewServeMux()
	mux.HandleFunc("/live/", h.serveWS)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("baseline: listening on %s (pid %d)\n", ln.Addr(), os.Getpid())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	stop := make(chan struct{}, 3)
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
		stop <- struct{}{}
	}()
	if *watchStdin {
		go func() {
			var b [1]byte
			for {
				if _, err := os.Stdin.Read(b[:]); err != nil {
					stop <- struct{}{}
					return
				}
			}
		}()
	}
	time.AfterFunc(*timeout, func() { stop <- struct{}{} })
	go func() {
		<-stop
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		srv.Close()
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		log.Fatal(err)
	}
}

// raiseNoFile lifts RLIMIT_NOFILE to its hard limit (thousands of sockets).
func raiseNoFile() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}
