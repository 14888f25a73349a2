// relay-player.js: the player of segrelay's browser client: Player and
// play(), AppendQueue (the MediaSource and the queue that feeds its
// SourceBuffer), and which MediaSource this browser has. relay.js
// re-exports its public names; the Hub serves it beside relay.js
// ({mount}/relay-player.js); node runs its unit tests
// (relay-player_test.mjs). Not an API of its own: import relay.js.

"use strict";

import { Connection, asError, now } from "./relay-connection.js";
import { trackLayout } from "./relay-mime.js";
import { WebMAppender, webmVideoTrack } from "./relay-webm.js";

// ---------------------------------------------------------------------------
// Which MediaSource

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

// ---------------------------------------------------------------------------
// The MSE append queue

/**
 * AppendQueue owns one MediaSource attached to a video element and feeds its
 * one SourceBuffer, one operation at a time and in order: appends (init,
 * media), changeType and removals. A QuotaExceededError frees played media
 * and retries; any other error, and the MediaSource closing, go to the
 * player, which starts over with a new AppendQueue.
 */
export class AppendQueue {
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
// Playback control

/**
 * LatencyControl is the Player's playback control, which needs no
 * MediaSource: it measures the rhythm media arrives in (the largest gap
 * between arrivals, or the most media one burst of arrivals brought, over
 * the last 15 s), and from it the latency to aim for; and it steers the
 * video element to it: where to start, skipping a gap in what is buffered,
 * jumping when far behind, nudging a decoder that does not move, and the
 * playbackRate. The Player calls it with the time; it sets the video's
 * currentTime and playbackRate, and counts jumps, gapSkips and nudges in
 * stats.
 */
export class LatencyControl {
  /**
   * @param {HTMLVideoElement} video it reads buffered, currentTime, paused,
   *   seeking, readyState and playbackRate, and sets currentTime and playbackRate
   * @param {PlayOptions} options targetLatency, safetyMargin, jumpThreshold, maxPlaybackRate, backBuffer
   * @param {{jumps: number, gapSkips: number, nudges: number}} stats
   * @param {() => number} [clock] ms, performance.now by default
   */
  constructor(video, options, stats, clock = now) {
    this.video = video;
    this.options = options;
    this.stats = stats;
    this._now = clock;
    this._lastRecv = 0; // when media was last received
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
    this._lastTrim = 0;
  }

  /**
   * A session starts: its arrivals are measured afresh. joining: it replays
   * a live session to a new connection, whose first burst says nothing
   * about the stream's rhythm.
   */
  session(joining) {
    this._gaps = [];
    this._lastRecv = 0;
    this._joinBurst = joining ? this._burst + 1 : -1;
  }

  /** Media arrived at t (ms): a gap since the last arrival, or a new burst. */
  arrived(t) {
    if (this._lastRecv && t - this._lastRecv > 30) this._gaps.push([t, (t - this._lastRecv) / 1000]);
    // (A steady stream may run as one long burst: it brings media no faster
    // than time passes, so it adds nothing below.)
    if (!this._lastRecv || t - this._lastRecv > 500 || t - this._burstStart > 10000) {
      this._burst++;
      this._burstStart = t;
      this._burstMedia = 0;
    }
    this._lastRecv = t;
  }

  /** The number of the burst of arrivals, for the appends of what arrived last. */
  get burst() {
    return this._burst;
  }

  /** A new MediaSource: nothing is buffered, the live edge is unknown. */
  newMediaSource() {
    this._edgeEnd = this._edgeTime = 0;
  }

  /**
   * A media append is in (op: {t, burst}: when its media arrived, and in
   * which burst): where the live edge is now, and how bursty arrivals are.
   */
  appended(op, end) {
    if (end > this._edgeEnd + 1e-3 || !this._edgeTime) {
      // A burst that brings seconds more media than the time it took to
      // arrive (a legacy publisher's 5 s files) is followed by as long a
      // wait: aim that far behind, or play it in a blink and stall until
      // the next. (A steady stream brings media as fast as time passes.)
      if (op.burst === this._burst && op.burst !== this._joinBurst) {
        this._burstMedia += end - this._edgeEnd;
        const excess = this._burstMedia - (op.t - this._burstStart) / 1000;
        if (excess > 1) this._gaps.push([this._now(), excess]);
      }
      this._edgeEnd = end;
      this._edgeTime = op.t;
    }
  }

  /** Starts near the live edge: seeks there unless the playhead is close. */
  start() {
    const v = this.video;
    const b = v.buffered;
    if (b.length) {
      const end = b.end(b.length - 1);
      const target = this.target();
      const since = (this._now() - this._edgeTime) / 1000;
      const want = Math.max(b.start(b.length - 1), end - Math.max(0.05, target - since));
      if (want - v.currentTime > 0.15 || v.currentTime < b.start(b.length - 1)) this.seek(want, "start");
    }
  }

  /** The latency to aim for, in seconds (see PlayOptions.targetLatency). */
  target() {
    const t = this._now();
    this._gaps = this._gaps.filter((g) => t - g[0] < 15000);
    let gap = this._gaps.length ? 0 : 0.3; // before any is measured: a usual timeslice
    for (const g of this._gaps) gap = Math.max(gap, g[1]);
    return Math.max(this.options.targetLatency || 0, gap + this.options.safetyMargin);
  }

  seek(time, why) {
    const v = this.video;
    if (!isFinite(time) || Math.abs(v.currentTime - time) < 0.01) return;
    this._smooth = NaN; // the estimate starts over from the new position
    if (why === "jump") this.stats.jumps++;
    else if (why === "gap") this.stats.gapSkips++;
    else if (why === "nudge") this.stats.nudges++;
    this._seekStart = this._now();
    v.currentTime = time;
  }

  /** The video element seeked: what it cost. */
  seeked() {
    this._stuckSince = 0;
    if (this._seekStart) this._seekCost = (this._now() - this._seekStart) / 1000;
    this._seekStart = 0;
  }

  /**
   * Steers playback at t (ms), b being the video's buffered ranges (not
   * empty). Returns what it measured: ct, the smoothed latency, the target,
   * lag (media buffered ahead), stuck (ms the playhead has not moved while
   * playing), moving; gap: it seeked over a gap (nothing more this tick);
   * steered: the video was playing and not seeking, so it steered.
   */
  steer(t, b) {
    const v = this.video;
    const ct = v.currentTime;
    const end = b.end(b.length - 1);
    const since = this._edgeTime ? (t - this._edgeTime) / 1000 : 0;
    const lag = Math.max(0, end - ct);
    const latency = lag + since;
    const target = this.target();
    // What arrives is bursty (a blob's media rarely spans exactly the time
    // between blobs), so the instantaneous estimate wobbles by a tenth of a
    // second; steer by its average over about a second.
    this._smooth = isNaN(this._smooth) ? latency : this._smooth + 0.1 * (latency - this._smooth);
    const smooth = this._smooth;

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
          this.seek(b.start(k) + 0.001, "gap");
          return { ct, smooth, target, lag, stuck, moving, gap: true, steered: false };
        }
      }
    }

    const steered = !v.paused && !v.seeking;
    if (steered) {
      if (smooth > target + Math.max(this.options.jumpThreshold, 2 * this._seekCost) && end - ct > 0.1) {
        // Far behind (a background tab, a long stall): jump.
        this.seek(Math.max(b.start(b.length - 1), end - Math.max(0.05, target - since)), "jump");
      } else if (stuck > 1000 && lag > 0.3 && v.readyState < 3) {
        // Data is there but playback does not move: nudge the decoder.
        this.seek(ct + 0.01, "nudge");
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
    }
    return { ct, smooth, target, lag, stuck, moving, gap: false, steered };
  }

  /**
   * Where to trim played media at t, keeping backBuffer seconds behind ct:
   * remove [0, the returned time); 0: nothing to remove. At most every 5 s.
   */
  trimTo(t, b, ct) {
    if (t - this._lastTrim > 5000) {
      this._lastTrim = t;
      const keep = Math.max(1, this.options.backBuffer);
      const start = b.start(0);
      if (ct - start > keep + 5) {
        return ct - keep;
      }
    }
    return 0;
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
    this._ctl = new LatencyControl(video, this.options, this.stats);
    this._userPaused = false;
    this._selfPause = false;
    this._lastLatencyEvent = 0;

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
    // A start right after connecting replays a live session: its first burst
    // is the latest GOP, old media all at once, which says nothing about the
    // stream's rhythm. A start that comes later brings new media.
    this._ctl.session(now() - this._openedAt < 150);
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
    this._ctl.arrived(t);
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
    if (append.byteLength) this._mse.push({ kind: "media", data: append, bytes: append.byteLength, t, keyframe: !!hdr.keyframe, burst: this._ctl.burst });
  }

  /** Appends what the WebMAppender holds: the session ends, a new init or a gap comes, or nothing came for a while. */
  _appendHeld() {
    const held = this._webm && this._webm.flush();
    if (held && this._mse) this._mse.push({ kind: "media", data: held, bytes: held.byteLength, t: now(), keyframe: false, burst: this._ctl.burst });
  }

  // --- MediaSource: which one, and starting over (AppendQueue feeds it)

  /** (Re)attaches a new MediaSource to the video element. */
  _attach(mime) {
    const first = !this._mse;
    this._detach();
    if (!first) this.stats.resets++;
    this._resync = true;
    this._ctl.newMediaSource();
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

  /** A media append is in (see LatencyControl.appended). */
  _appended(op, end) {
    this._ctl.appended(op, end);
    if (this._resync) this._scheduleResync();
  }

  /** Waits until the burst of media has been appended, then starts near the live edge. */
  _scheduleResync() {
    clearTimeout(this._settle);
    this._settle = setTimeout(() => {
      if (!this._resync || !this._mse || !this._mse.hasSourceBuffer()) return;
      if (this._mse.busy()) return this._scheduleResync();
      this._resync = false;
      this._ctl.start();
      if (this.options.autoplay && !this._userPaused) this._play();
    }, 40);
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
        this._ctl.seeked();
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
    const held = this._webm ? this._webm.heldAt() : 0;
    if (held && t - held > 500) this._appendHeld(); // no segment for 500 ms: append what waits
    if (!this._mse || !this._mse.open()) return;
    const b = v.buffered;
    if (!b.length || this._resync) {
      if (this._live && this.status !== "reconnecting" && this.status !== "error" && !b.length) this._setStatus("buffering");
      return;
    }
    const c = this._ctl.steer(t, b);
    this.latency = c.smooth;
    if (c.gap) return; // it skipped to the next range
    if (!c.steered && v.paused && this.options.autoplay && !this._userPaused) this._play();

    if (this._live && this.status !== "reconnecting") {
      if (!v.paused && v.readyState < 3 && c.stuck > 1000) this._setStatus("stalled", "playback is not moving");
      else if (!v.paused && c.moving) this._setStatus("live");
    }

    if (t - this._lastLatencyEvent >= 1000) {
      this._lastLatencyEvent = t;
      this._emit("latency", { latency: c.smooth, target: c.target, lag: c.lag, playbackRate: v.playbackRate });
    }

    // Keep backBuffer seconds of played media; drop the rest.
    const trim = this._ctl.trimTo(t, b, c.ct);
    if (trim) this._mse.removeFirst(0, trim);
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
