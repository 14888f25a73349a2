// Unit tests of relay-webm.js in node (node --test relay-webm_test.mjs; the
// Go test TestRelayJSUnits runs them): real recordings through the
// WebMAppender, checked by a WebM reader of the test's own and by what
// mkvinfo counted (testdata/recordings/*/expected.json).

import test from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync, existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

// SEGRELAY_RELAYWEBM: another module with these exports (an earlier
// relay.js with an export line added, say), to check these tests fail with it.
const { WebMAppender, webmVideoTrack, ebml, ebmlUint } = await import(process.env.SEGRELAY_RELAYWEBM ? pathToFileURL(process.env.SEGRELAY_RELAYWEBM).href : "./relay-webm.js");

const ID_CLUSTER = 0x1f43b675, ID_TIMESTAMP = 0xe7, ID_SIMPLEBLOCK = 0xa3, ID_BLOCKGROUP = 0xa0, ID_BLOCK = 0xa1, ID_BLOCKDURATION = 0x9b;

function vint(b, i, keepMarker) {
  if (i >= b.length) return null;
  let len = 1;
  while (len <= 8 && !(b[i] & (0x80 >> (len - 1)))) len++;
  if (len > 8 || i + len > b.length) return null;
  let v = keepMarker ? b[i] : b[i] & (0xff >> len);
  let ones = (b[i] & (0xff >> len)) === 0xff >> len;
  for (let k = 1; k < len; k++) {
    v = v * 256 + b[i + k];
    if (b[i + k] !== 0xff) ones = false;
  }
  return { len, value: !keepMarker && ones ? -1 : v };
}

// The blocks of media bytes that must be whole elements (a Cluster's header
// counts as one): [{track, time (ms), key, duration}], and an error if an
// element is cut.
function blocks(b, state = { cluster: 0 }) {
  const out = [];
  for (let i = 0; i < b.length; ) {
    const id = vint(b, i, true);
    const size = id && vint(b, i + id.len, false);
    assert.ok(size, `an element header cut at ${i} of ${b.length}`);
    const body = i + id.len + size.len;
    if (id.value === ID_CLUSTER) {
      i = size.value < 0 ? body : body; // descend: its children follow
      continue;
    }
    assert.ok(size.value >= 0 && body + size.value <= b.length, `element 0x${id.value.toString(16)} at ${i} cut at ${b.length}`);
    const end = body + size.value;
    if (id.value === ID_TIMESTAMP) {
      state.cluster = 0;
      for (let k = body; k < end; k++) state.cluster = state.cluster * 256 + b[k];
    } else if (id.value === ID_SIMPLEBLOCK) {
      out.push(block(b, body, state.cluster, (b[body + vint(b, body, false).len + 2] & 0x80) !== 0, null));
    } else if (id.value === ID_BLOCKGROUP) {
      let blk = -1, dur = null;
      for (let j = body; j < end; ) {
        const cid = vint(b, j, true), cs = vint(b, j + cid.len, false);
        const cb = j + cid.len + cs.len;
        if (cid.value === ID_BLOCK) blk = cb;
        if (cid.value === ID_BLOCKDURATION) {
          dur = 0;
          for (let k = cb; k < cb + cs.value; k++) dur = dur * 256 + b[k];
        }
        j = cb + cs.value;
      }
      assert.ok(blk >= 0, "a BlockGroup without a Block");
      out.push(block(b, blk, state.cluster, null, dur));
    }
    i = end;
  }
  return out;
}

function block(b, at, cluster, key, duration) {
  const t = vint(b, at, false);
  const rel = ((b[at + t.len] << 24) >> 16) | b[at + t.len + 1];
  return { track: t.value, time: cluster + rel, key, duration };
}

// A recording's init and media cut where each blob ends, as a hub sends it.
function fromBlobs(dir) {
  const names = readdirSync(dir).filter((n) => /^\d{5}\.webm$/.test(n)).sort();
  const parts = names.map((n) => new Uint8Array(readFileSync(join(dir, n))));
  const all = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  const ends = [];
  let o = 0;
  for (const p of parts) all.set(p, o), (o += p.length), ends.push(o);
  let first = -1;
  for (let i = 0; i + 4 <= all.length && first < 0; i++) {
    if (all[i] === 0x1f && all[i + 1] === 0x43 && all[i + 2] === 0xb6 && all[i + 3] === 0x75) first = i;
  }
  const segs = [];
  let pos = first;
  for (const end of ends) {
    let p = pos;
    while (p < end) {
      const id = vint(all, p, true);
      const size = id && vint(all, p + id.len, false);
      if (!size) break;
      const body = p + id.len + size.len;
      if (id.value === ID_CLUSTER && body <= end) {
        p = body;
        continue;
      }
      if (size.value < 0 || body + size.value > end) break;
      p = body + size.value;
    }
    if (p > pos) segs.push(all.slice(pos, p)), (pos = p);
  }
  if (pos < all.length) segs.push(all.slice(pos));
  return { init: all.slice(0, first), segs };
}

function fromSegments(dir) {
  const names = readdirSync(dir).filter((n) => /^s\d{3}\.webm$/.test(n)).sort();
  return { init: new Uint8Array(readFileSync(join(dir, "init.webm"))), segs: names.map((n) => new Uint8Array(readFileSync(join(dir, n)))) };
}

const ab = (u8) => u8.buffer.slice(u8.byteOffset, u8.byteOffset + u8.byteLength);

// Runs segs through a WebMAppender: every append, and after each take the
// frames it holds per track.
function appendAll(init, segs) {
  const appender = new WebMAppender(webmVideoTrack(init));
  const appends = [];
  const held = [];
  let inCount = new Map(), outCount = new Map();
  const state = { cluster: 0 }, outState = { cluster: 0 };
  for (const s of segs) {
    for (const bl of blocks(s, state)) inCount.set(bl.track, (inCount.get(bl.track) || 0) + 1);
    const out = appender.take(ab(s));
    if (out && out.length) {
      appends.push(out);
      for (const bl of blocks(out, outState)) outCount.set(bl.track, (outCount.get(bl.track) || 0) + 1);
    }
    const h = new Map();
    for (const [track, n] of inCount) h.set(track, n - (outCount.get(track) || 0));
    held.push(h);
  }
  const last = appender.flush();
  if (last && last.length) appends.push(last);
  return { appends, held };
}

const recordings = "testdata/recordings";
const cases = readdirSync(recordings)
  .filter((n) => existsSync(join(recordings, n, "expected.json")))
  .map((n) => ({ name: n, expected: JSON.parse(readFileSync(join(recordings, n, "expected.json"), "utf8")), ...fromBlobs(join(recordings, n)) }));
cases.push({ name: "hub capture: Chromium clock + microphone", expected: null, ...fromSegments("e2e/testdata/segments/chromium_clock_vp9-opus") });

for (const c of cases) {
  test(`WebMAppender: ${c.name}`, async (t) => {
    const { appends, held } = appendAll(c.init, c.segs);
    const video = webmVideoTrack(c.init);
    const state = { cluster: 0 };
    const perAppend = appends.map((a) => blocks(a, state)); // every append is whole elements

    await t.test("every frame comes out once, in order per track", () => {
      const all = perAppend.flat();
      const st = { cluster: 0 };
      const input = c.segs.flatMap((s) => blocks(s, st));
      assert.equal(all.length, input.length);
      if (c.expected) {
        assert.equal(all.length, c.expected.simpleBlocks + c.expected.blockGroups, "mkvinfo's count of blocks");
        assert.equal(all.filter((b) => b.track === video).length, c.expected.videoFrames, "mkvinfo's count of video frames");
      }
      for (const track of new Set(input.map((b) => b.track))) {
        const want = input.filter((b) => b.track === track).map((b) => b.time);
        const got = all.filter((b) => b.track === track).map((b) => b.time);
        assert.deepEqual(got, want, `track ${track}'s block times`);
      }
    });

    await t.test("each append ends every track on a block with its duration", () => {
      if (!video) return; // a video-less stream is not held: nothing to say
      for (const [i, bl] of perAppend.entries()) {
        const lastOf = new Map();
        for (const b of bl) lastOf.set(b.track, b);
        for (const [track, b] of lastOf) {
          if (i === perAppend.length - 1) continue; // the flush at the end has no next frame to measure by
          assert.ok(b.duration !== null && b.duration > 0, `append ${i}: track ${track}'s last block (t=${b.time}) has no BlockDuration`);
        }
      }
    });

    await t.test("holds at most three video frames", () => {
      // The hold is each track's last frame, so that its duration is known,
      // and what follows the earliest of those, so that the tracks end
      // together: one video frame, or two or three when the audio's last
      // frame (60 ms of Opus from Chromium) ends before the video's.
      // Holding more (faecab2 held 36-267 ms of video) starves the player
      // (issue 20).
      if (!video) return;
      for (const [i, h] of held.entries()) {
        const n = h.get(video) || 0;
        assert.ok(n <= 3, `after segment ${i}: ${n} video frames held`);
      }
    });
  });
}

test("ebml writes an element that reads back", () => {
  const el = ebml(0x1a45dfa3, [ebmlUint(0x4286, 1)]);
  const id = vint(el, 0, true), size = vint(el, id.len, false);
  assert.equal(id.value, 0x1a45dfa3);
  assert.equal(id.len + size.len + size.value, el.length);
});

// --- WebMMuxer: the WebM of the WebCodecs recorder

const { WebMMuxer, WebMFrames, clusterStart: clusterStartOf } = await import("./relay-webm.js");

// Reads WebM bytes (whole elements, Segment and Clusters of unknown size
// allowed) into its top-level elements and Clusters of SimpleBlocks:
// {ids: [id...], clusters: [{time, blocks: [{track, time, rel, key, data}]}]}.
function readWebM(b) {
  const ids = [], clusters = [];
  for (let i = 0; i < b.length; ) {
    const id = vint(b, i, true), size = vint(b, i + id.len, false);
    assert.ok(id && size, `an element header cut at ${i}`);
    const body = i + id.len + size.len;
    if (id.value === 0x18538067 || id.value === ID_CLUSTER) {
      ids.push(id.value);
      if (id.value === ID_CLUSTER) clusters.push({ time: null, blocks: [] });
      i = body; // its children follow
      continue;
    }
    assert.ok(size.value >= 0 && body + size.value <= b.length, `element 0x${id.value.toString(16)} at ${i} cut`);
    const end = body + size.value;
    const c = clusters.at(-1);
    if (id.value === ID_TIMESTAMP) {
      assert.ok(c && c.time === null && !c.blocks.length, "a Cluster's Timestamp comes first");
      c.time = 0;
      for (let k = body; k < end; k++) c.time = c.time * 256 + b[k];
    } else if (id.value === ID_SIMPLEBLOCK) {
      assert.ok(c && c.time !== null, "a block outside a Cluster with a Timestamp");
      const t = vint(b, body, false);
      const rel = ((b[body + t.len] << 24) >> 16) | b[body + t.len + 1];
      c.blocks.push({ track: t.value, rel, time: c.time + rel, key: (b[body + t.len + 2] & 0x80) !== 0, data: b.slice(body + t.len + 3, end) });
    } else {
      assert.equal(c, undefined, `element 0x${id.value.toString(16)} in a Cluster`);
      ids.push(id.value);
    }
    i = end;
  }
  return { ids, clusters };
}

const concat = (parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) out.set(p, o), (o += p.length);
  return out;
};

// The frames of a recording: [{track, time, key, data}] in file order.
function framesOf(dir) {
  const { init, segs } = fromBlobs(dir);
  const { clusters } = readWebM(concat(segs));
  return { init, frames: clusters.flatMap((c) => c.blocks) };
}

test("WebMMuxer: a VP8 recording and a microphone's Opus, as the WebCodecs recorder gets them", () => {
  const { frames: video } = framesOf(join(recordings, "firefox_camera_vp8-opus_250"));
  const vframes = video.filter((f) => f.track === 1);
  // The microphone: what the recorder's audio MediaRecorder (Firefox,
  // audio/webm;codecs=opus, 100 ms blobs here 250) hands over, read with
  // WebMFrames as the recorder reads it.
  const micDir = join(recordings, "firefox_mic_opus_250");
  const blobs = readdirSync(micDir).filter((n) => /^\d{5}\.webm$/.test(n)).sort().map((n) => new Uint8Array(readFileSync(join(micDir, n))));
  const mic = new WebMFrames();
  const events = [];
  let at = 0;
  const aframes = [];
  for (const blob of blobs) {
    at += 250;
    for (const f of mic.push(blob)) aframes.push(f), events.push({ at, track: 2, t: f.time, key: true, data: f.data });
  }
  assert.ok(mic.audio && aframes.length > 100, "the microphone's frames and parameters");
  for (const f of vframes) events.push({ at: f.time, track: 1, t: f.time, key: f.key, data: f.data });
  events.sort((a, b) => a.at - b.at || a.track - b.track); // video is encoded at once, audio comes a blob later

  const mux = new WebMMuxer();
  mux.audio = true;
  const out = [];
  let headed = false;
  for (const e of events) {
    mux.frame(e.track, e.t, e.key, e.data);
    if (!headed && e.track === 2) mux.header(640, 480, mic.audio), (headed = true);
    out.push(...mux.take());
  }
  mux.flush();
  out.push(...mux.take());
  const bytes = concat(out);
  const { ids, clusters } = readWebM(bytes);

  assert.deepEqual(ids.slice(0, 4), [0x1a45dfa3, 0x18538067, 0x1549a966, 0x1654ae6b], "EBML, Segment, Info, Tracks, then Clusters");
  assert.ok(ids.slice(4).every((id) => id === ID_CLUSTER));
  assert.equal(webmVideoTrack(bytes), 1, "the video track is 1");
  const back = new WebMFrames();
  back.push(bytes);
  assert.equal(back.audio.sampleRate, mic.audio.sampleRate);
  assert.equal(back.audio.channels, mic.audio.channels);
  assert.deepEqual(back.audio.codecPrivate, mic.audio.codecPrivate, "the microphone's OpusHead");

  const keys = vframes.filter((f) => f.key);
  assert.ok(keys.length >= 2, "the recording has keyframes to cut at");
  assert.equal(clusters.length, keys.length, "a Cluster at each keyframe, no other");
  for (const [i, c] of clusters.entries()) {
    assert.equal(c.time, keys[i].time);
    assert.deepEqual([c.blocks[0].track, c.blocks[0].key, c.blocks[0].rel], [1, true, 0], `Cluster ${i} starts with its keyframe`);
  }
  const written = clusters.flatMap((c) => c.blocks);
  for (let i = 1; i < written.length; i++) assert.ok(written[i].time >= written[i - 1].time, `block ${i} goes back in time`);
  const first = keys[0].time;
  const want = (frames, track) => frames.filter((f) => f.time >= first).map((f) => [f.time, track === 1 ? f.key : true, f.data.length]);
  const got = (track) => written.filter((b) => b.track === track).map((b) => [b.time, b.key, b.data.length]);
  assert.deepEqual(got(1), want(vframes, 1), "every video frame from the first keyframe on, with its time and key flag");
  assert.deepEqual(got(2), want(aframes, 2), "every audio frame from the first keyframe on: none came too late");
  const data = (track) => written.filter((b) => b.track === track).map((b) => b.data);
  assert.deepEqual(data(1), vframes.filter((f) => f.time >= first).map((f) => f.data), "the frames' bytes");
});

test("WebMMuxer: video alone is written as it comes", () => {
  const { frames } = framesOf(join(recordings, "canvas_vp8_100_opaque_kf1000"));
  const mux = new WebMMuxer();
  mux.header(320, 240, null);
  const sizes = [];
  for (const f of frames) {
    const before = mux.out.length;
    mux.frame(1, f.time, f.key, f.data);
    sizes.push(mux.out.length - before);
  }
  assert.deepEqual(sizes, frames.map((f) => (f.key ? 2 : 1)), "each frame at once: a block, and a Cluster before a keyframe");
  const { clusters } = readWebM(concat(mux.take()));
  assert.equal(clusters.length, frames.filter((f) => f.key).length);
  assert.deepEqual(clusters.flatMap((c) => c.blocks).map((b) => [b.time, b.key]), frames.map((f) => [f.time, f.key]));
  assert.equal(mux.out.length, 0, "take() empties out");
});

test("WebMMuxer: nothing before the first keyframe, one frame per ms, a Cluster every 30 s at least", () => {
  const mux = new WebMMuxer();
  const d = (n) => new Uint8Array([n]);
  mux.frame(1, 0, false, d(1)); // before any keyframe: dropped
  mux.frame(1, 10, true, d(2));
  mux.frame(1, 10, false, d(3)); // the same ms: dropped
  mux.frame(1, 9, false, d(4)); // back in time: dropped
  for (let t = 1000; t <= 62000; t += 1000) mux.frame(1, t, false, d(5));
  const { clusters } = readWebM(concat(mux.take()));
  assert.deepEqual(clusters.map((c) => c.time), [10, 31000, 62000], "a Cluster once a frame is more than 30 s after the last");
  assert.deepEqual(clusters[0].blocks.slice(0, 2).map((b) => [b.time, b.data[0]]), [[10, 2], [1000, 5]]);
  for (const c of clusters) for (const b of c.blocks) assert.ok(b.rel >= 0 && b.rel <= 30000, `rel ${b.rel} fits`);
  assert.equal(clusters.flatMap((c) => c.blocks).length, 1 + 62, "the keyframe and one frame a second");
});

test("WebMMuxer: with audio, video waits for it up to 500 ms, and late audio is dropped", () => {
  const mux = new WebMMuxer();
  mux.audio = true;
  const d = new Uint8Array([0]);
  const blocks = () => readWebM(concat([clusterStartOf(0), ...mux.out.filter((p) => p[0] === 0xa3)])).clusters[0].blocks.map((b) => [b.track, b.time]);
  mux.frame(1, 0, true, d);
  mux.frame(1, 100, false, d);
  assert.equal(mux.out.length, 0, "video waits for the audio");
  mux.frame(2, 50, true, d);
  assert.deepEqual(blocks(), [[1, 0], [2, 50]], "written up to the older track's newest frame");
  mux.frame(1, 400, false, d);
  mux.frame(1, 650, false, d);
  assert.deepEqual(blocks(), [[1, 0], [2, 50], [1, 100]], "and up to 500 ms behind the newest");
  mux.frame(2, 700, true, d);
  assert.deepEqual(blocks().slice(3), [[1, 400], [1, 650]], "audio caught up");
  mux.frame(1, 1300, false, d);
  mux.frame(1, 1800, false, d);
  assert.deepEqual(blocks().slice(5), [[2, 700], [1, 1300]], "video 500 ms ahead of the audio is written");
  mux.frame(2, 1299, true, d); // older than what was written, by 1 ms: dropped
  mux.frame(1, 1900, false, d);
  assert.deepEqual(blocks().slice(7), []);
  mux.flush();
  assert.deepEqual(blocks().slice(7), [[1, 1800], [1, 1900]], "flush writes what waits");
});

test("WebMMuxer: copies an EncodedVideoChunk's bytes; the header goes first", () => {
  const mux = new WebMMuxer();
  const chunk = { byteLength: 3, copyTo: (dst) => dst.set([7, 8, 9]) };
  mux.frame(1, 5, true, chunk);
  mux.header(2, 2, { sampleRate: 48000, channels: 2, codecPrivate: null });
  const bytes = concat(mux.take());
  const { ids, clusters } = readWebM(bytes);
  assert.equal(ids[0], 0x1a45dfa3);
  assert.deepEqual([...clusters[0].blocks[0].data], [7, 8, 9]);
  const back = new WebMFrames();
  back.push(bytes);
  assert.deepEqual([back.audio.sampleRate, back.audio.channels], [48000, 2]);
  assert.equal(new TextDecoder().decode(back.audio.codecPrivate.subarray(0, 8)), "OpusHead", "an OpusHead made up when the recorder gave none");
});

test("WebMAppender: heldAt is when the newest segment came, not when bytes were first held", () => {
  // The player appends what is held as it is once heldAt is 500 ms old. A
  // flowing stream always leaves something held; timed from the first hold,
  // that flush fired every half second and ended appends on a guessed
  // duration (issue 20: holes in Firefox until the next keyframe).
  const { init, segs } = fromSegments("e2e/testdata/segments/chromium_clock_vp9-opus");
  let t = 1000;
  const appender = new WebMAppender(webmVideoTrack(init), () => t);
  assert.equal(appender.heldAt(), 0, "nothing held yet");
  let held = 0;
  for (const s of segs) {
    t += 240; // Chromium's blob rhythm with a microphone
    appender.take(ab(s));
    if (appender.heldAt()) {
      held++;
      assert.equal(appender.heldAt(), t, "held since the segment that just came");
    }
  }
  assert.ok(held > segs.length / 2, `bytes held after ${held} of ${segs.length} segments`);
  appender.flush();
  assert.equal(appender.heldAt(), 0, "nothing held after a flush");
});
