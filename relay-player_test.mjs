// Unit tests of relay-player.js in node (node --test relay-player_test.mjs;
// the Go test TestRelayJSUnits runs them): AppendQueue on a fake
// MediaSource and SourceBuffer (node has no MSE), fed with a hub's capture
// of a publisher; and LatencyControl, the player's playback control, on a
// fake video element and a clock of the test's own: no real time passes.

import test, { mock } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";

const { AppendQueue, LatencyControl } = await import("./relay-player.js");
const { WebMAppender, webmVideoTrack } = await import("./relay-webm.js");

mock.method(URL, "createObjectURL", () => "blob:fake-media-source");
mock.method(URL, "revokeObjectURL", () => {});

/** TimeRanges of [[start, end], ...]; like the real one, it throws out of range. */
class Ranges {
  constructor(r) {
    this.r = r;
  }
  get length() {
    return this.r.length;
  }
  start(i) {
    if (!(i >= 0 && i < this.r.length)) throw new RangeError("IndexSizeError");
    return this.r[i][0];
  }
  end(i) {
    if (!(i >= 0 && i < this.r.length)) throw new RangeError("IndexSizeError");
    return this.r[i][1];
  }
}

// --- AppendQueue

/** A SourceBuffer that does one operation at a time, finished by the test (done) or at once (auto). */
class FakeSourceBuffer extends EventTarget {
  constructor(mime) {
    super();
    this.mime = mime;
    this.mode = "segments";
    this.updating = false;
    this.timestampOffset = 0;
    this.ranges = [];
    this.log = []; // what it was asked, in order
    this.auto = false; // finish each operation at once (in a microtask)
    this.throwOnAppend = null; // an error the next appendBuffer throws
  }
  get buffered() {
    return new Ranges(this.ranges);
  }
  _busy(entry) {
    if (this.updating) throw new DOMException("busy", "InvalidStateError");
    this.log.push(entry);
    this.updating = true;
    if (this.auto) queueMicrotask(() => this.done());
  }
  appendBuffer(data) {
    if (this.throwOnAppend) {
      const e = this.throwOnAppend;
      this.throwOnAppend = null;
      throw e;
    }
    this._busy(["append", data]);
  }
  remove(start, end) {
    this._busy(["remove", start, end]);
  }
  abort() {
    this.log.push(["abort", this.timestampOffset]);
  }
  changeType(mime) {
    if (this.updating) throw new DOMException("busy", "InvalidStateError");
    this.log.push(["changeType", mime]);
  }
  /** Finishes the running operation; ranges: what is buffered after it. */
  done(ranges) {
    assert.ok(this.updating, "done() with nothing running");
    if (ranges) this.ranges = ranges;
    this.updating = false;
    this.dispatchEvent(new Event("updateend"));
  }
}

class FakeMediaSource extends EventTarget {
  static made = [];
  constructor() {
    super();
    this.readyState = "closed";
    this.duration = NaN;
    this.sourceBuffers = [];
    this.addThrows = null;
    FakeMediaSource.made.push(this);
  }
  addSourceBuffer(mime) {
    if (this.addThrows) throw this.addThrows;
    const sb = new FakeSourceBuffer(mime);
    this.sourceBuffers.push(sb);
    return sb;
  }
  open() {
    this.readyState = "open";
    this.dispatchEvent(new Event("sourceopen"));
  }
}

function fakeVideo() {
  return {
    src: "", currentTime: 0, loads: 0, removed: [],
    removeAttribute(name) { this.removed.push(name); if (name === "src") this.src = ""; },
    load() { this.loads++; },
  };
}

/** An AppendQueue on fakes, its SourceBuffer open; calls: what it told the player. */
function openQueue(mime = "video/webm;codecs=vp9,opus") {
  const video = fakeVideo();
  const calls = [];
  const on = {
    appended: (op, end) => calls.push(["appended", op, end]),
    dropped: (op) => calls.push(["dropped", op]),
    evicted: () => calls.push(["evicted"]),
    failed: (reason) => calls.push(["failed", reason]),
    fatal: (error) => calls.push(["fatal", error]),
  };
  const q = new AppendQueue(FakeMediaSource, video, mime, on);
  const ms = FakeMediaSource.made.at(-1);
  return { q, ms, video, calls, open: () => (ms.open(), ms.sourceBuffers[0]) };
}

const bytes = (n, fill = 0) => new Uint8Array(n).fill(fill);
const media = (n, extra = {}) => ({ kind: "media", data: bytes(n), bytes: n, t: 0, keyframe: false, burst: 0, ...extra });
const init = (n = 10) => ({ kind: "init", data: bytes(n, 1), bytes: n });

test("AppendQueue waits for sourceopen, then appends one operation at a time, in order", () => {
  const { q, ms, video, calls, open } = openQueue();
  assert.equal(video.src, "blob:fake-media-source");
  q.push(init());
  q.push(media(100));
  q.push(media(50));
  assert.equal(q.queuedBytes(), 160);
  assert.equal(q.hasSourceBuffer(), false);
  assert.equal(q.open(), false);
  const sb = open();
  assert.equal(ms.duration, Infinity, "live");
  assert.equal(sb.mime, "video/webm;codecs=vp9,opus");
  assert.equal(sb.mode, "sequence");
  assert.ok(q.open() && q.busy());
  assert.deepEqual(sb.log.map((x) => [x[0], x[1].length]), [["append", 10]]);
  assert.equal(q.queuedBytes(), 150);
  sb.done([[0, 0]]);
  assert.deepEqual(calls, [], "an init is not reported");
  assert.equal(sb.log.length, 2);
  sb.done([[0, 1.5]]);
  assert.deepEqual(calls.map((c) => [c[0], c[1].bytes, c[2]]), [["appended", 100, 1.5]], "a media append is, with the buffered end");
  assert.equal(q.bufferedEnd(), 1.5);
  sb.done([[0, 2]]);
  assert.equal(calls.length, 2);
  assert.equal(q.busy(), false);
  assert.equal(q.queuedBytes(), 0);
});

test("AppendQueue waits while the SourceBuffer is busy", () => {
  const { q, calls, open } = openQueue();
  const sb = open();
  sb.updating = true; // busy with what the queue did not start
  q.push(media(10));
  assert.deepEqual(sb.log, []);
  assert.deepEqual(calls, [], "no InvalidStateError");
  sb.updating = false;
  q.removeFirst(0, 1); // the next pump
  assert.deepEqual(sb.log, [["remove", 0, 1]]);
});

test("AppendQueue puts what follows a new init after what it has", () => {
  const { q, open } = openQueue();
  const sb = open();
  q.push(init());
  assert.deepEqual(sb.log.map((x) => x[0]), ["append"], "the first init: no abort");
  sb.done([]);
  sb.timestampOffset = 7;
  q.push(init()); // a new init, nothing buffered yet: abort, timestampOffset stays
  assert.equal(sb.timestampOffset, 7);
  sb.done([]);
  q.push(media(5));
  sb.done([[0, 4.25]]);
  q.push(init());
  assert.deepEqual(sb.log.map((x) => x[0]), ["append", "abort", "append", "append", "abort", "append"]);
  assert.deepEqual(sb.log[1], ["abort", 7]);
  assert.equal(sb.timestampOffset, 4.25, "the new media follows on");
});

test("AppendQueue changes type in place only within a track layout", () => {
  const { q, open } = openQueue("video/webm;codecs=vp9,opus");
  assert.equal(q.changeType("video/webm;codecs=vp8,opus"), false, "no SourceBuffer yet");
  const sb = open();
  q.push(init());
  assert.equal(q.changeType("video/webm;codecs=vp8"), false, "other tracks");
  assert.equal(q.mime, "video/webm;codecs=vp9,opus");
  assert.equal(q.changeType("video/webm;codecs=vp8,opus"), true);
  assert.equal(q.mime, "video/webm;codecs=vp8,opus");
  q.push(init());
  assert.deepEqual(sb.log.map((x) => x[0]), ["append"], "changeType waits behind the running append");
  sb.done([]);
  assert.deepEqual(sb.log.map((x) => x[0]), ["append", "changeType", "abort", "append"]);
  assert.deepEqual(sb.log[1], ["changeType", "video/webm;codecs=vp8,opus"]);
  sb.changeType = undefined; // a browser without SourceBuffer.changeType
  assert.equal(q.changeType("video/webm;codecs=vp9,opus"), false);
});

test("AppendQueue removes first, skips empty removals, and drops waiting media on demand", () => {
  const { q, open } = openQueue();
  const sb = open();
  q.push(init());
  q.push(media(10));
  q.push({ kind: "changeType", mime: "video/webm;codecs=vp8,opus" });
  q.push(media(20));
  q.removeFirst(3, 3); // empty: skipped
  q.removeFirst(0, 2);
  sb.done([[0, 0]]);
  assert.deepEqual(sb.log.at(-1), ["remove", 0, 2], "the removal before the waiting media");
  q.dropMedia();
  assert.equal(q.queuedBytes(), 0);
  sb.done([]);
  assert.deepEqual(sb.log.map((x) => x[0]), ["append", "remove", "changeType"], "media dropped, changeType kept");
  assert.equal(q.busy(), false);
});

test("AppendQueue frees played media on QuotaExceededError and retries", () => {
  const { q, video, calls, open } = openQueue();
  const sb = open();
  sb.ranges = [[0, 30]];
  video.currentTime = 20;
  sb.throwOnAppend = new DOMException("full", "QuotaExceededError");
  const op = media(100);
  q.push(op);
  assert.deepEqual(sb.log, [["remove", 0, 19]], "up to a second before the playhead");
  assert.deepEqual(calls.map((c) => c[0]), ["evicted"]);
  sb.done([[19, 30]]);
  assert.deepEqual(sb.log.at(-1), ["append", op.data], "the append is retried after the removal");
  sb.done([[19, 31]]);
  assert.deepEqual(calls.map((c) => c[0]), ["evicted", "appended"]);
});

test("AppendQueue drops an append that still does not fit, and goes on", () => {
  const { q, video, calls, open } = openQueue();
  const sb = open();
  sb.ranges = [[0, 30]];
  video.currentTime = 20;
  const big = media(100), next = media(7);
  sb.throwOnAppend = new DOMException("full", "QuotaExceededError");
  q.push(big);
  q.push(next);
  assert.deepEqual(sb.log.at(-1), ["remove", 0, 19]);
  sb.throwOnAppend = new DOMException("full", "QuotaExceededError"); // again, once evicted: dropped
  sb.done([[5, 30]]); // (there would be more to free: an append is evicted for once only)
  assert.deepEqual(calls.map((c) => c[0]), ["evicted", "dropped"]);
  assert.equal(calls[1][1], big);
  assert.deepEqual(sb.log.at(-1), ["append", next.data], "the next one goes in");
  assert.equal(q.queuedBytes(), 0);

  // Nothing played to free (the playhead within a second of the start): dropped at once.
  const o = openQueue();
  const sb2 = o.open();
  sb2.ranges = [[10, 30]];
  o.video.currentTime = 10.5;
  sb2.throwOnAppend = new DOMException("full", "QuotaExceededError");
  o.q.push(media(3));
  assert.deepEqual(o.calls.map((c) => c[0]), ["dropped"]);
  assert.deepEqual(sb2.log, []);
});

test("AppendQueue hands other errors, a SourceBuffer error and the MediaSource closing to the player", () => {
  const { q, ms, calls, open } = openQueue();
  const sb = open();
  sb.throwOnAppend = new DOMException("the parser failed", "InvalidStateError");
  const op = media(10);
  q.push(op);
  assert.deepEqual(calls, [["failed", "the parser failed"]]);
  assert.deepEqual(sb.log, []);
  assert.equal(q.busy(), true, "the append stays first in the queue (the player starts over with a new AppendQueue)");
  assert.equal(q.queuedBytes(), 10);
  sb.dispatchEvent(new Event("error"));
  ms.dispatchEvent(new Event("sourceclose"));
  assert.deepEqual(calls.slice(1), [["failed", "the SourceBuffer could not take a segment"], ["failed", "the MediaSource closed"]]);

  const f = openQueue();
  f.ms.addThrows = new DOMException("unsupported", "NotSupportedError");
  f.open();
  assert.equal(f.calls[0][0], "fatal");
  assert.equal(f.calls[0][1].name, "NotSupportedError");
  assert.equal(f.q.hasSourceBuffer(), false);
});

test("AppendQueue.close detaches the video element and ignores what its MediaSource does after", () => {
  const { q, ms, video, calls, open } = openQueue();
  const sb = open();
  q.push(media(10));
  q.close();
  assert.deepEqual(video.removed, ["src"]);
  assert.equal(video.loads, 1);
  assert.equal(URL.revokeObjectURL.mock.calls.at(-1).arguments[0], "blob:fake-media-source");
  assert.equal(q.open(), false);
  sb.done([[0, 1]]);
  sb.dispatchEvent(new Event("error"));
  ms.dispatchEvent(new Event("sourceclose"));
  assert.deepEqual(calls, [], "nothing reported after close");
});

test("AppendQueue: a hub capture through the WebMAppender goes in whole, in order", async () => {
  const dir = "e2e/testdata/segments/chromium_clock_vp9-opus";
  const initBytes = new Uint8Array(readFileSync(join(dir, "init.webm")));
  const segs = readdirSync(dir).filter((n) => /^s\d{3}\.webm$/.test(n)).sort().map((n) => new Uint8Array(readFileSync(join(dir, n))));
  const { q, calls, open } = openQueue();
  const sb = open();
  sb.auto = true;
  let end = 0;
  const grow = sb.done.bind(sb);
  sb.done = () => grow([[0, (end += 0.1)]]); // every append adds 100 ms
  const appender = new WebMAppender(webmVideoTrack(initBytes));
  const ab = (u8) => u8.buffer.slice(u8.byteOffset, u8.byteOffset + u8.byteLength);
  q.push({ kind: "init", data: ab(initBytes), bytes: initBytes.length });
  const want = [initBytes];
  for (const s of segs) {
    const out = appender.take(ab(s));
    if (out.byteLength) q.push(media(0, { data: out, bytes: out.byteLength })), want.push(out);
  }
  const last = appender.flush();
  if (last) q.push(media(0, { data: last, bytes: last.byteLength })), want.push(last);
  for (let i = 0; i < 1000 && q.busy(); i++) await Promise.resolve();
  assert.equal(q.busy(), false);
  const got = sb.log.map((x) => x[1]);
  assert.equal(got.length, want.length);
  for (const [i, w] of want.entries()) assert.deepEqual(new Uint8Array(got[i]), new Uint8Array(w), `append ${i}`);
  assert.equal(calls.filter((c) => c[0] === "appended").length, want.length - 1, "each media append reported");
  assert.ok(calls.every((c) => c[0] === "appended"));
});

// --- LatencyControl

/** a is b, give or take rounding. */
const near = (a, b, msg) => assert.ok(Math.abs(a - b) < 1e-9, `${msg ? msg + ": " : ""}${a} is not ${b}`);

const OPTIONS = { targetLatency: 0, safetyMargin: 0.15, jumpThreshold: 1.0, maxPlaybackRate: 1.25, backBuffer: 10 };

/** A LatencyControl on a playing fake video with buffered ranges, at clock.t. */
function control(ranges = [[0, 10]], options = {}) {
  const clock = { t: 100000 };
  const video = { currentTime: 0, playbackRate: 1, paused: false, seeking: false, readyState: 4, ranges, seeks: [] };
  Object.defineProperty(video, "buffered", { get: () => new Ranges(video.ranges) });
  const stats = { jumps: 0, gapSkips: 0, nudges: 0 };
  const ctl = new LatencyControl(video, { ...OPTIONS, ...options }, stats, () => clock.t);
  // Seeks show in seeks (currentTime is set as a browser does).
  let ct = 0;
  Object.defineProperty(video, "currentTime", { get: () => ct, set: (v) => (video.seeks.push(v), (ct = v)) });
  const play = (to) => (ct = to); // playback moves the playhead (not a seek)
  /** One tick, ms after the last. */
  const tick = (ms = 100) => ((clock.t += ms), ctl.steer(clock.t, video.buffered));
  return { ctl, clock, video, stats, play, tick };
}

/** The control's edge: media up to end was appended, received at t. */
function edge(c, end, t = c.clock.t) {
  c.ctl.appended({ t, burst: -5 }, end);
}

test("LatencyControl's target: a usual timeslice before any gap is measured, then the largest gap of 15 s", () => {
  const c = control();
  near(c.ctl.target(), 0.3 + 0.15);
  const at = (ms) => c.ctl.arrived((c.clock.t = ms));
  c.ctl.session(false);
  at(0);
  at(20); // 20 ms: no gap
  near(c.ctl.target(), 0.45);
  at(270); // 250 ms
  near(c.ctl.target(), 0.25 + 0.15);
  at(2270); // 2 s
  near(c.ctl.target(), 2 + 0.15);
  c.clock.t = 2270 + 14999;
  near(c.ctl.target(), 2.15);
  c.clock.t = 2270 + 15000;
  near(c.ctl.target(), 0.45, "gaps older than 15 s are forgotten");
  near(control([[0, 1]], { targetLatency: 3 }).ctl.target(), 3, "targetLatency, if larger");
});

test("LatencyControl: bursts of arrivals, and a burst bringing seconds more media than time", () => {
  const c = control();
  const at = (ms) => (c.ctl.arrived((c.clock.t = ms)), c.ctl.burst);
  c.ctl.session(false);
  assert.deepEqual([at(1000), at(1400), at(1900), at(2401)], [1, 1, 1, 2], "a new burst after 500 ms without arrivals");
  for (let t = 2500; t <= 12400; t += 100) at(t);
  assert.equal(at(12500), 3, "a burst lasts 10 s at most");
  // A legacy publisher's file: 5 s of media in 200 ms.
  const burst = at(20000);
  edge(c, 0, 20000);
  c.ctl.appended({ t: 20000, burst }, 2.5);
  c.ctl.appended({ t: 20200, burst }, 5);
  near(c.ctl.target(), Math.max(7.5, 5 - 0.2) + 0.15, "aims as far behind as the burst brought more");
  assert.ok(Math.abs(c.ctl._gaps.at(-1)[1] - 4.8) < 1e-9, "excess: 5 s of media minus 0.2 s of arrival");

  // The burst that replays a live session to a new connection does not count.
  const j = control();
  j.ctl.session(true);
  j.ctl.arrived(j.clock.t);
  j.ctl.appended({ t: j.clock.t, burst: j.ctl.burst }, 0.001);
  j.ctl.appended({ t: j.clock.t, burst: j.ctl.burst }, 6);
  near(j.ctl.target(), 0.45);
});

test("LatencyControl starts near the live edge", () => {
  const c = control([[2, 10]]);
  edge(c, 10);
  c.ctl.start();
  near(c.video.seeks[0], 10 - (0.3 + 0.15), "the target behind the edge");
  const late = control([[2, 10]]);
  edge(late, 10, late.clock.t - 300); // received 300 ms ago: that much latency already
  late.ctl.start();
  assert.ok(Math.abs(late.video.seeks[0] - (10 - 0.15)) < 1e-9);
  const old = control([[9.97, 10]]);
  edge(old, 10, old.clock.t - 5000); // 5 s ago: as close to the edge as it goes, 0.05 s
  old.ctl.start();
  assert.deepEqual(old.video.seeks, [9.97], "never before the range");
  const far = control([[2, 10]]);
  edge(far, 10, far.clock.t - 5000);
  far.ctl.start();
  near(far.video.seeks[0], 9.95);
  const close = control([[0, 10]]);
  edge(close, 10);
  close.play(9.5);
  close.ctl.start();
  assert.deepEqual(close.video.seeks, [], "within 0.15 s of it: no seek");
  assert.equal(close.stats.jumps, 0);
  const before = control([[5, 5.1]]);
  edge(before, 5.1);
  before.play(4.95); // within 0.15 s of where it would go, but before the range
  before.ctl.start();
  assert.deepEqual(before.video.seeks, [5]);
  const empty = control([]);
  empty.ctl.start();
  assert.deepEqual(empty.video.seeks, []);
});

test("LatencyControl steers the playback rate toward the target, and smooths its input", () => {
  const c = control([[0, 100]]);
  let end = 50;
  const at = (latency) => {
    // 100 ms later, 100 ms more media, received now; the playhead latency seconds behind it.
    c.clock.t += 100;
    end += 0.1;
    c.video.ranges = [[0, end]];
    edge(c, end);
    c.play(end - latency);
    return c.tick(0);
  };
  let r = at(0.45);
  near(r.smooth, 0.45);
  near(r.target, 0.45);
  assert.equal(c.video.playbackRate, 1, "on target: 1x");
  r = at(1.45); // 1 s behind; smoothed: 10% of the way
  near(r.smooth, 0.55);
  assert.equal(c.video.playbackRate, 1.05);
  for (let i = 0; i < 40; i++) r = at(1.2);
  assert.ok(r.smooth > 1.1 && r.smooth < 1.2);
  assert.equal(c.video.playbackRate, 1.25, "capped at maxPlaybackRate");
  assert.equal(c.stats.jumps, 0, "within jumpThreshold: no jump");
  for (let i = 0; i < 80; i++) r = at(0.3);
  assert.equal(c.video.playbackRate, 0.9, "too close to the edge: slower");
  for (let i = 0; i < 80; i++) r = at(0.46);
  assert.equal(c.video.playbackRate, 1);
  c.video.readyState = 2;
  at(1.45);
  for (let i = 0; i < 30; i++) at(1.3);
  assert.equal(c.video.playbackRate, 1, "no rate change without enough data");
  assert.deepEqual(c.video.seeks, [], "no seek");
});

test("LatencyControl jumps when far behind, unless seeking costs more than it saves", () => {
  const c = control([[0, 20]]);
  edge(c, 20);
  c.play(18.5); // 1.5 s behind, target 0.45: 1.05 over the threshold
  let r = c.tick(0);
  assert.equal(r.steered, true);
  assert.equal(c.stats.jumps, 1);
  assert.deepEqual(c.video.seeks, [20 - 0.45]);
  assert.ok(isNaN(c.ctl._smooth), "the estimate starts over");
  c.clock.t += 800;
  c.ctl.seeked(); // that seek took 0.8 s: a jump must now save more than 1.6 s
  c.video.ranges = [[0, 21]];
  edge(c, 21);
  c.play(21 - 1.9); // 1.9 s behind: 1.45 over
  c.tick(0);
  assert.equal(c.stats.jumps, 1, "not worth it");
  c.ctl._smooth = NaN;
  c.play(21 - 2.2); // 2.2 s behind: 1.75 over
  c.tick(0);
  assert.equal(c.stats.jumps, 2);
  near(c.video.seeks[1], 21 - 0.45);
  const just = control([[0, 20]], { targetLatency: 0.5 });
  edge(just, 20);
  just.play(18.5); // 1.5 s behind: exactly jumpThreshold over the target
  just.tick(0);
  assert.equal(just.stats.jumps, 0, "at the threshold: no jump");
  // The time since the newest media arrived counts: nothing came for 2 s.
  const quiet = control([[0, 20]]);
  edge(quiet, 20);
  quiet.play(19.55); // on target behind the edge...
  quiet.tick(2000); // ...2 s ago
  assert.equal(quiet.stats.jumps, 1);
  near(quiet.video.seeks[0], 19.95, "as near the edge as it goes");
});

test("LatencyControl skips gaps in what is buffered", () => {
  const c = control([[0, 5], [5.5, 10]]);
  edge(c, 10);
  c.play(5.2); // in the hole
  let r = c.tick();
  assert.equal(r.gap, true);
  assert.deepEqual(c.video.seeks, [5.501]);
  assert.equal(c.stats.gapSkips, 1);
  // At the end of a range with another after it: only once stuck there 150 ms.
  const s = control([[0, 5], [5.5, 10]], { jumpThreshold: 100 });
  edge(s, 10);
  s.play(4.9);
  assert.equal(s.tick().gap, false, "moving");
  assert.equal(s.tick(100).stuck, 0, "not moved since the last tick: stuck from now");
  assert.equal(s.tick(100).gap, false, "stuck 100 ms");
  assert.equal(s.tick(50).gap, false, "stuck 150 ms");
  r = s.tick(1);
  assert.equal(r.gap, true, "stuck 151 ms");
  assert.deepEqual(s.video.seeks, [5.501]);
  // Before the first range.
  const b = control([[3, 10]]);
  edge(b, 10);
  b.play(0);
  assert.equal(b.tick().gap, true);
  assert.deepEqual(b.video.seeks, [3.001]);
  // Past the last: nowhere to go.
  const p = control([[0, 5]]);
  edge(p, 5);
  p.play(6);
  assert.equal(p.tick().gap, false);
  assert.equal(p.stats.gapSkips, 0);
});

test("LatencyControl nudges a decoder that does not move", () => {
  // (At 100 s, ct + 0.01 is 0.01 or more from ct in doubles. At 9 s it is
  // 0.00999..., which seek() takes for no move (under 0.01): there the
  // nudge does nothing, at about 6 playhead positions in 10. Left as it is.)
  const c = control([[0, 101]], { jumpThreshold: 100 });
  edge(c, 101);
  c.play(100);
  c.video.readyState = 2;
  c.tick();
  c.tick(1);
  let r = c.tick(1000);
  assert.equal(r.stuck, 1000);
  assert.equal(c.stats.nudges, 0, "stuck 1 s: not yet");
  r = c.tick(1);
  assert.equal(c.stats.nudges, 1);
  assert.deepEqual(c.video.seeks, [100.01]);
  c.ctl.seeked();
  const s = control([[0, 100.2]], { jumpThreshold: 100 });
  edge(s, 100.2);
  s.play(100); // less than 0.3 s buffered ahead: waiting for data, not stuck
  s.video.readyState = 2;
  s.tick();
  s.tick(1);
  assert.equal(s.tick(5000).stuck, 5000);
  assert.equal(s.stats.nudges, 0);
});

test("LatencyControl leaves a paused or seeking video alone", () => {
  for (const state of [{ paused: true }, { seeking: true }]) {
    const c = control([[0, 20]]);
    Object.assign(c.video, state);
    edge(c, 20);
    c.play(15); // 5 s behind
    const r = c.tick();
    assert.equal(r.steered, false);
    assert.deepEqual(c.video.seeks, []);
    assert.equal(c.video.playbackRate, 1);
    c.tick(5000);
    assert.equal(c.tick(5000).stuck, state.paused ? 0 : 5000, "paused is not stuck");
  }
});

test("LatencyControl trims played media every 5 s, keeping backBuffer", () => {
  const c = control([[0, 40]], { backBuffer: 10 });
  const b = c.video.buffered;
  assert.equal(c.ctl.trimTo(100000, b, 30), 20, "[0, ct - backBuffer)");
  assert.equal(c.ctl.trimTo(105000, b, 35), 0, "5 s later: not yet");
  assert.equal(c.ctl.trimTo(105001, b, 35), 25);
  assert.equal(c.ctl.trimTo(200000, new Ranges([[20, 40]]), 35), 0, "15 s played: within backBuffer + 5");
  assert.equal(c.ctl.trimTo(300000, new Ranges([[20, 40]]), 35.5), 25.5);
  const tiny = control([[0, 40]], { backBuffer: 0 });
  assert.equal(tiny.ctl.trimTo(100000, tiny.video.buffered, 7), 6, "keeps a second at least");
});
