// Package natsrelay bridges segrelay hubs on several nodes through NATS, so
// that a stream published on one node can be watched on any other.
//
//	nc, err := nats.Connect(natsURL, nats.MaxReconnects(-1))
//	...
//	hub := relay.NewHub()
//	bridge, err := natsrelay.New(hub, nc, natsrelay.Options{})
//	...
//	hub.Shutdown(ctx)
//	bridge.Close()
//
// The segments of the hub's own publishers go to the subject
// PREFIX.seg.NAME (Options.Prefix, default "segrelay"), one message per
// segment (split into parts under the server's max payload), with the
// segment's kind, Seq, keyframe and discontinuity flags in headers. A node
// subscribes to a stream's subject only while its hub has subscribers for
// the stream, and feeds them through a relayed publisher on its own hub
// (relay.Hub.PublishRelayed), so the hub keeps its own init and GOP cache
// and a late joiner on any node starts at once. A node that starts relaying
// a stream, or that sees a gap in Seq, asks the publishing node for the
// session's Start, init and media since the last keyframe (a catch-up on
// PREFIX.gop.NAME), so it never passes on media it cannot decode.
//
// A stream has one publisher in the cluster: a node claims the stream's
// name in a JetStream key-value bucket before its hub accepts a publisher,
// and a publisher on a second node is refused with relay.ErrStreamBusy
// (HTTP 409). The README has the design, its failure cases and how to
// deploy N nodes with a NATS cluster.
package natsrelay
