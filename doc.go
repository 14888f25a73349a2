// Package relay relays live video from browser publishers to browser
// viewers through your own Go web server, without a media server.
//
// A publisher page records the camera or the screen with MediaRecorder and
// sends the WebM bytes over a WebSocket. The Hub cuts that byte stream into
// segments at Cluster boundaries, keeps what a late viewer needs to start at
// once (the init segment and everything since the last keyframe), and fans
// every segment out to every subscriber, whose page plays it with Media
// Source Extensions.
//
// # Mounting the hub
//
// A Hub is an http.Handler. Mount it under a route of your own:
//
//	hub := relay.NewHub(relay.WithAuthorize(checkSession))
//	mux.Handle("/live/", http.StripPrefix("/live", hub))
//	...
//	hub.Shutdown(ctx) // closes every stream with 1001, waits for its goroutines
//
// Publishers then connect to /live/{stream}/publish and viewers to
// /live/{stream}/subscribe. Authorize runs before the WebSocket upgrade; it
// is the place to check cookies or tokens (a browser cannot set headers on
// a WebSocket: pass a token in the query, or rely on the session cookie).
// The package's examples show the mounting, WithAuthorize, in-process
// publishing and subscribing, DialSubscribe and Hub.CloseStream.
//
// # Without JavaScript: ffmpeg and players
//
// The same streams are open to tools that speak plain HTTP. ffmpeg, or any
// program that writes WebM, publishes with PUT or POST to
// /live/{stream}/publish, the WebM as the request body:
//
//	ffmpeg -re -i in.webm -c copy -f webm -method PUT http://host/live/room1/publish
//
// and a player without JavaScript (<video src>, ffplay, VLC) watches
// /live/{stream}/live.webm, one WebM response that lasts as long as the
// stream and starts at a keyframe. Both are sessions like the WebSocket
// ones: the same Authorize roles, limits, budget and events.
//
// # Limits
//
// NewHub with no options is safe to expose to anyone: every byte the hub
// keeps for a client counts against a bound. Publishers share a memory
// budget (WithMemoryBudget, 256 MiB) for inits, GOP caches and what they
// are sending; there are at most 100 live streams and 1,000 subscribers
// (WithMaxStreams, WithMaxSubscribers); a publisher must start within 5 s
// and keep publishing to keep its stream's name. The README's Deploying
// section gives the resulting memory bound and what the http.Server around
// the hub must set.
//
// # Events and control
//
// WithEvents reports sessions starting and ending, with the HTTP request
// and the session's figures, and refused requests; WithLogger logs them.
// Hub.Streams has each stream's figures. Hub.CloseStream ends a stream for
// good, Hub.CloseSubscriber one viewer. WithRecording writes each publisher
// session to a seekable WebM file of its own.
//
// # Segments
//
// A stream is a sequence of Segments: KindStart (a publisher session begins,
// with its MIME type), KindInit (the container header a decoder needs
// first), KindMedia, and KindEnd (the publisher left). Media segments that a
// decoder can start from are marked Keyframe. Seq numbers init and media
// segments without gaps, across publisher sessions, so a subscriber can see
// what it missed; Discontinuity marks where its timeline does not continue.
//
// Segment data is shared: the hub never copies it per subscriber, and
// nobody may modify it once published.
//
// # Slow subscribers
//
// Each subscriber has a queue bounded in bytes (WithSubscriberQueueBytes)
// and entries, every entry counted. Publishing never waits for a
// subscriber: when a queue overflows, that
// subscriber skips to the next keyframe and the segment it resumes with
// carries Discontinuity. One that overflows again and again is closed with
// ErrTooSlow (WebSocket close code 1013). Other subscribers never notice.
//
// # In-process use
//
// Go code can publish and watch without a WebSocket: Hub.Publish returns a
// Publisher, an io.Writer for a WebM byte stream (or WriteSegment for ready
// segments of any container), and Hub.Subscribe returns a Subscriber whose
// Next returns the stream's segments:
//
//	sub, err := hub.Subscribe(ctx, "room1")
//	if err != nil {
//		return err
//	}
//	defer sub.Close()
//	for {
//		seg, err := sub.Next(ctx)
//		if err != nil {
//			return err
//		}
//		// seg.Kind, seg.Seq, seg.Keyframe, seg.Data ...
//	}
//
// DialPublish and DialSubscribe do the same with a hub on another machine,
// over protocol v1.
//
// # Several nodes
//
// Hubs on several nodes can serve one set of streams: a Bridge (SetBridge)
// learns of the hub's own publishers and their segments and of the streams
// its subscribers want, and feeds it the streams published elsewhere through
// PublishRelayed. The nested module github.com/segrelay/relay/natsrelay is
// such a bridge, through NATS; this module does not depend on it.
//
// # Protocols
//
// Protocol v1 (WebSocket subprotocol "segrelay.v1") exchanges JSON control
// messages and binary media. A publisher sends
// {"type":"start","mime":"video/webm;codecs=vp9,opus","mode":"stream"} and
// then the WebM bytes as binary messages of any size (mode "stream"), or
// declares each segment with {"type":"segment","size":N,"keyframe":true,
// "init":false} followed by N bytes in binary messages (mode "segments", any
// container). A subscriber receives start, init and segment messages, each
// init and segment followed by one binary message, and end when the
// publisher leaves. The README has the full protocol and error table.
//
// A client that asks for no subprotocol speaks the legacy framing of the
// blog design this package grew from: standalone WebM files sent as binary
// chunks of a fixed size (WithLegacyChunkSize, 5120 bytes by default), a
// shorter chunk ending each file. Legacy and v1 clients can watch each
// other's streams.
package relay
