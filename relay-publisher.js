// relay-publisher.js: the publisher of segrelay's browser client: Publisher
// and publish(), and WebCodecsRecorder, the WebM recorder on WebCodecs for
// browsers whose MediaRecorder cannot be asked for keyframes. relay.js
// re-exports its public names; the Hub serves it beside relay.js
// ({mount}/relay-publisher.js). Not an API of its own: import relay.js.

"use strict";

import { Connection, asError, now } from "./relay-connection.js";
import { PUBLISH_MIME_TYPES, codecsOf, pickMimeType } from "./relay-mime.js";
import { WebMFrames, WebMMuxer } from "./relay-webm.js";

// ---------------------------------------------------------------------------
// A WebM recorder on WebCodecs, for browsers whose MediaRecorder cannot make
// keyframes often

/** Whether this browser's MediaRecorder ignores keyFrameInterval: Firefox's reads only the type and bit rates, and makes a keyframe every 6-7 s (measured, Firefox 153). */
export function recorderIgnoresKeyFrames() {
  return typeof navigator !== "undefined" && /\bFirefox\/\d/.test(navigator.userAgent || "");
}

/** Whether WebCodecsRecorder can record stream as WebM of type mime. */
export function webCodecsCanRecord(stream, mime) {
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
export class WebCodecsRecorder extends EventTarget {
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
    this._mux = new WebMMuxer(); // its bytes, made since the last dataavailable
    this._t0 = 0; // µs (performance.now): time 0 of the recording
    this._lastKey = -Infinity;
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
    this._flusher = setInterval(() => this._deliver(), Math.max(10, timeslice || 100));
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
      this._mux.audio = true; // video waits for audio (WebMMuxer.frame)
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

  /** The WebM header, before what was recorded so far (see WebMMuxer.header). */
  _header(audio) {
    const [width, height] = this._size;
    this._mux.header(width, height, audio);
    this._headed = true;
  }

  /** Takes one frame (time: µs, performance.now) for the muxer (time: ms of the recording). */
  _block(track, time, key, data) {
    this._mux.frame(track, Math.max(0, Math.round((time - this._t0) / 1000)), key, data);
  }

  _deliver() {
    if (!this._mux.out.length || !this._headed) return; // the header waits for the audio track's parameters
    const blob = new Blob(this._mux.take(), { type: this.mimeType });
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
    this._mux.flush();
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
 * @property {number} [timeslice=100] ms of media per MediaRecorder blob: the
 *   recorder's contribution to latency (with a microphone, Chromium's blobs
 *   come every 120 ms at 100, every 240 ms at 200).
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
      timeslice: 100,
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
