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
