// relay.js: the browser client of segrelay (https://github.com/segrelay/relay).
//
// ES modules (this one and those it imports, listed below), no build step,
// no dependency. The Hub serves them beside each other at {mount}/relay.js,
// {mount}/relay-connection.js, ..., and the TypeScript types at
// {mount}/relay.d.ts:
//
//   import { publish, play } from "/live/relay.js";
//
//   // publisher page
//   const media = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
//   const pub = publish("/live/room1/publish", media);
//   pub.addEventListener("status", (e) => console.log(e.detail.status));
//   pub.addEventListener("subscribers", (e) => console.log(e.detail.subscribers));
//   ...
//   await pub.stop();
//
//   // viewer page
//   const player = play("/live/room1/subscribe", document.querySelector("video"));
//   player.addEventListener("latency", (e) => console.log(e.detail.latency));
//   ...
//   player.close();
//
// Both speak protocol v1 (WebSocket subprotocol "segrelay.v1"; see the
// README). The publisher runs one continuous recorder and sends its WebM
// bytes as they come (stream mode): MediaRecorder, or in Firefox, whose
// MediaRecorder cannot be asked for keyframes, a WebM recorder of its own on
// WebCodecs. The player feeds them to Media Source Extensions, one
// SourceBuffer for the life of the player, so the picture never goes black
// between segments, sessions or reconnections.
//
// The modules, one concern each, imported from beside this one:
//  - relay-connection.js: what Publisher and Player share: the
//    subprotocols, refusals (RefusedError, which are retried), the backoff,
//    and Connection, the WebSocket with its status, reopened until it ends;
//  - relay-mime.js: MIME types: which the publisher records, a type's
//    codecs and tracks;
//  - relay-publisher.js: Publisher, and WebCodecsRecorder, the WebM
//    recorder on WebCodecs;
//  - relay-player.js: Player, in sections (protocol, which MediaSource and
//    starting over, playback control), and AppendQueue, the MediaSource and
//    the queue that feeds its SourceBuffer;
//  - relay-webm.js: the WebM it reads and writes, which needs no browser:
//    the EBML writer and frame reader the WebCodecs recorder muxes with,
//    and the WebMAppender, WebM as a SourceBuffer wants it.
// This module is the entry point: it re-exports their public names, and
// only these are the API.
//
// Why the player looks the way it does (measured in Chromium and Firefox, see
// docs/browser-facts.md in the repository):
//  - the SourceBuffer runs in "sequence" mode: a late joiner's first media
//    does not start at time 0, and media resumed after a skipped run leaves a
//    gap; in "segments" mode both stall for good unless the player seeks, in
//    "sequence" mode the timeline stays contiguous;
//  - a new init (the publisher restarted its recorder, a new publisher, a
//    reconnection) restarts the recorder's timestamps at 0: the player
//    aborts the parser and sets timestampOffset to the end of what it has,
//    so the new media follows on;
//  - at 1x a player never makes up the startup stall, so it plays slightly
//    faster while it is behind its target and jumps when it is far behind;
//    a seek far from a keyframe is slow, so a jump waits until it saves more
//    than it costs;
//  - a SourceBuffer drops frames until the next keyframe where a Cluster
//    starts without one or an append starts after skipped frames: the player
//    rewrites WebM media so neither happens (WebMAppender).


"use strict";

export { REFUSAL_SUBPROTOCOL, RefusedError, SUBPROTOCOL, webSocketURL } from "./relay-connection.js";
export { PUBLISH_MIME_TYPES, pickMimeType } from "./relay-mime.js";
export { Publisher, publish } from "./relay-publisher.js";
export { Player, canPlay, mediaSourceClass, play } from "./relay-player.js";
