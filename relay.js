// relay.js: the browser client of segrelay (https://github.com/segrelay/relay).
//
// Two ES modules (this one and relay-webm.js, which it imports), no build
// step, no dependency. The Hub serves them at {mount}/relay.js and
// {mount}/relay-webm.js, and the TypeScript types at {mount}/relay.d.ts:
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
// The file: helpers; Connection, the WebSocket, status and backoff that
// Publisher and Player share; WebCodecsRecorder; Publisher; AppendQueue, the
// MediaSource and the queue that feeds its SourceBuffer; and Player, in
// sections: protocol, which MediaSource (starting over), playback control.
// The WebM it reads and writes, which needs no browser, is relay-webm.js:
// the EBML writer and frame reader the WebCodecs recorder muxes with, and
// the WebMAppender, WebM as a SourceBuffer wants it.
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

import { WebMAppender, WebMFrames, clusterStart, ebml, ebmlFloat, ebmlString, ebmlUint, opusHead, webmVideoTrack } from "./relay-webm.js";

/** The WebSocket subprotocol of protocol v1. */
export const SUBPROTOCOL = "segrelay.v1";

/**
 * Offered alongside SUBPROTOCOL: asks the hub to tell why it refuses a
 * connection. A browser's WebSocket hides a refused handshake's HTTP status
 * (the page sees close code 1006, as for a network failure), so the hub
 * accepts the connection and closes it at once with 4000 + the status (4401,
 * 4403, 4404, 4409, 4429, 4503, ...) and the one-line reason.
 */
export const REFUSAL_SUBPROTOCOL = "segrelay.refusal-close";

/**
 * The hub refused the connection: status is the HTTP status it stands for
 * (401 not authorized, 403 forbidden, 404 no such route, 409 the stream
 * already has a publisher, 429 over a limit, 503 shutting down or full),
 * reason the hub's one-line explanation.
 */
export class RefusedError extends Error {
  /** @param {string} url @param {number} status @param {string} reason */
  constructor(url, status, reason) {
    super("segrelay: " + url + " refused with " + status + ": " + (reason || "no reason given"));
    this.name = "RefusedError";
    /** @readonly */ this.url = url;
    /** @readonly */ this.status = status;
    /** @readonly */ this.reason = reason;
  }
}

/**
 * Statuses a refusal may clear by itself: retried with the usual backoff.
 * The others (400, 401, 403, 404, 409 ...) need a person to change
 * something: the client stops.
 */
const TRANSIENT_REFUSALS = new Set([429, 500, 502, 503, 504]);

/**
 * MIME types publish() tries, best first. Types with an audio codec are
 * used only when the stream has an audio track, and the other way round.
 */
export const PUBLISH_MIME_TYPES = Object.freeze([
  "video/webm;codecs=vp9,opus",
  "video/webm;codecs=vp8,opus",
  "video/webm;codecs=vp9",
  "video/webm;codecs=vp8",
  "video/webm",
  "audio/webm;codecs=opus",
  "audio/webm",
]);

const AUDIO_CODECS = /^(opus|vorbis)$/i;

// ---------------------------------------------------------------------------
// Small helpers

/**
 * Resolves url against the page and turns http(s) into ws(s), so that
 * "/live/room1/publish" works as well as "wss://host/live/room1/publish".
 * @param {string|URL} url
 * @returns {string}
 */
export function webSocketURL(url) {
  const u = new URL(String(url), globalThis.location ? globalThis.location.href : undefined);
  if (u.protocol === "http:") u.protocol = "ws:";
  else if (u.protocol === "https:") u.protocol = "wss:";
  return u.href;
}

/** @param {string} mime @returns {string[]} the codecs parameter, lower case */
function codecsOf(mime) {
  const m = /codecs\s*=\s*"?([^";]*)"?/i.exec(mime || "");
  return m ? m[1].split(",").map((c) => c.trim().toLowerCase()).filter(Boolean) : [];
}

/** @param {string} mime @returns {string} e.g. "1v1a", "1v0a" */
function trackLayout(mime) {
  const codecs = codecsOf(mime);
  const audio = codecs.filter((c) => AUDIO_CODECS.test(c)).length;
  const isAudioType = /^audio\//i.test(mime || "");
  const video = isAudioType ? 0 : codecs.length ? codecs.length - audio : 1;
  return video + "v" + audio + "a";
}

/**
 * Picks the first MIME type of candidates that MediaRecorder supports and
 * that fits the stream's tracks. Returns "" when none does.
 * @param {MediaStream} stream
 * @param {readonly string[]} [candidates]
 * @returns {string}
 */
export function pickMimeType(stream, candidates = PUBLISH_MIME_TYPES) {
  if (typeof MediaRecorder === "undefined") return "";
  const hasVideo = stream.getVideoTracks().length > 0;
  const hasAudio = stream.getAudioTracks().length > 0;
  for (const mime of candidates) {
    const isVideoType = /^video\//i.test(mime);
    if (isVideoType !== hasVideo) continue;
    const codecs = codecsOf(mime);
    if (codecs.length && isVideoType && codecs.some((c) => AUDIO_CODECS.test(c)) !== hasAudio) continue;
    if (MediaRecorder.isTypeSupported(mime)) return mime;
  }
  return "";
}

/**
 * The MediaSource class this browser has: MediaSource, or ManagedMediaSource
 * (iOS Safari) where MediaSource is absent; null without either.
 * @returns {typeof MediaSource|null}
 */
export function mediaSourceClass() {
  return globalThis.MediaSource || globalThis.ManagedMediaSource || null;
}

/**
 * Reports whether this browser can play a stream of the given MIME type
 * with play().
 * @param {string} mime
 * @returns {boolean}
 */
export function canPlay(mime) {
  const MS = mediaSourceClass();
  return !!MS && !!mime && MS.isTypeSupported(mime);
}

/** Exponential backoff with jitter. */
class Backoff {
  /** @param {number} min ms @param {number} max ms */
  constructor(min, max) {
    this.min = Math.max(0, min);
    this.max = Math.max(this.min, max);
    this.n = 0;
  }
  /** @returns {number} the next delay in ms */
  next() {
    const d = Math.min(this.max, this.min * 2 ** this.n);
    this.n = Math.min(this.n + 1, 30);
    return Math.round(d * (0.8 + 0.4 * Math.random()));
  }
  reset() {
    this.n = 0;
  }
}

/** @param {Error} error @returns {{status?: number, reason?: string}} what an "error" event adds for a refusal */
function refusalOf(error) {
  return error instanceof RefusedError ? { status: error.status, reason: error.reason } : {};
}

/** @param {unknown} e @returns {Error} */
function asError(e) {
  return e instanceof Error ? e : new Error(String(e && e.message ? e.message : e));
}

const now = () => performance.now();

// ---------------------------------------------------------------------------
// Connection: the base Publisher and Player share

/**
 * The base of Publisher and Player: an EventTarget with a status (the
 * "status" event fires only when it changes) and a WebSocket to the hub,
 * reopened with backoff whenever it drops, until _end().
 *
 * A subclass sets this.stats (with a reconnects counter) and implements
 * _opened(ws) (the hub accepted the connection), _received(data) (a message
 * of the current connection), _dropped() (it closed; called before the
 * reconnection is scheduled) and _abort() (options.signal aborted). A
 * refusal the hub explains (REFUSAL_SUBPROTOCOL) ends it with _failed()
 * unless _retryRefusal(status) says it may clear by itself.
 */
class Connection extends EventTarget {
  /**
   * @param {string|URL} url
   * @param {{reconnectMinDelay: number, reconnectMaxDelay: number}} options
   */
  constructor(url, options) {
    super();
    /** @readonly */ this.url = webSocketURL(url);
    this.status = "connecting";
    /** @type {WebSocket|null} */ this._ws = null;
    this._ended = false; // no more connections: stopped, closed, failed
    this._finished = false; // stop(), close() or _failed() ran: nothing more is reported
    this._timer = 0; // the pending reconnection
    this._openedAt = 0; // when the current connection opened (ms, performance.now)
    this._backoff = new Backoff(options.reconnectMinDelay, options.reconnectMaxDelay);
    /** @type {AbortSignal|null} */ this._signal = options.signal || null;
    this._onAbort = () => this._abort();
  }

  /**
   * Ends the publisher or player when options.signal aborts; one already
   * aborted ends it in a microtask, once the caller could add listeners.
   * @returns {boolean} whether the signal had aborted already
   */
  _watchSignal() {
    const signal = this._signal;
    if (!signal) return false;
    if (signal.aborted) {
      this._ended = true;
      queueMicrotask(this._onAbort);
      return true;
    }
    signal.addEventListener("abort", this._onAbort, { once: true });
    return false;
  }

  _unwatchSignal() {
    if (this._signal) this._signal.removeEventListener("abort", this._onAbort);
  }

  /** Why the signal aborted, as a status reason. */
  _abortReason() {
    const r = this._signal && this._signal.reason;
    return "aborted" + (r && r.message ? ": " + r.message : r && typeof r !== "object" ? ": " + r : "");
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /** Sets the status; the event fires only on a change, so a page can redraw on every one. */
  _setStatus(status, reason, extra) {
    if (this.status === status) return;
    this.status = status;
    this._emit("status", { status, reason, ...extra });
  }

  /** Reports an error; a fatal one also sets the status to "error". */
  _fail(error, fatal) {
    this._emit("error", { error, fatal, ...refusalOf(error) });
    if (fatal) this._setStatus("error", error.message);
  }

  /**
   * A failure after which nothing more happens: no more connections, an
   * "error" event (fatal, with the refusal's status and reason if any) and
   * the status "failed".
   * @param {Error} error
   */
  _failed(error) {
    if (this._finished) return;
    this._finished = true;
    this._end();
    this._unwatchSignal();
    const refusal = refusalOf(error);
    this._emit("error", { error, fatal: true, ...refusal });
    this._setStatus("failed", error.message, refusal.status ? { code: 4000 + refusal.status } : undefined);
  }

  /**
   * A failure found in the constructor: reported in a microtask, once the
   * caller has had the chance to add listeners.
   * @param {Error} error
   */
  _failedLater(error) {
    this._ended = true; // no connection meanwhile
    queueMicrotask(() => this._failed(error));
  }

  /** Stops reconnecting; the current connection, if any, is the caller's to close. */
  _end() {
    this._ended = true;
    clearTimeout(this._timer);
  }

  _connect() {
    if (this._ended) return;
    const ws = new WebSocket(this.url, [SUBPROTOCOL, REFUSAL_SUBPROTOCOL]);
    ws.binaryType = "arraybuffer";
    this._ws = ws;
    ws.onopen = () => {
      if (this._ws !== ws) return;
      if (ws.protocol === REFUSAL_SUBPROTOCOL) return; // the hub's refusal: its close follows
      if (ws.protocol !== SUBPROTOCOL) {
        // Not a segrelay hub (or a proxy dropped the header): retrying will
        // not help. (A page may close with 1000 or 3000-4999 only.)
        ws.close(1000, "want " + SUBPROTOCOL);
        this._failed(new Error("segrelay: " + this.url + " does not speak " + SUBPROTOCOL));
        return;
      }
      this._openedAt = now();
      this._opened(ws);
    };
    ws.onmessage = (ev) => {
      if (this._ws === ws) this._received(ev.data);
    };
    ws.onclose = (ev) => {
      if (this._ws !== ws) return;
      this._ws = null;
      this._dropped();
      if (this._ended) return;
      // 4400-4599: the hub refused the connection (see REFUSAL_SUBPROTOCOL).
      const refused = ev.code >= 4400 && ev.code < 4600 ? new RefusedError(this.url, ev.code - 4000, ev.reason) : null;
      if (refused && !this._retryRefusal(refused.status)) {
        this._failed(refused);
        return;
      }
      if (refused) this._fail(refused, false);
      // A connection that lived a while was fine: start the backoff over.
      if (this._openedAt && now() - this._openedAt > 3000) this._backoff.reset();
      this._openedAt = 0;
      const delay = this._backoff.next();
      this.stats.reconnects++;
      this._setStatus("reconnecting", ev.reason || "connection closed (" + ev.code + ")", { code: ev.code, delay });
      this._timer = setTimeout(() => this._connect(), delay);
    };
  }

  /**
   * Whether a refusal with this HTTP status is worth retrying (the Publisher
   * adds its own 409s).
   * @param {number} status
   */
  _retryRefusal(status) {
    return TRANSIENT_REFUSALS.has(status);
  }
}

// ---------------------------------------------------------------------------
// A WebM recorder on WebCodecs, for browsers whose MediaRecorder cannot make
// keyframes often

/** Whether this browser's MediaRecorder ignores keyFrameInterval: Firefox's reads only the type and bit rates, and makes a keyframe every 6-7 s (measured, Firefox 153). */
function recorderIgnoresKeyFrames() {
  return typeof navigator !== "undefined" && /\bFirefox\/\d/.test(navigator.userAgent || "");
}

/** Whether WebCodecsRecorder can record stream as WebM of type mime. */
function webCodecsCanRecord(stream, mime) {
  const video = stream.getVideoTracks().length > 0;
  const audio = stream.getAudioTracks().length > 0;
  if (!/^(video|audio)\/webm/i.test(mime) || !video) return false; // audio only: MediaRecorder's Opus has no keyframes to wait for
  if (!/vp8/i.test(mime) && /codecs=/i.test(mime)) return false;
  if (typeof VideoEncoder !== "function" || typeof VideoFrame !== "function" || typeof document === "undefined") return false;
  if (audio && !(typeof MediaRecorder === "function" && MediaRecorder.isTypeSupported("audio/webm;codecs=opus"))) return false;
  return true;
}

/**
 * WebCodecsRecorder records a MediaStream as WebM: VP8 from WebCodecs with a
 * keyframe every keyFrameInterval ms, a Cluster at each keyframe, and Opus.
 * It stands in for MediaRecorder where MediaRecorder cannot be asked for
 * keyframes (Firefox: every 6-7 s, so a late joiner started seconds back and
 * a viewer that lost a frame waited seconds for the next keyframe), and it
 * has the part of MediaRecorder's interface the Publisher uses:
 * ondataavailable, onerror, start(timeslice), stop() and its "stop" event,
 * state, videoBitsPerSecond.
 *
 * Frames come from a video element playing the stream (Firefox has no
 * MediaStreamTrackProcessor), at the track's frame rate; audio frames from a
 * MediaRecorder recording the audio track alone.
 */
class WebCodecsRecorder extends EventTarget {
  /**
   * @param {MediaStream} stream
   * @param {{mimeType: string, keyFrameInterval: number, videoBitsPerSecond?: number, audioBitsPerSecond?: number}} options
   */
  constructor(stream, options) {
    super();
    this.stream = stream;
    this.mimeType = options.mimeType;
    this.videoBitsPerSecond = options.videoBitsPerSecond || 2500000;
    this.audioBitsPerSecond = options.audioBitsPerSecond || 64000;
    this._keyEvery = (options.keyFrameInterval > 0 ? options.keyFrameInterval : 1000) * 1000; // µs
    this.state = "inactive";
    this.ondataavailable = null;
    this.onerror = null;
    this._out = []; // bytes made since the last dataavailable
    this._cluster = -1; // the open Cluster's time (ms), -1 before the first
    this._t0 = 0; // µs (performance.now): time 0 of the recording
    this._lastKey = -Infinity;
    this._lastTime = {}; // track -> ms of its last frame
    this._pending = []; // frames not written yet, in time order
    this._written = 0; // ms of the last frame written
  }

  start(timeslice) {
    if (this.state !== "inactive") return;
    this.state = "recording";
    this._t0 = now() * 1000;
    this._run().catch((e) => this._error(e));
    // Nothing goes out before the header, which waits for the audio
    // recorder's first bytes: without them in 3 s, MediaRecorder takes over.
    this._headerDeadline = setTimeout(() => {
      if (!this._headed) this._error(Object.assign(new Error("segrelay: WebCodecs recording did not start; recording with MediaRecorder"), { fallback: true }));
    }, 3000);
    this._flusher = setInterval(() => this._deliver(), Math.max(10, timeslice || 200));
  }

  stop() {
    if (this.state === "inactive") return;
    this.state = "inactive";
    clearTimeout(this._headerDeadline);
    this._stopped = this._finish().catch(() => {}).then(() => {
      clearInterval(this._flusher);
      this._deliver();
      this.dispatchEvent(new Event("stop"));
    });
  }

  async _run() {
    const vtrack = this.stream.getVideoTracks()[0];
    const atrack = this.stream.getAudioTracks()[0];
    // Video: a muted element plays the track; each tick encodes its current frame.
    const video = document.createElement("video");
    video.muted = true;
    video.playsInline = true;
    video.srcObject = new MediaStream([vtrack]);
    this._video = video;
    await video.play();
    if (!video.videoWidth) await new Promise((r) => video.addEventListener("resize", r, { once: true }));
    if (this.state !== "recording") return;
    const width = video.videoWidth & ~1, height = video.videoHeight & ~1;
    const fps = Math.min(60, (vtrack.getSettings && vtrack.getSettings().frameRate) || 30);
    const venc = new VideoEncoder({ output: (chunk) => this._block(1, chunk.timestamp, chunk.type === "key", chunk), error: (e) => this._error(e) });
    venc.configure({ codec: "vp8", width, height, bitrate: this.videoBitsPerSecond, framerate: fps, latencyMode: "realtime" });
    this._venc = venc;

    this._size = [width, height];
    if (atrack && /opus/i.test(this.mimeType)) {
      // Audio: Firefox has no MediaStreamTrackProcessor, and an AudioContext
      // does not start before the user interacts with the page. Its
      // MediaRecorder records Opus well (audio frames are all keyframes):
      // its frames go into this recording's second track.
      const arec = new MediaRecorder(new MediaStream([atrack]), { mimeType: "audio/webm;codecs=opus", audioBitsPerSecond: this.audioBitsPerSecond });
      const frames = new WebMFrames();
      const zero = now() * 1000; // µs: time 0 of its timeline
      let chain = Promise.resolve();
      arec.ondataavailable = (e) => {
        chain = chain.then(async () => {
          const bytes = new Uint8Array(await e.data.arrayBuffer());
          if (this.state !== "recording") return;
          for (const f of frames.push(bytes)) this._block(2, zero + f.time * 1000, true, f.data);
          if (!this._headed && frames.audio) this._header(frames.audio);
        }).catch((err) => this._error(err));
      };
      arec.onerror = (e) => this._error(e.error || "audio MediaRecorder error");
      arec.start(100);
      this._arec = arec;
    } else {
      this._header(null);
    }

    const tick = () => {
      if (this.state !== "recording") return;
      this._timer = setTimeout(tick, 1000 / fps);
      if (venc.encodeQueueSize > 2 || video.readyState < 2) return; // the encoder is behind: skip a frame
      const t = now() * 1000;
      const frame = new VideoFrame(video, { timestamp: Math.round(t) });
      const keyFrame = t - this._lastKey >= this._keyEvery;
      if (keyFrame) this._lastKey = t;
      venc.encode(frame, { keyFrame });
      frame.close();
    };
    tick();
  }

  /** The WebM header, before what was recorded so far: EBML, a Segment of unknown size, Info and Tracks. */
  _header(audio) {
    const [width, height] = this._size;
    const tracks = [ebml(0xae, [
      ebmlUint(0xd7, 1), ebmlUint(0x73c5, 1), ebmlUint(0x83, 1), ebmlString(0x86, "V_VP8"),
      ebml(0xe0, [ebmlUint(0xb0, width), ebmlUint(0xba, height)]),
    ])];
    if (audio) {
      tracks.push(ebml(0xae, [
        ebmlUint(0xd7, 2), ebmlUint(0x73c5, 2), ebmlUint(0x83, 2), ebmlString(0x86, "A_OPUS"),
        ebml(0x63a2, audio.codecPrivate || opusHead(audio.channels, audio.sampleRate)), ebmlUint(0x56bb, 80000000),
        ebml(0xe1, [ebmlFloat(0xb5, audio.sampleRate), ebmlUint(0x9f, audio.channels)]),
      ]));
    }
    this._out.unshift(
      ebml(0x1a45dfa3, [ebmlUint(0x4286, 1), ebmlUint(0x42f7, 1), ebmlUint(0x42f2, 4), ebmlUint(0x42f3, 8),
        ebmlString(0x4282, "webm"), ebmlUint(0x4287, 4), ebmlUint(0x4285, 2)]),
      new Uint8Array([0x18, 0x53, 0x80, 0x67, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
      ebml(0x1549a966, [ebmlUint(0x2ad7b1, 1000000), ebmlString(0x4d80, "segrelay relay.js"), ebmlString(0x5741, "segrelay relay.js")]),
      ebml(0x1654ae6b, tracks),
    );
    this._headed = true;
  }

  /**
   * Takes one frame (time: µs, performance.now). Frames are written in time
   * order across tracks (Chromium refuses a Cluster whose audio goes back in
   * time after video), so a video frame waits until audio caught up with it,
   * 500 ms at most; audio later than that is dropped.
   */
  _block(track, time, key, data) {
    const t = Math.max(0, Math.round((time - this._t0) / 1000)); // ms
    const last = this._lastTime[track];
    if (last !== undefined && t <= last) return; // two frames in one ms: MSE would keep only one
    this._lastTime[track] = t;
    const frame = { track, t, key, data };
    const q = this._pending;
    let i = q.length;
    while (i > 0 && q[i - 1].t > t) i--;
    q.splice(i, 0, frame);
    const times = Object.values(this._lastTime);
    const newest = Math.max(...times);
    const mark = !this._arec ? newest : times.length === 2 ? Math.max(Math.min(...times), newest - 500) : newest - 500;
    while (q.length && q[0].t <= mark) {
      const f = q.shift();
      this._write(f.track, f.t, f.key, f.data);
    }
  }

  /** Writes one frame as a SimpleBlock; a video keyframe opens a Cluster. */
  _write(track, t, key, data) {
    if (track === 1 && key) {
      this._out.push(clusterStart(t));
      this._cluster = t;
    } else if (this._cluster < 0) {
      return; // nothing plays before the first keyframe
    } else if (t - this._cluster > 30000) {
      this._out.push(clusterStart(t)); // block times are 16 bits, relative to the Cluster
      this._cluster = t;
    }
    if (t < this._written) return; // too late: a Cluster's blocks go forward in time
    this._written = t;
    const rel = t - this._cluster;
    const block = new Uint8Array(4 + data.byteLength);
    block[0] = 0x80 | track;
    block[1] = (rel >> 8) & 0xff;
    block[2] = rel & 0xff;
    block[3] = key ? 0x80 : 0;
    if (data instanceof Uint8Array) block.set(data, 4);
    else data.copyTo(block.subarray(4));
    this._out.push(ebml(0xa3, block));
  }

  _deliver() {
    if (!this._out.length || !this._headed) return; // the header waits for the audio track's parameters
    const blob = new Blob(this._out, { type: this.mimeType });
    this._out = [];
    if (this.ondataavailable) this.ondataavailable({ data: blob });
  }

  async _finish() {
    clearTimeout(this._timer);
    if (this._arec && this._arec.state !== "inactive") {
      this._arec.ondataavailable = null;
      this._arec.stop();
    }
    if (this._venc && this._venc.state === "configured") await this._venc.flush().catch(() => {});
    if (this._venc && this._venc.state !== "closed") this._venc.close();
    for (const f of this._pending.splice(0)) this._write(f.track, f.t, f.key, f.data);
    if (this._video) this._video.srcObject = null;
  }

  _error(e) {
    if (this.state === "inactive") return;
    this.state = "inactive";
    clearTimeout(this._headerDeadline);
    this._finish().catch(() => {});
    clearInterval(this._flusher);
    if (this.onerror) this.onerror({ error: asError(e) });
  }
}

// ---------------------------------------------------------------------------
// Publisher

/**
 * @typedef {object} PublishOptions
 * @property {string} [mimeType] MediaRecorder type to use; default: the first
 *   of PUBLISH_MIME_TYPES (or of `mimeTypes`) that is supported and fits the tracks.
 * @property {string[]} [mimeTypes] candidate types, best first.
 * @property {number} [timeslice=200] ms of media per MediaRecorder blob: the
 *   recorder's contribution to latency.
 * @property {number} [keyFrameInterval=1000] ms between video keyframes
 *   (videoKeyFrameIntervalDuration, where the browser has it; 0 leaves the
 *   browser's default, every 3.5 to 5 s in Chromium). Late joiners start at a
 *   keyframe, so this bounds how long they wait or how far back they start.
 * @property {"auto"|"mediarecorder"|"webcodecs"} [encoder="auto"] what records:
 *   MediaRecorder, or WebCodecs (VP8 and Opus, muxed to WebM here) where
 *   MediaRecorder ignores keyFrameInterval. "auto" takes WebCodecs in
 *   Firefox, whose MediaRecorder makes a keyframe every 6-7 s whatever it
 *   is asked (late joiners start that far back, and a lost frame freezes the
 *   picture until the next keyframe), and MediaRecorder elsewhere, or where
 *   WebCodecs cannot record the stream (audio only, no VideoEncoder, a VP9
 *   mimeType).
 * @property {number} [videoBitsPerSecond] passed to MediaRecorder.
 * @property {number} [audioBitsPerSecond] passed to MediaRecorder.
 * @property {number} [maxSendLag=2000] ms: when the oldest byte not yet sent
 *   by the WebSocket is older than this, the recorder is stopped and, once the
 *   socket has drained, started again (a new init; viewers see a
 *   discontinuity) instead of queueing without bound. Note that the browser
 *   counts a byte as sent once its network stack took it: the operating
 *   system's socket buffers (up to a few MB) fill before bufferedAmount grows.
 * @property {boolean} [adaptBitrate=true] after such a stop, record at a
 *   video bitrate the connection can carry (70% of the rate it drained at),
 *   until the next reconnection.
 * @property {number} [reconnectMinDelay=250] ms before the first reconnection.
 * @property {number} [reconnectMaxDelay=5000] ms, the longest backoff.
 * @property {AbortSignal} [signal] ends publishing when it aborts, as stop() does.
 */

/**
 * @typedef {"connecting"|"live"|"congested"|"reconnecting"|"stopped"|"failed"} PublisherStatus
 *   connecting: opening the WebSocket; live: recording and sending;
 *   congested: the socket fell behind, the recorder is paused until it drains;
 *   reconnecting: the connection dropped or the hub refused it for now (429,
 *   503), waiting to retry; stopped: stop() was called (or every track ended,
 *   or options.signal aborted); failed: cannot publish (no MediaRecorder, no
 *   supported type, not a segrelay hub, or the hub refused: 401, 403, 404,
 *   409, ...; see the "error" event). After stopped and failed nothing more
 *   happens.
 */

/**
 * A Publisher records a MediaStream and sends it to a hub. Make one with
 * publish(). It is an EventTarget; every event is a CustomEvent whose detail
 * is described here:
 *
 *  - "status": {status: PublisherStatus, reason?: string, delay?: number}
 *    when the status changes (delay: ms until the first reconnection; the
 *    retries after it fire no event, stats.reconnects counts them).
 *  - "subscribers": {subscribers: number}, from the hub, when the count changes.
 *  - "restart": {reason: string, videoBitsPerSecond?: number}: the recorder
 *    was restarted (a new init); after congestion, with the lower bitrate.
 *  - "error": {error: Error, fatal: boolean, status?: number, reason?: string}:
 *    fatal with the status "failed"; status and reason when the hub refused
 *    the connection (error is then a RefusedError). Failures found by the
 *    constructor fire in a microtask, so listeners added right after
 *    publish() get them.
 */
export class Publisher extends Connection {
  /**
   * @param {string|URL} url the hub's publish route, e.g. "/live/room1/publish"
   * @param {MediaStream} stream
   * @param {PublishOptions} [options]
   */
  constructor(url, stream, options = {}) {
    const opts = {
      timeslice: 200,
      keyFrameInterval: 1000,
      maxSendLag: 2000,
      adaptBitrate: true,
      reconnectMinDelay: 250,
      reconnectMaxDelay: 5000,
      ...options,
    };
    super(url, opts);
    /** @readonly */ this.stream = stream;
    this.options = opts;
    /** @type {PublisherStatus} */
    this.status = "connecting";
    /** Viewers watching, as last reported by the hub (null before the first report). @type {number|null} */
    this.subscribers = null;
    /** The MediaRecorder type in use. */
    this.mimeType = "";
    /** What records: "mediarecorder", or "webcodecs" (see PublishOptions.encoder); "" before the first recorder. */
    this.encoder = "";
    /** Counters, for display and tests. */
    this.stats = { bytesSent: 0, blobs: 0, restarts: 0, reconnects: 0, sendLag: 0 };

    /** @type {MediaRecorder|WebCodecsRecorder|null} */ this._rec = null;
    this._noWebCodecs = false; // WebCodecs could not record here: MediaRecorder from now on
    this._congested = false;
    this._sent = []; // [{end: cumulative bytes, t}] of what the socket may still hold
    this._total = 0;
    this._restarting = null; // Promise while the recorder restarts
    this._videoBps = this.options.videoBitsPerSecond || 0; // 0: the browser's choice
    this._cong = null; // {at, total, buffered, progressAt, lastBuffered} while congested
    this._lastLive = 0; // when this publisher's last live connection dropped (ms, performance.now)
    this._watch = setInterval(() => this._checkBackpressure(), 100);
    this._onTrackEnded = () => {
      if (this.stream.getTracks().every((t) => t.readyState === "ended")) this.stop("every track ended");
    };
    for (const t of stream.getTracks()) t.addEventListener("ended", this._onTrackEnded);

    // Failures found here are reported once the caller could add listeners.
    if (typeof MediaRecorder === "undefined" || typeof WebSocket === "undefined") {
      this._failedLater(new Error("segrelay: this browser has no MediaRecorder or no WebSocket"));
      return;
    }
    const mime = this.options.mimeType || pickMimeType(stream, this.options.mimeTypes || PUBLISH_MIME_TYPES);
    if (!mime || !MediaRecorder.isTypeSupported(mime)) {
      this._failedLater(new Error("segrelay: MediaRecorder supports none of the WebM types for this stream" +
        (this.options.mimeType ? " (asked: " + this.options.mimeType + ")" : "")));
      return;
    }
    this.mimeType = mime;
    if (this._watchSignal()) return;
    this._connect();
  }

  /**
   * Restarts the recorder: the old one is stopped (its last bytes are sent),
   * a new one starts at once. Viewers receive a new init and keep playing.
   * Useful after changing the stream's tracks.
   * @param {string} [reason]
   * @returns {Promise<void>}
   */
  restart(reason = "restart") {
    if (this._ended || !this._ws || this._ws.readyState !== WebSocket.OPEN) return Promise.resolve();
    if (this._restarting) return this._restarting;
    const ws = this._ws;
    this._restarting = this._stopRecorder().then(() => {
      this._restarting = null;
      if (this._ws === ws && ws.readyState === WebSocket.OPEN && !this._ended && !this._congested) {
        this._startRecorder(ws);
        this.stats.restarts++;
        this._emit("restart", { reason });
      }
    });
    return this._restarting;
  }

  /**
   * Stops publishing: the recorder's last bytes are sent, then {"type":"end"},
   * and the connection is closed. Viewers stay and see the stream end.
   * The MediaStream's tracks are left running (stop them yourself).
   * @param {string} [reason]
   * @returns {Promise<void>} resolved when the connection is closed
   */
  async stop(reason = "stopped") {
    if (this._finished) return;
    this._finished = true;
    this._end();
    this._unwatchSignal();
    this._release();
    const ws = this._ws;
    await this._stopRecorder();
    if (ws && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify({ type: "end" }));
      // The hub answers "end" by closing with 1000; do not wait for ever.
      await new Promise((resolve) => {
        const t = setTimeout(() => { ws.close(1000, "end"); resolve(); }, 3000);
        ws.addEventListener("close", () => { clearTimeout(t); resolve(); }, { once: true });
      });
    } else if (ws) {
      ws.close();
    }
    this._ws = null;
    this._setStatus("stopped", reason);
  }

  /** Stops watching the stream's tracks and the socket. */
  _release() {
    clearInterval(this._watch);
    for (const t of this.stream.getTracks()) t.removeEventListener("ended", this._onTrackEnded);
  }

  _failed(error) {
    if (this._finished) return;
    this._release();
    this._discardRecorder();
    const ws = this._ws;
    this._ws = null;
    if (ws) ws.close(1000, "failed");
    super._failed(error);
  }

  _abort() {
    this.stop(this._abortReason());
  }

  // --- the connection (see Connection)

  _opened(ws) {
    // Each connection starts with a fresh send queue, and at the asked
    // bitrate: a new connection may carry what the old one could not.
    this._sent = [];
    this._total = 0;
    this._congested = false;
    this._videoBps = this.options.videoBitsPerSecond || 0;
    // Without codecs in the type, let the hub read them from the WebM
    // (viewers need them to pick a decoder).
    const mime = codecsOf(this.mimeType).length ? this.mimeType : "";
    ws.send(JSON.stringify({ type: "start", mime, mode: "stream" }));
    this._startRecorder(ws);
    this._setStatus("live");
  }

  _received(data) {
    if (typeof data !== "string") return;
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    if (msg && msg.type === "stats" && typeof msg.subscribers === "number") {
      this.subscribers = msg.subscribers;
      this._emit("subscribers", { subscribers: msg.subscribers });
    }
  }

  _dropped() {
    if (this._openedAt) this._lastLive = now();
    this._discardRecorder();
  }

  /**
   * A 409 is retried for a minute after this publisher's own connection
   * dropped: the hub may hold that connection until it notices it is gone
   * (at its idle timeout, 30 s by default), and refuses the reconnection
   * meanwhile. Otherwise another publisher has the stream.
   */
  _retryRefusal(status) {
    return super._retryRefusal(status) || (status === 409 && this._lastLive > 0 && now() - this._lastLive < 60000);
  }

  // --- the recorder and the send queue

  _recorderOptions() {
    const o = { mimeType: this.mimeType };
    if (this.options.keyFrameInterval > 0) o.videoKeyFrameIntervalDuration = this.options.keyFrameInterval;
    if (this._videoBps) o.videoBitsPerSecond = this._videoBps;
    if (this.options.audioBitsPerSecond) o.audioBitsPerSecond = this.options.audioBitsPerSecond;
    return o;
  }

  /** Starts a recorder whose bytes go to ws, and only to ws. */
  _startRecorder(ws) {
    let rec;
    try {
      const enc = this.options.encoder;
      const wc = !this._noWebCodecs && (enc === "webcodecs" || (enc !== "mediarecorder" && recorderIgnoresKeyFrames()));
      if (wc && webCodecsCanRecord(this.stream, this.mimeType)) {
        rec = new WebCodecsRecorder(this.stream, { ...this._recorderOptions(), keyFrameInterval: this.options.keyFrameInterval });
        this.encoder = "webcodecs";
      } else {
        rec = new MediaRecorder(this.stream, this._recorderOptions());
        this.encoder = "mediarecorder";
      }
    } catch (e) {
      this._failed(asError(e));
      return;
    }
    rec.ondataavailable = (e) => {
      if (e.data && e.data.size > 0 && this._ws === ws && ws.readyState === WebSocket.OPEN) this._send(ws, e.data);
    };
    rec.onerror = (e) => {
      if (this._rec !== rec) return;
      if (e.error && e.error.fallback) this._noWebCodecs = true; // it sent nothing yet
      this._fail(asError(e.error || "MediaRecorder error"), false);
      this.restart("recorder error");
    };
    this._rec = rec;
    rec.start(this.options.timeslice);
  }

  /** Stops the current recorder; resolves once its last blob was handed over. */
  _stopRecorder() {
    const rec = this._rec;
    this._rec = null;
    if (!rec || rec.state === "inactive") return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, 2000);
      rec.addEventListener("stop", () => { clearTimeout(t); resolve(); }, { once: true });
      try {
        rec.stop();
      } catch {
        clearTimeout(t);
        resolve();
      }
    });
  }

  /** Stops the current recorder and throws its remaining bytes away. */
  _discardRecorder() {
    const rec = this._rec;
    this._rec = null;
    if (rec && rec.state !== "inactive") {
      rec.ondataavailable = null;
      try {
        rec.stop();
      } catch {
        // already stopped
      }
    }
  }

  /** Sends a blob; the hub takes messages of any size up to its limit (1 MiB by default). */
  _send(ws, blob) {
    const max = 256 * 1024;
    for (let off = 0; off < blob.size; off += max) {
      const part = blob.size <= max ? blob : blob.slice(off, off + max);
      ws.send(part);
      this._total += part.size;
      this._sent.push({ end: this._total, t: now() });
    }
    this.stats.bytesSent += blob.size;
    this.stats.blobs++;
    this._checkBackpressure();
  }

  /** How long the oldest byte still in the socket's buffer has waited, in ms. */
  _sendLag() {
    const ws = this._ws;
    if (!ws) return 0;
    const done = this._total - ws.bufferedAmount;
    while (this._sent.length && this._sent[0].end <= done) this._sent.shift();
    return this._sent.length ? now() - this._sent[0].t : 0;
  }

  _checkBackpressure() {
    const ws = this._ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    const lag = this._sendLag();
    this.stats.sendLag = Math.round(lag);
    const t = now();
    if (!this._congested && lag > this.options.maxSendLag) {
      // Seconds behind: stop recording rather than queue without bound. The
      // recorder's last blob still goes out so the WebM stays whole.
      const rec = this._rec;
      this._congested = true;
      this._cong = { at: t, total: this._total, buffered: ws.bufferedAmount, progressAt: t, lastBuffered: ws.bufferedAmount,
        bps: (rec && rec.videoBitsPerSecond) || this._videoBps };
      this._stopRecorder();
      this._setStatus("congested", "the connection is " + Math.round(lag) + " ms behind");
    } else if (this._congested) {
      const c = this._cong;
      if (ws.bufferedAmount < c.lastBuffered) c.progressAt = t;
      c.lastBuffered = ws.bufferedAmount;
      if (ws.bufferedAmount === 0 || lag < 100) {
        this._congested = false;
        const secs = (t - c.at) / 1000;
        const drained = c.buffered + (this._total - c.total) - ws.bufferedAmount;
        const bps = Math.floor((drained * 8 / Math.max(secs, 0.001)) * 0.7);
        if (this.options.adaptBitrate && secs > 0.5 && bps < (c.bps || Infinity)) this._videoBps = Math.max(100000, bps);
        this._startRecorder(ws);
        this.stats.restarts++;
        this._emit("restart", { reason: "congestion", videoBitsPerSecond: this._videoBps || undefined });
        this._setStatus("live");
      } else if (t - c.progressAt > 20000) {
        // Nothing moved for 20 s: the connection is dead; start over.
        // close() would queue its frame behind the stuck bytes: reconnect
        // now (the hub frees the stream once the old connection times out).
        ws.close(4000, "the connection does not move");
        ws.onclose({ code: 4000, reason: "the connection does not move" });
      }
    }
  }
}

/**
 * Publishes a MediaStream to a segrelay hub: one continuous MediaRecorder,
 * its WebM bytes sent over protocol v1 in stream mode, reconnecting with
 * backoff until stop().
 * @param {string|URL} url the publish route, e.g. "/live/room1/publish" or "wss://host/live/room1/publish"
 * @param {MediaStream} stream camera, screen, canvas.captureStream(), ...
 * @param {PublishOptions} [options]
 * @returns {Publisher}
 */
export function publish(url, stream, options) {
  return new Publisher(url, stream, options);
}

// ---------------------------------------------------------------------------
// The MSE append queue

/**
 * AppendQueue owns one MediaSource attached to a video element and feeds its
 * one SourceBuffer, one operation at a time and in order: appends (init,
 * media), changeType and removals. A QuotaExceededError frees played media
 * and retries; any other error, and the MediaSource closing, go to the
 * player, which starts over with a new AppendQueue.
 */
class AppendQueue {
  /**
   * @param {typeof MediaSource} MS
   * @param {HTMLVideoElement} video
   * @param {string} mime the type to make the SourceBuffer with
   * @param {{appended(op: object, bufferedEnd: number): void, dropped(op: object): void,
   *   evicted(): void, failed(reason: string): void, fatal(error: Error): void}} on
   */
  constructor(MS, video, mime, on) {
    this.video = video;
    /** The type the SourceBuffer was made with, or changed to. */
    this.mime = mime;
    this._on = on;
    /** @type {MediaSource|null} */ this._ms = new MS();
    /** @type {SourceBuffer|null} */ this._sb = null;
    this._queue = []; // {kind: "init"|"media"|"changeType"|"remove", ...}
    this._queuedBytes = 0;
    this._current = null; // the operation the SourceBuffer is busy with
    this._initDone = false; // an init was appended to this SourceBuffer
    const ms = this._ms;
    if (globalThis.ManagedMediaSource && ms instanceof globalThis.ManagedMediaSource) {
      video.disableRemotePlayback = true; // required for ManagedMediaSource without an AirPlay source
    }
    ms.addEventListener("sourceopen", () => {
      if (this._ms !== ms) return;
      try {
        ms.duration = Infinity; // live
      } catch {
        // not essential
      }
      try {
        const sb = ms.addSourceBuffer(this.mime);
        sb.mode = "sequence";
        sb.addEventListener("updateend", () => this._updateEnd(sb));
        sb.addEventListener("error", () => {
          if (this._sb === sb) this._on.failed("the SourceBuffer could not take a segment");
        });
        this._sb = sb;
      } catch (e) {
        this._on.fatal(asError(e));
        return;
      }
      this._pump();
    }, { once: true });
    ms.addEventListener("sourceclose", () => {
      if (this._ms === ms) this._on.failed("the MediaSource closed");
    });
    this._objectURL = URL.createObjectURL(ms);
    video.src = this._objectURL;
  }

  /** Detaches the MediaSource from the video element; the queue is dropped. */
  close() {
    this._queue = [];
    this._queuedBytes = 0;
    this._current = null;
    this._sb = null;
    this._ms = null;
    this.video.removeAttribute("src");
    this.video.load();
    URL.revokeObjectURL(this._objectURL);
  }

  /** Whether the SourceBuffer exists and its MediaSource is open. */
  open() {
    return !!this._sb && !!this._ms && this._ms.readyState === "open";
  }

  /** Whether the SourceBuffer exists (sourceopen has fired). */
  hasSourceBuffer() {
    return !!this._sb;
  }

  /** Whether operations wait or one runs. */
  busy() {
    return this._queue.length > 0 || (!!this._sb && this._sb.updating);
  }

  /** Bytes of appends waiting. */
  queuedBytes() {
    return this._queuedBytes;
  }

  /** Switches to mime in place; false when the tracks differ (a SourceBuffer cannot change them). */
  changeType(mime) {
    if (trackLayout(mime) !== trackLayout(this.mime) || !this._sb || typeof this._sb.changeType !== "function") return false;
    this.push({ kind: "changeType", mime });
    this.mime = mime;
    return true;
  }

  push(op) {
    this._queue.push(op);
    this._queuedBytes += op.bytes || 0;
    this._pump();
  }

  /** Drops the media appends that wait (the SourceBuffer does not keep up). */
  dropMedia() {
    this._queue = this._queue.filter((op) => op.kind !== "media");
    this._queuedBytes = this._queue.reduce((n, op) => n + (op.bytes || 0), 0);
  }

  /** Removes [start, end) before anything else that waits. */
  removeFirst(start, end) {
    this._queue.unshift({ kind: "remove", start, end });
    this._pump();
  }

  bufferedEnd() {
    const b = this._sb ? this._sb.buffered : null;
    return b && b.length ? b.end(b.length - 1) : 0;
  }

  _pump() {
    const sb = this._sb;
    if (!sb || sb.updating || this._current || !this._ms || this._ms.readyState !== "open") return;
    while (this._queue.length) {
      const op = this._queue[0];
      try {
        if (op.kind === "changeType") {
          this._queue.shift();
          sb.changeType(op.mime);
          continue;
        }
        if (op.kind === "remove") {
          this._queue.shift();
          if (op.end > op.start) {
            this._current = op;
            sb.remove(op.start, op.end);
            return;
          }
          continue;
        }
        if (op.kind === "init" && this._initDone) {
          // A new init restarts the timestamps at 0: reset the parser and
          // put what follows right after what we have ("sequence" mode).
          sb.abort();
          const end = this.bufferedEnd();
          if (end > 0) sb.timestampOffset = end;
        }
        this._current = op;
        sb.appendBuffer(op.data);
        this._queue.shift();
        this._queuedBytes -= op.bytes || 0;
        if (op.kind === "init") this._initDone = true;
        return;
      } catch (e) {
        this._current = null;
        if (e && e.name === "QuotaExceededError") {
          if (!this._evict(op)) {
            // Nothing left to free: drop it and resume at a keyframe.
            this._queue.shift();
            this._queuedBytes -= op.bytes || 0;
            this._on.dropped(op);
            continue;
          }
          return; // the removal runs first; the append is retried after it
        }
        this._on.failed((e && e.message) || String(e));
        return;
      }
    }
  }

  /** Frees buffer space after QuotaExceededError; false if nothing can go. */
  _evict(op) {
    const b = this._sb.buffered;
    if (!b.length || op.evicted) return false;
    const ct = this.video.currentTime;
    const start = b.start(0);
    const end = Math.min(ct - 1, b.end(b.length - 1) - 1);
    if (end <= start) return false;
    op.evicted = true;
    this._on.evicted();
    this.removeFirst(start, end);
    return true;
  }

  _updateEnd(sb) {
    if (this._sb !== sb) return;
    const op = this._current;
    this._current = null;
    if (op && op.kind === "media") this._on.appended(op, this.bufferedEnd());
    this._pump();
  }
}

// ---------------------------------------------------------------------------
// Player

/**
 * @typedef {object} PlayOptions
 * @property {number} [targetLatency=0] seconds: how far behind the newest
 *   media received the player aims to play. It is never below what the
 *   stream's arrival rhythm needs to play without stalling (the largest gap
 *   between arrivals, or the most media one arrival brought, over the last
 *   15 s, plus safetyMargin), so 0 means "as low as is safe".
 * @property {number} [safetyMargin=0.15] seconds added to that gap.
 * @property {number} [jumpThreshold=1.0] seconds: further behind the target
 *   than this, the player jumps (seeks) to the target; closer, it catches up
 *   by playing slightly faster.
 * @property {number} [maxPlaybackRate=1.25] the fastest catch-up rate.
 * @property {number} [backBuffer=10] seconds of played media kept (older is removed).
 * @property {number} [idleTimeout=10000] ms without a message from a live
 *   stream after which the connection is considered dead and reopened.
 * @property {boolean} [autoplay=true] call video.play() (muted if the
 *   browser refuses sound without a user gesture).
 * @property {number} [reconnectMinDelay=250] ms.
 * @property {number} [reconnectMaxDelay=5000] ms.
 * @property {AbortSignal} [signal] ends playing when it aborts, as close() does.
 */

/**
 * @typedef {"connecting"|"waiting"|"buffering"|"live"|"stalled"|"reconnecting"|"error"|"closed"|"failed"} PlayerStatus
 *   connecting: opening the WebSocket; waiting: connected, no publisher (or
 *   it left); buffering: media is coming, playback about to start; live:
 *   playing; stalled: the publisher is live but playback is not moving;
 *   reconnecting: the connection dropped or the hub refused it for now
 *   (429, 503), waiting to retry; error: this stream cannot be played here
 *   (see the "error" event), waiting for the next session; closed: close()
 *   was called or options.signal aborted; failed: this browser has no
 *   MediaSource, the server is not a segrelay hub, or the hub refused the
 *   connection (401, 403, 404, ...). After closed and failed nothing more
 *   happens.
 */

/**
 * A Player plays a stream in a video element with Media Source Extensions.
 * Make one with play(). It is an EventTarget; every event is a CustomEvent:
 *
 *  - "status": {status: PlayerStatus, reason?: string, delay?: number}
 *    when the status changes, as for the Publisher.
 *  - "latency": {latency, target, lag, playbackRate} about once a second:
 *    latency is how far, in seconds, the picture shown is behind the newest
 *    media received (the publisher's recording and the network add to it);
 *    target is what the player aims for; lag is the media buffered ahead.
 *  - "session": {mime, stream} when a publisher session starts.
 *  - "muted": {reason}: the browser refused to autoplay with sound, so the
 *    video was muted to play (offer the user an unmute button).
 *  - "error": {error: Error, fatal: boolean, status?: number, reason?: string}:
 *    a fatal error with the status "error" (a type the browser cannot play)
 *    leaves the player waiting for the next session it can play; one with
 *    the status "failed" ends it. status and reason come with a refusal by
 *    the hub (error is then a RefusedError). Failures found by the
 *    constructor fire in a microtask, so listeners added right after play()
 *    get them.
 */
export class Player extends Connection {
  /**
   * @param {string|URL} url the hub's subscribe route, e.g. "/live/room1/subscribe"
   * @param {HTMLVideoElement} video
   * @param {PlayOptions} [options]
   */
  constructor(url, video, options = {}) {
    const opts = {
      targetLatency: 0,
      safetyMargin: 0.15,
      jumpThreshold: 1.0,
      maxPlaybackRate: 1.25,
      backBuffer: 10,
      idleTimeout: 10000,
      autoplay: true,
      reconnectMinDelay: 250,
      reconnectMaxDelay: 5000,
      ...options,
    };
    super(url, opts);
    /** @readonly */ this.video = video;
    this.options = opts;
    /** @type {PlayerStatus} */
    this.status = "connecting";
    /** The current session's MIME type. */
    this.mimeType = "";
    /** The stream's name, from the hub. */
    this.streamName = "";
    /** Seconds behind the newest media received, smoothed (see the "latency" event); NaN before playback. */
    this.latency = NaN;
    /** Counters, for display and tests. */
    this.stats = {
      segments: 0, bytes: 0, sessions: 0, inits: 0, discontinuities: 0, skippedSegments: 0,
      droppedSegments: 0, jumps: 0, gapSkips: 0, nudges: 0, reconnects: 0, resets: 0, quotaEvictions: 0,
    };

    this._closed = false;

    // Protocol: the messages of the current connection and session.
    this._expect = null; // header waiting for its binary message
    this._live = false; // a publisher session is on
    this._lastSeq = 0;
    this._lastMsg = 0; // when any message was last received (ms, performance.now)
    this._lastRecv = 0; // when media was last received
    this._unplayable = ""; // the session's mime when it cannot be played
    this._waitKey = true; // drop media until a keyframe
    /** @type {WebMAppender|null} */ this._webm = null; // the session's WebM media, as MSE wants it

    // Media Source Extensions: the MediaSource of the moment and its append queue.
    this._MS = mediaSourceClass();
    /** @type {AppendQueue|null} */ this._mse = null;
    this._mediaErrors = []; // when the media failed lately: starting over has a limit

    // Playback control: where the live edge is, how far behind it to play.
    this._resync = true; // start the next media near the live edge
    this._settle = 0;
    this._gaps = []; // [t, seconds]: gaps between arrivals, and media brought by one arrival
    this._burst = 0; // arrivals less than 0.5 s apart are one burst (of at most 10 s); this numbers them
    this._burstStart = 0; // when the current burst began
    this._burstMedia = 0; // seconds of media the current burst added
    this._joinBurst = -1; // the burst that replays a live session to a new connection
    this._edgeEnd = 0; // buffered end after the last append that grew it
    this._edgeTime = 0; // when the media of that append was received
    this._smooth = NaN; // latency, smoothed over about a second (the controller's input)
    this._lastCT = -1;
    this._stuckSince = 0;
    // A seek decodes from the keyframe before its target: far from one it
    // takes long (Chromium: about 0.15 s per second of GOP, measured), and
    // the player is that much further behind when it lands. A jump must not
    // cost more than it saves, or the player jumps again and again.
    this._seekStart = 0; // when the last seek began (0: none running)
    this._seekCost = 0; // seconds the last seek took
    this._userPaused = false;
    this._selfPause = false;
    this._lastLatencyEvent = 0;
    this._lastTrim = 0;

    this._onVideoEvent = (e) => this._videoEvent(e);
    for (const type of ["pause", "play", "playing", "waiting", "error", "seeked"]) video.addEventListener(type, this._onVideoEvent);
    this._onVisibility = () => this._tick();
    globalThis.document && document.addEventListener("visibilitychange", this._onVisibility);
    this._ticker = setInterval(() => this._tick(), 100);

    if (!this._MS) {
      // Reported once the caller could add listeners.
      this._failedLater(new Error("segrelay: this browser has no MediaSource (Media Source Extensions): it cannot play live streams"));
      return;
    }
    if (this._watchSignal()) return;
    this._connect();
  }

  /**
   * Stops playing: closes the connection and detaches the video element.
   * @param {string} [reason]
   */
  close(reason = "closed") {
    if (this._finished) return;
    this._finished = true;
    this._release();
    this._setStatus("closed", reason);
  }

  _failed(error) {
    if (this._finished) return;
    this._release();
    super._failed(error);
  }

  _abort() {
    this.close(this._abortReason());
  }

  /** Ends everything the player runs: connection, timers, listeners, MediaSource. */
  _release() {
    this._closed = true;
    this._end();
    this._unwatchSignal();
    clearTimeout(this._settle);
    clearInterval(this._ticker);
    globalThis.document && document.removeEventListener("visibilitychange", this._onVisibility);
    for (const type of ["pause", "play", "playing", "waiting", "error", "seeked"]) this.video.removeEventListener(type, this._onVideoEvent);
    if (this._ws) {
      const ws = this._ws;
      this._ws = null;
      ws.close(1000, "closed");
    }
    this._detach();
  }

  // --- protocol: the connection (see Connection) and its messages

  _opened() {
    this._expect = null;
    this._lastMsg = this._openedAt;
    if (this.status === "connecting" || this.status === "reconnecting") this._setStatus("waiting");
  }

  _dropped() {
    this._live = false;
  }

  /** Drops the connection and opens a new one soon (after an error, or silence). */
  _reconnect(reason) {
    const ws = this._ws;
    if (ws) ws.close(4000, reason.slice(0, 100)); // onclose schedules the reconnection
  }

  _received(data) {
    this._lastMsg = now();
    if (typeof data === "string") {
      let msg;
      try {
        msg = JSON.parse(data);
      } catch {
        return; // not ours to judge; the hub sends JSON
      }
      if (!msg || typeof msg !== "object") return;
      switch (msg.type) {
        case "start":
          this._start(msg);
          break;
        case "init":
        case "segment":
          this._expect = msg;
          break;
        case "end":
          this._live = false;
          this._appendHeld();
          this._setStatus("waiting", "the publisher left");
          break;
        default: // unknown types are ignored: room to grow
      }
      return;
    }
    const hdr = this._expect;
    this._expect = null;
    if (!hdr) return;
    if (hdr.type === "init") {
      this._lastSeq = 0; // a joiner's media starts after a gap: that is no skip
      this._init(data);
      return;
    }
    if (typeof hdr.seq === "number") {
      // Seq numbers are consecutive: a gap is media the hub skipped for us.
      if (this._lastSeq && hdr.seq > this._lastSeq + 1) this.stats.skippedSegments += hdr.seq - this._lastSeq - 1;
      this._lastSeq = hdr.seq;
    }
    this._media(hdr, data);
  }

  _start(msg) {
    const mime = String(msg.mime || "");
    this._live = true;
    this._resync = true;
    this._gaps = [];
    this._lastRecv = 0;
    // A start right after connecting replays a live session: its first burst
    // is the latest GOP, old media all at once, which says nothing about the
    // stream's rhythm. A start that comes later brings new media.
    this._joinBurst = now() - this._openedAt < 150 ? this._burst + 1 : -1;
    this._waitKey = true;
    this.streamName = msg.stream || this.streamName;
    this.stats.sessions++;
    this.mimeType = mime;
    this._emit("session", { mime, stream: this.streamName });
    if (!this._MS) return;
    if (!this._MS.isTypeSupported(mime)) {
      this._unplayable = mime;
      this._fail(new Error('segrelay: this browser cannot play "' + mime + '" with Media Source Extensions'), true);
      return;
    }
    this._unplayable = "";
    if (this.status === "error") this._setStatus("buffering");
    if (!this._mse || (mime !== this._mse.mime && !this._mse.changeType(mime))) {
      this._attach(mime); // the first session, or other tracks
    }
  }

  _init(data) {
    if (this._unplayable || !this._mse) return;
    this.stats.inits++;
    this._waitKey = true;
    this._appendHeld();
    this._webm = /webm/i.test(this._mse.mime) ? new WebMAppender(webmVideoTrack(new Uint8Array(data))) : null;
    this._mse.push({ kind: "init", data, bytes: data.byteLength });
  }

  _media(hdr, data) {
    if (this._unplayable || !this._mse) return;
    const t = now();
    if (hdr.discontinuity) this.stats.discontinuities++;
    if (this._waitKey && !hdr.keyframe) {
      this.stats.droppedSegments++;
      return;
    }
    this._waitKey = false;
    if (this._lastRecv && t - this._lastRecv > 30) this._gaps.push([t, (t - this._lastRecv) / 1000]);
    // (A steady stream may run as one long burst: it brings media no faster
    // than time passes, so it adds nothing below.)
    if (!this._lastRecv || t - this._lastRecv > 500 || t - this._burstStart > 10000) {
      this._burst++;
      this._burstStart = t;
      this._burstMedia = 0;
    }
    this._lastRecv = t;
    this.stats.segments++;
    this.stats.bytes += data.byteLength;
    if (this._mse.queuedBytes() > 64 * 1024 * 1024) {
      // The SourceBuffer does not keep up at all: drop what waits, resume at a keyframe.
      this._mse.dropMedia();
      if (this._webm) this._webm.reset();
      this._waitKey = true;
      this.stats.droppedSegments++;
      return;
    }
    if (hdr.discontinuity && this._webm) {
      // Media was skipped: what is held ends where it was.
      this._appendHeld();
      this._webm.reset();
    }
    const append = this._webm ? this._webm.take(data) : data;
    if (append.byteLength) this._mse.push({ kind: "media", data: append, bytes: append.byteLength, t, keyframe: !!hdr.keyframe, burst: this._burst });
  }

  /** Appends what the WebMAppender holds: the session ends, a new init or a gap comes, or nothing came for a while. */
  _appendHeld() {
    const held = this._webm && this._webm.flush();
    if (held && this._mse) this._mse.push({ kind: "media", data: held, bytes: held.byteLength, t: now(), keyframe: false, burst: this._burst });
  }

  // --- MediaSource: which one, and starting over (AppendQueue feeds it)

  /** (Re)attaches a new MediaSource to the video element. */
  _attach(mime) {
    const first = !this._mse;
    this._detach();
    if (!first) this.stats.resets++;
    this._resync = true;
    this._edgeEnd = this._edgeTime = 0;
    this._webm = null; // the hub sends an init before media
    this._mse = new AppendQueue(this._MS, this.video, mime, {
      appended: (op, end) => this._appended(op, end),
      dropped: (op) => {
        if (op.kind === "media") {
          // What waits behind it may continue a Cluster it began: drop it
          // too, and start again at the next keyframe.
          this._mse.dropMedia();
          if (this._webm) this._webm.reset();
          this._waitKey = true;
        }
        this.stats.droppedSegments++;
      },
      evicted: () => this.stats.quotaEvictions++,
      failed: (reason) => this._recover(reason),
      fatal: (error) => this._fail(error, true),
    });
    // play() comes once the first media is in, after the start position is chosen.
  }

  _detach() {
    if (!this._mse) return;
    this._selfPause = true;
    this._mse.close();
    this._mse = null;
  }

  /** After a media or SourceBuffer error: a fresh MediaSource and a fresh connection. */
  _recover(reason) {
    if (this._closed) return;
    const t = now();
    this._mediaErrors = this._mediaErrors.filter((x) => t - x < 30000);
    this._mediaErrors.push(t);
    this._fail(new Error("segrelay: " + reason + "; starting over"), false);
    const mime = this._mse ? this._mse.mime : "";
    this._detach();
    if (this._mediaErrors.length > 5) {
      this._fail(new Error("segrelay: the media keeps failing (" + reason + ")"), true);
      return;
    }
    if (mime && !this._unplayable) this._attach(mime);
    this._waitKey = true;
    this._reconnect(reason); // the hub sends start, init and the latest keyframe again
  }

  // --- playback control

  /** A media append is in: where the live edge is now, and how bursty arrivals are. */
  _appended(op, end) {
    if (end > this._edgeEnd + 1e-3 || !this._edgeTime) {
      // A burst that brings seconds more media than the time it took to
      // arrive (a legacy publisher's 5 s files) is followed by as long a
      // wait: aim that far behind, or play it in a blink and stall until
      // the next. (A steady stream brings media as fast as time passes.)
      if (op.burst === this._burst && op.burst !== this._joinBurst) {
        this._burstMedia += end - this._edgeEnd;
        const excess = this._burstMedia - (op.t - this._burstStart) / 1000;
        if (excess > 1) this._gaps.push([now(), excess]);
      }
      this._edgeEnd = end;
      this._edgeTime = op.t;
    }
    if (this._resync) this._scheduleResync();
  }

  /** Waits until the burst of media has been appended, then starts near the live edge. */
  _scheduleResync() {
    clearTimeout(this._settle);
    this._settle = setTimeout(() => {
      if (!this._resync || !this._mse || !this._mse.hasSourceBuffer()) return;
      if (this._mse.busy()) return this._scheduleResync();
      this._resync = false;
      const v = this.video;
      const b = v.buffered;
      if (b.length) {
        const end = b.end(b.length - 1);
        const target = this._target();
        const since = (now() - this._edgeTime) / 1000;
        const want = Math.max(b.start(b.length - 1), end - Math.max(0.05, target - since));
        if (want - v.currentTime > 0.15 || v.currentTime < b.start(b.length - 1)) this._seek(want, "start");
      }
      if (this.options.autoplay && !this._userPaused) this._play();
    }, 40);
  }

  /** The latency to aim for, in seconds (see PlayOptions.targetLatency). */
  _target() {
    const t = now();
    this._gaps = this._gaps.filter((g) => t - g[0] < 15000);
    let gap = this._gaps.length ? 0 : 0.3; // before any is measured: a usual timeslice
    for (const g of this._gaps) gap = Math.max(gap, g[1]);
    return Math.max(this.options.targetLatency || 0, gap + this.options.safetyMargin);
  }

  _seek(time, why) {
    const v = this.video;
    if (!isFinite(time) || Math.abs(v.currentTime - time) < 0.01) return;
    this._smooth = NaN; // the estimate starts over from the new position
    if (why === "jump") this.stats.jumps++;
    else if (why === "gap") this.stats.gapSkips++;
    else if (why === "nudge") this.stats.nudges++;
    this._seekStart = now();
    v.currentTime = time;
  }

  _play() {
    const v = this.video;
    if (!v.paused) return;
    this._selfPause = false;
    const p = v.play();
    if (p && p.catch) {
      p.catch((e) => {
        if (e && e.name === "NotAllowedError" && !v.muted) {
          v.muted = true; // autoplay with sound needs a user gesture; muted does not
          this._emit("muted", { reason: "the browser does not allow autoplay with sound" });
          v.play().catch(() => {});
        }
      });
    }
  }

  _videoEvent(e) {
    const v = this.video;
    switch (e.type) {
      case "pause":
        // A pause we did not cause (controls, script): respect it until play.
        if (!this._selfPause && !v.ended && v.readyState > 0) this._userPaused = true;
        break;
      case "play":
        this._userPaused = false;
        break;
      case "playing":
        if (this._live) this._setStatus("live");
        break;
      case "waiting":
        this._tick();
        break;
      case "error":
        if (this._mse && v.error) this._recover("media error " + v.error.code + (v.error.message ? ": " + v.error.message : ""));
        break;
      case "seeked":
        this._stuckSince = 0;
        if (this._seekStart) this._seekCost = (now() - this._seekStart) / 1000;
        this._seekStart = 0;
        break;
    }
  }

  _tick() {
    if (this._closed) return;
    const v = this.video;
    const t = now();
    if (this._ws && this._live && this._lastMsg && t - this._lastMsg > this.options.idleTimeout) {
      this._lastMsg = t;
      this._reconnect("no data for " + this.options.idleTimeout + " ms");
      return;
    }
    const held = this._webm ? this._webm.heldSince() : 0;
    if (held && t - held > 500) this._appendHeld(); // no next segment soon: append what waits
    if (!this._mse || !this._mse.open()) return;
    const b = v.buffered;
    if (!b.length || this._resync) {
      if (this._live && this.status !== "reconnecting" && this.status !== "error" && !b.length) this._setStatus("buffering");
      return;
    }
    const ct = v.currentTime;
    const end = b.end(b.length - 1);
    const since = this._edgeTime ? (t - this._edgeTime) / 1000 : 0;
    const lag = Math.max(0, end - ct);
    const latency = lag + since;
    const target = this._target();
    // What arrives is bursty (a blob's media rarely spans exactly the time
    // between blobs), so the instantaneous estimate wobbles by a tenth of a
    // second; steer by its average over about a second.
    this._smooth = isNaN(this._smooth) ? latency : this._smooth + 0.1 * (latency - this._smooth);
    const smooth = this._smooth;
    this.latency = smooth;

    // Is the playhead inside buffered media? If not (a gap after skipped
    // media, a start before the first range), go to the next range.
    let i = -1;
    for (let k = 0; k < b.length; k++) {
      if (ct >= b.start(k) - 0.01 && ct < b.end(k)) {
        i = k;
        break;
      }
    }
    const moving = ct !== this._lastCT;
    this._lastCT = ct;
    if (moving || v.paused) this._stuckSince = 0;
    else if (!this._stuckSince) this._stuckSince = t;
    const stuck = this._stuckSince ? t - this._stuckSince : 0;

    if (i < 0 || (i < b.length - 1 && b.end(i) - ct < 0.15 && stuck > 150)) {
      for (let k = 0; k < b.length; k++) {
        if (b.start(k) > ct) {
          this._seek(b.start(k) + 0.001, "gap");
          return;
        }
      }
    }

    if (!v.paused && !v.seeking) {
      if (smooth > target + Math.max(this.options.jumpThreshold, 2 * this._seekCost) && end - ct > 0.1) {
        // Far behind (a background tab, a long stall): jump.
        this._seek(Math.max(b.start(b.length - 1), end - Math.max(0.05, target - since)), "jump");
      } else if (stuck > 1000 && lag > 0.3 && v.readyState < 3) {
        // Data is there but playback does not move: nudge the decoder.
        this._seek(ct + 0.01, "nudge");
      }
      if (v.readyState >= 3) {
        const excess = smooth - target;
        const cur = v.playbackRate;
        let rate = 1;
        if (excess > 0.08 || (cur > 1 && excess > 0.02)) rate = 1 + Math.max(0.05, excess * 0.5);
        else if (excess < -0.1) rate = 0.9; // too close to the edge: slow down before it stalls
        rate = Math.min(this.options.maxPlaybackRate, Math.round(rate * 20) / 20);
        if (rate !== cur) v.playbackRate = rate;
      }
    } else if (v.paused && this.options.autoplay && !this._userPaused) {
      this._play();
    }

    if (this._live && this.status !== "reconnecting") {
      if (!v.paused && v.readyState < 3 && stuck > 1000) this._setStatus("stalled", "playback is not moving");
      else if (!v.paused && moving) this._setStatus("live");
    }

    if (t - this._lastLatencyEvent >= 1000) {
      this._lastLatencyEvent = t;
      this._emit("latency", { latency: smooth, target, lag, playbackRate: v.playbackRate });
    }

    // Keep backBuffer seconds of played media; drop the rest.
    if (t - this._lastTrim > 5000) {
      this._lastTrim = t;
      const keep = Math.max(1, this.options.backBuffer);
      const start = b.start(0);
      if (ct - start > keep + 5) {
        this._mse.removeFirst(0, ct - keep);
      }
    }
  }
}

/**
 * Plays a segrelay stream in a video element with Media Source Extensions:
 * starts near the live edge (also when joining late), stays there (playing
 * slightly faster when a little behind, jumping when far behind), survives
 * the publisher restarting, leaving and coming back, and reconnects with
 * backoff. The video element keeps one source for the player's life: no
 * black flash between segments.
 * @param {string|URL} url the subscribe route, e.g. "/live/room1/subscribe"
 * @param {HTMLVideoElement} video
 * @param {PlayOptions} [options]
 * @returns {Player}
 */
export function play(url, video, options) {
  return new Player(url, video, options);
}
