package relay_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	relay "github.com/segrelay/relay"
)

// Mount the hub under a route of your own. Pages then publish to
// /live/{stream}/publish and watch /live/{stream}/subscribe, and load the
// browser client from /live/relay.js.
func Example() {
	hub := relay.NewHub()
	mux := http.NewServeMux()
	mux.Handle("/live/", http.StripPrefix("/live", hub))
	mux.Handle("/", http.FileServer(http.Dir("pages"))) // the app's own pages

	srv := &http.Server{Addr: "127.0.0.1:8080", Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.ListenAndServe()

	// ... and at the end:
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hub.Shutdown(ctx) // every WebSocket gets 1001, promptly
	srv.Shutdown(ctx)
}

// WithAuthorize is the access control. A browser cannot set headers on a
// WebSocket, so the page passes a token in the query (new WebSocket(url +
// "?token=...")) or relies on the session cookie, which the browser sends
// with the handshake.
func ExampleWithAuthorize() {
	validToken := func(token, stream string) bool { return token == "s3cret-"+stream }
	hub := relay.NewHub(relay.WithAuthorize(func(r *http.Request, stream string, role relay.Role) error {
		token := r.URL.Query().Get("token")
		if c, err := r.Cookie("session"); err == nil && token == "" {
			token = c.Value
		}
		switch {
		case token == "":
			return relay.ErrUnauthorized // 401
		case role == relay.RolePublish && !validToken(token, stream):
			return errors.New("only the room's host may publish") // 403, with this text
		}
		return nil
	}))
	srv := httptest.NewServer(http.StripPrefix("/live", hub))
	defer srv.Close()
	defer hub.Shutdown(context.Background())

	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/live/room1/publish"
	start := relay.PublishStart{MIME: "video/webm", Mode: relay.ModeSegments}
	_, err := relay.DialPublish(context.Background(), url, start, nil)
	var he *relay.HandshakeError
	if errors.As(err, &he) {
		fmt.Println("without a token:", he.Status)
	}
	p, err := relay.DialPublish(context.Background(), url+"?token=s3cret-room1", start, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	fmt.Println("with the room's token: publishing")
	// Output:
	// without a token: 401
	// with the room's token: publishing
}

// Go code publishes and watches without a WebSocket. A subscriber that
// joins a live stream gets Start, the init and the media since the last
// keyframe at once, then live media.
func ExampleHub_Publish() {
	hub := relay.NewHub()
	defer hub.Shutdown(context.Background())
	ctx := context.Background()

	pub, err := hub.Publish(ctx, "room1", "video/webm;codecs=vp9")
	if err != nil {
		log.Fatal(err)
	}
	defer pub.Close()
	pub.WriteSegment(relay.Segment{Kind: relay.KindInit, Data: []byte("init")})
	pub.WriteSegment(relay.Segment{Kind: relay.KindMedia, Keyframe: true, Data: []byte("key")})
	pub.WriteSegment(relay.Segment{Kind: relay.KindMedia, Data: []byte("delta")})

	sub, err := hub.Subscribe(ctx, "room1") // a late joiner
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close()
	for range 4 {
		seg, err := sub.Next(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(seg)
	}
	// Output:
	// start seq=0 keyframe=false discontinuity=false bytes=0
	// init seq=1 keyframe=false discontinuity=false bytes=4
	// media seq=2 keyframe=true discontinuity=false bytes=3
	// media seq=3 keyframe=false discontinuity=false bytes=5
}

// DialSubscribe watches a stream of a hub on another machine, over
// protocol v1.
func ExampleDialSubscribe() {
	hub := relay.NewHub()
	srv := httptest.NewServer(hub)
	defer srv.Close()
	defer hub.Shutdown(context.Background())
	ctx := context.Background()

	sub, err := relay.DialSubscribe(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/room1/subscribe", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close()
	pub, err := hub.Publish(ctx, "room1", "video/webm")
	if err != nil {
		log.Fatal(err)
	}
	pub.WriteSegment(relay.Segment{Kind: relay.KindInit, Data: []byte("init")})
	pub.Close()
	for {
		seg, err := sub.Next(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(seg.Kind, len(seg.Data))
		if seg.Kind == relay.KindEnd {
			break
		}
	}
	// Output:
	// start 0
	// init 4
	// end 0
}

// CloseStream ends a stream for good, say a banned user's: the publisher
// and every viewer are closed with the reason, and WithEvents reports each
// session's end.
func ExampleHub_CloseStream() {
	ended := make(chan relay.Event, 2)
	hub := relay.NewHub(relay.WithEvents(func(ev relay.Event) {
		if ev.Kind == relay.EventUnpublish || ev.Kind == relay.EventUnsubscribe {
			ended <- ev
		}
	}))
	defer hub.Shutdown(context.Background())
	ctx := context.Background()
	pub, _ := hub.Publish(ctx, "room1", "video/webm")
	sub, _ := hub.Subscribe(ctx, "room1")

	hub.CloseStream("room1", "banned")
	_, err := sub.Next(ctx)
	for err == nil {
		_, err = sub.Next(ctx)
	}
	fmt.Println(err)
	fmt.Println(errors.Is(pub.WriteSegment(relay.Segment{Kind: relay.KindInit, Data: []byte("x")}), relay.ErrClosedByApp))
	for range 2 {
		ev := <-ended
		fmt.Println(ev.Kind, ev.Stream, ev.Err)
	}
	// Unordered output:
	// relay: closed by the application: banned
	// true
	// unsubscribe room1 relay: closed by the application: banned
	// unpublish room1 relay: closed by the application: banned
}
