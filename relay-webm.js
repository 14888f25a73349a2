// relay-webm.js: the WebM of segrelay's browser client, which needs no
// browser: the EBML writer, the frame reader and WebMMuxer, with which the
// WebCodecs recorder writes its WebM, and the WebMAppender, WebM as a
// SourceBuffer wants it. relay.js imports it (through relay-publisher.js
// and relay-player.js); the Hub serves it beside relay.js ({mount}/relay-webm.js);
// node runs its unit tests (relay-webm_test.mjs, fed with the recordings
// in testdata/). Not an API of its own: import relay.js.

"use strict";

const now = () => performance.now();

/** EBML: an element with id (its bytes) and a body (Uint8Array or array of them). */
export function ebml(id, body) {
  const parts = Array.isArray(body) ? body : [body];
  let size = 0;
  for (const p of parts) size += p.length;
  const idBytes = [];
  for (let v = id; v > 0; v = Math.floor(v / 256)) idBytes.unshift(v % 256);
  let n = 1;
  while (size >= 2 ** (7 * n) - 1) n++;
  const out = new Uint8Array(idBytes.length + n + size);
  out.set(idBytes, 0);
  for (let k = n - 1, v = size; k >= 0; k--, v = Math.floor(v / 256)) out[idBytes.length + k] = v % 256;
  out[idBytes.length] |= 0x80 >> (n - 1);
  let w = idBytes.length + n;
  for (const p of parts) {
    out.set(p, w);
    w += p.length;
  }
  return out;
}
export const ebmlUint = (id, v) => {
  const b = [];
  do {
    b.unshift(v % 256);
    v = Math.floor(v / 256);
  } while (v > 0);
  return ebml(id, new Uint8Array(b));
};
export const ebmlFloat = (id, v) => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setFloat64(0, v);
  return ebml(id, b);
};
export const ebmlString = (id, s) => ebml(id, new TextEncoder().encode(s));

/** The Opus identification header (RFC 7845), the CodecPrivate of an Opus track. */
export function opusHead(channels, sampleRate) {
  const b = new Uint8Array(19);
  b.set(new TextEncoder().encode("OpusHead"), 0);
  const dv = new DataView(b.buffer);
  b[8] = 1; // version
  b[9] = channels;
  dv.setUint16(10, 312, true); // pre-skip
  dv.setUint32(12, sampleRate, true);
  return b;
}

/**
 * WebMFrames reads the frames of one track out of a WebM byte stream cut
 * anywhere (MediaRecorder's blobs), and the audio parameters of its Tracks.
 */
export class WebMFrames {
  constructor() {
    this._buf = new Uint8Array(0);
    this._cluster = 0;
    /** {sampleRate, channels, codecPrivate} once the Tracks were read. */
    this.audio = null;
  }

  /** Takes the next bytes; returns the frames they complete: [{time (ms), data}]. */
  push(bytes) {
    let b = bytes;
    if (this._buf.length) {
      b = new Uint8Array(this._buf.length + bytes.length);
      b.set(this._buf, 0);
      b.set(bytes, this._buf.length);
    }
    const out = [];
    let i = 0;
    for (;;) {
      const id = readVint(b, i, true);
      const size = id && readVint(b, i + id.len, false);
      if (!size) break;
      const body = i + id.len + size.len;
      if (id.value === ID_SEGMENT || id.value === ID_CLUSTER || size.value < 0) {
        i = body; // its children follow
        continue;
      }
      const end = body + size.value;
      if (end > b.length) break;
      if (id.value === ID_TIMESTAMP) this._cluster = readUint(b, body, end);
      else if (id.value === ID_TRACKS) this.audio = this._tracks(b, body, end);
      else if (id.value === ID_SIMPLEBLOCK) {
        const track = readVint(b, body, false);
        const at = body + (track ? track.len : 0);
        if (track && at + 3 <= end && !(b[at + 2] & 0x06)) {
          out.push({ time: this._cluster + (((b[at] << 24) >> 16) | b[at + 1]), data: b.slice(at + 3, end) });
        }
      }
      i = end;
    }
    this._buf = b.slice(i);
    return out;
  }

  _tracks(b, start, end) {
    const audio = { sampleRate: 48000, channels: 1, codecPrivate: null };
    const walk = (s, e) => {
      for (let i = s; i < e; ) {
        const id = readVint(b, i, true);
        const size = id && readVint(b, i + id.len, false);
        if (!size || size.value < 0) return;
        const body = i + id.len + size.len;
        const stop = body + size.value;
        if (id.value === ID_TRACKENTRY || id.value === 0xe1) walk(body, stop);
        else if (id.value === 0x63a2) audio.codecPrivate = b.slice(body, stop);
        else if (id.value === 0x9f) audio.channels = readUint(b, body, stop);
        else if (id.value === 0xb5) {
          const dv = new DataView(b.buffer, b.byteOffset + body, size.value);
          audio.sampleRate = size.value === 4 ? dv.getFloat32(0) : dv.getFloat64(0);
        }
        i = stop;
      }
    };
    walk(start, end);
    return audio;
  }
}

// ---------------------------------------------------------------------------
// WebM media as a SourceBuffer wants it

const ID_CLUSTER = 0x1f43b675;
const ID_TIMESTAMP = 0xe7;
const ID_SIMPLEBLOCK = 0xa3;
const ID_BLOCKGROUP = 0xa0;
const ID_BLOCK = 0xa1;
const ID_REFERENCEBLOCK = 0xfb;
const ID_BLOCKDURATION = 0x9b;
const ID_SEGMENT = 0x18538067;
const ID_TRACKS = 0x1654ae6b;
const ID_TRACKENTRY = 0xae;
const ID_TRACKNUMBER = 0xd7;
const ID_TRACKTYPE = 0x83;

/** Reads an EBML variable-size integer at i: {len, value} (value -1: unknown size), or null. */
function readVint(b, i, keepMarker) {
  if (i >= b.length) return null;
  const first = b[i];
  let len = 1;
  while (len <= 8 && !(first & (0x80 >> (len - 1)))) len++;
  if (len > 8 || i + len > b.length) return null;
  let value = keepMarker ? first : first & (0xff >> len);
  let ones = value === 0xff >> len;
  for (let k = 1; k < len; k++) {
    value = value * 256 + b[i + k];
    if (b[i + k] !== 0xff) ones = false;
  }
  return { len, value: !keepMarker && ones ? -1 : value };
}

/** A Cluster's ID and an unknown size: its end is where the next Cluster starts. */
const UNKNOWN_SIZE_CLUSTER = new Uint8Array([0x1f, 0x43, 0xb6, 0x75, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);

/** The bytes of a Cluster of unknown size and its Timestamp. */
export function clusterStart(time) {
  const out = new Uint8Array(22);
  out.set(UNKNOWN_SIZE_CLUSTER);
  out.set([0xe7, 0x88], 12); // Timestamp, 8 bytes
  for (let k = 21, v = time; k >= 14; k--, v = Math.floor(v / 256)) out[k] = v % 256;
  return out;
}

/** ReferenceBlock -1: the block depends on an earlier one (only its presence matters to MSE). */
const REFERENCE_EARLIER = new Uint8Array([0xfb, 0x81, 0xff]);

/**
 * A block element's bytes (block, parsed as e) as a BlockGroup with a
 * BlockDuration: a SimpleBlock's keyframe flag becomes a ReferenceBlock when
 * clear (a Block has no such flag), a BlockGroup gets the duration added.
 */
function withDuration(block, e, duration) {
  const body = block.subarray(e.body - e.start);
  const blockDuration = ebmlUint(ID_BLOCKDURATION, duration);
  if (!e.simple) return ebml(ID_BLOCKGROUP, [body, blockDuration]);
  body[e.at - e.body + 2] &= 0x0e; // a Block keeps only the invisible and lacing bits
  const parts = [ebml(ID_BLOCK, body), blockDuration];
  if (!e.keyframe) parts.push(REFERENCE_EARLIER);
  return ebml(ID_BLOCKGROUP, parts);
}

function readUint(b, start, end) {
  let v = 0;
  for (let k = start; k < end; k++) v = v * 256 + b[k];
  return v;
}

/** The track number of the first video track of a WebM init segment, or 0. */
export function webmVideoTrack(b) {
  const walk = (start, end) => {
    for (let i = start; i < end; ) {
      const id = readVint(b, i, true);
      const size = id && readVint(b, i + id.len, false);
      if (!size) return 0;
      const body = i + id.len + size.len;
      const stop = size.value < 0 ? end : Math.min(end, body + size.value);
      if (id.value === ID_SEGMENT || id.value === ID_TRACKS) {
        const found = walk(body, stop);
        if (found || id.value === ID_TRACKS) return found;
      } else if (id.value === ID_TRACKENTRY) {
        let number = 0, type = 0;
        for (let j = body; j < stop; ) {
          const cid = readVint(b, j, true);
          const csize = cid && readVint(b, j + cid.len, false);
          if (!csize || csize.value < 0) break;
          const cbody = j + cid.len + csize.len;
          if (cid.value === ID_TRACKNUMBER) number = readUint(b, cbody, cbody + csize.value);
          if (cid.value === ID_TRACKTYPE) type = readUint(b, cbody, cbody + csize.value);
          j = cbody + csize.value;
        }
        if (type === 1) return number;
      }
      if (size.value < 0) return 0;
      i = body + size.value;
    }
    return 0;
  };
  return walk(0, b.length);
}

/**
 * Splits WebM media bytes that start at an element boundary inside a Segment
 * (what the hub forwards) into the elements that matter here: Cluster
 * headers, Cluster Timestamps, blocks (SimpleBlock or BlockGroup: track,
 * relative time and where it is, keyframe flag, whether it has a
 * BlockDuration, where its body starts), and the rest. Null if they do not
 * parse.
 */
function webmElements(b) {
  const out = [];
  for (let i = 0; i < b.length; ) {
    const id = readVint(b, i, true);
    const size = id && readVint(b, i + id.len, false);
    if (!size) return null;
    const body = i + id.len + size.len;
    if (id.value === ID_CLUSTER) {
      out.push({ kind: "cluster", start: i, end: body, sized: size.value >= 0 }); // its children follow
      i = body;
      continue;
    }
    if (size.value < 0) return null;
    const end = body + size.value;
    if (end > b.length) return null;
    if (id.value === ID_TIMESTAMP) {
      out.push({ kind: "timestamp", start: i, end, value: readUint(b, body, end) });
    } else if (id.value === ID_SIMPLEBLOCK || id.value === ID_BLOCKGROUP) {
      let blk = body, blkEnd = end, keyframe = true, hasDuration = false;
      if (id.value === ID_BLOCKGROUP) {
        blk = -1;
        for (let j = body; j < end; ) {
          const cid = readVint(b, j, true);
          const csize = cid && readVint(b, j + cid.len, false);
          if (!csize || csize.value < 0) return null;
          const cbody = j + cid.len + csize.len;
          if (cid.value === ID_BLOCK) (blk = cbody), (blkEnd = cbody + csize.value);
          if (cid.value === ID_REFERENCEBLOCK) keyframe = false;
          if (cid.value === ID_BLOCKDURATION) hasDuration = true;
          j = cbody + csize.value;
        }
        if (blk < 0) return null;
      }
      const track = readVint(b, blk, false);
      if (!track || blk + track.len + 3 > blkEnd) return null;
      const at = blk + track.len; // the signed 16-bit time relative to the Cluster
      if (id.value === ID_SIMPLEBLOCK) keyframe = (b[at + 2] & 0x80) !== 0;
      const rel = ((b[at] << 24) >> 16) | b[at + 1];
      out.push({ kind: "block", start: i, end, body, simple: id.value === ID_SIMPLEBLOCK, track: track.value, rel, at, keyframe, hasDuration });
    } else {
      out.push({ kind: "other", start: i, end });
    }
    i = end;
  }
  return out;
}

/**
 * WebMAppender turns the WebM media segments of one session into what to
 * append to a SourceBuffer, so that MSE does not throw frames away. Both
 * fixes matter where keyframes are rare, as in Firefox's MediaRecorder output
 * (a keyframe every 6-7 s): MSE drops what it cannot decode until the next
 * keyframe, so a mistake costs seconds of frozen picture.
 *
 * 1. One Cluster per GOP. Neither browser knows how long the last frame of a
 *    Cluster lasts and guesses; when the next Cluster's first frame starts
 *    before that guess ends, the SourceBuffer replaces the overlapped frame,
 *    and the frames that depend on it go too (Firefox 153 and Chromium 156,
 *    measured). Firefox starts a Cluster every second, mostly without a
 *    keyframe; Chromium with a microphone starts one every 120 ms or so on
 *    an audio block, and Firefox drops the video after such a Cluster until
 *    the next keyframe. The appender folds every Cluster whose first video
 *    block is not a keyframe (or that has none) into the one before it: it
 *    drops the Cluster header and Timestamp and shifts its blocks' times
 *    (16 bits, relative to the Cluster) by the difference. A Cluster that
 *    starts with a keyframe, or whose times would not fit, stays.
 * 2. No guessed duration at the end of an append. Firefox takes the last
 *    frame of an append to last as long as the one before it: when the next
 *    frame starts earlier (an overlap) it replaces that frame, when it starts
 *    more than twice the longest frame duration later (an encoder under load
 *    skips frames) it drops everything until a keyframe; with a microphone,
 *    an append that ends on a guess for one track drops video until the
 *    next keyframe (measured, docs/browser-facts.md). So the appender holds
 *    each track's last frame of a segment (and what follows the earliest of
 *    them: a frame of video, one of audio) for the next segment, and writes
 *    the duration of each track's last frame in the append, now known, as a
 *    BlockDuration (a SimpleBlock becomes a BlockGroup). Chromium holds
 *    such a frame back in its parser until the next one anyway, so the hold
 *    costs next to nothing. A video-less stream is not held. After 500 ms
 *    without a segment it appends what it holds as it is.
 *
 * The bytes are copied only where they change.
 */
export class WebMAppender {
  /**
   * @param {number} videoTrack the video track's number, from the init (0: none)
   * @param {() => number} [clock] ms (performance.now)
   */
  constructor(videoTrack, clock = now) {
    this._video = videoTrack;
    this._now = clock;
    this._held = null; // bytes not appended yet
    this._heldAt = 0; // when the segment that left them held came
    // The parsing state where the held bytes (or the next segment) begin:
    // the Cluster the bytes are in, the Cluster the SourceBuffer sees them in
    // (not the same one when folded), and whether a Cluster header was just
    // dropped (its Timestamp goes too).
    this._state = { cluster: -1, open: -1, dropping: false };
  }

  /** Forgets what it holds and where it is: what comes next follows a gap (media was dropped). */
  reset() {
    this._held = null;
    this._state = { cluster: -1, open: -1, dropping: false };
  }

  /**
   * When the segment that left bytes held came (its clock's ms), 0 if none
   * are held: the player appends them as they are once no segment followed
   * for a while. Not when they were first held: with segments flowing,
   * something is always held, and a flush timed from the first hold would
   * end appends on a guessed duration every half second (issue 20: each
   * such flush risked a hole in Firefox until the next keyframe).
   */
  heldAt() {
    return this._held ? this._heldAt : 0;
  }

  /** Returns everything held, ready to append (null if none). */
  flush() {
    if (!this._held) return null;
    const b = this._held;
    this._held = null;
    const els = webmElements(b);
    return els ? this._emit(b, els, els.length, new Map()) : b;
  }

  /** Takes the next media segment (an ArrayBuffer); returns what to append now (maybe empty). */
  take(buf) {
    const data = new Uint8Array(buf);
    let b = data;
    if (this._held) {
      b = new Uint8Array(this._held.length + data.length);
      b.set(this._held, 0);
      b.set(data, this._held.length);
      this._held = null;
    }
    const els = webmElements(b);
    if (!els) {
      // Not WebM we can read: append it as it is, and start afresh.
      this._state = { cluster: -1, open: -1, dropping: false };
      return b;
    }
    // Hold from the earliest of the tracks' last blocks on, so that every
    // track's last block in the append is followed by a known one: the
    // append ends right after the block before it (a Cluster header in
    // between is held too).
    let cut = els.length;
    const lastOf = new Map(); // track -> index of its last block
    for (let k = 0; k < els.length; k++) if (els[k].kind === "block") lastOf.set(els[k].track, k);
    if (this._video && lastOf.has(this._video)) {
      const first = Math.min(...lastOf.values());
      cut = 0;
      for (let j = first - 1; j >= 0; j--) {
        if (els[j].kind === "block") {
          cut = j + 1;
          break;
        }
      }
    }
    if (cut < els.length) this._heldAt = this._now();
    const out = this._emit(b, els, cut, this._durations(els, cut));
    if (cut < els.length) this._held = b.subarray(els[cut].start);
    return out;
  }

  /**
   * How long the last block of each track in els[0..cut) lasts, by its index:
   * until the track's next block, where els has it and the block does not say.
   */
  _durations(els, cut) {
    const times = new Array(els.length).fill(NaN);
    let cluster = this._state.cluster;
    for (let k = 0; k < els.length; k++) {
      const e = els[k];
      if (e.kind === "timestamp") cluster = e.value;
      else if (e.kind === "block") times[k] = cluster < 0 ? NaN : cluster + e.rel;
    }
    const last = new Map(); // track -> index of its last block before cut
    for (let k = 0; k < cut; k++) if (els[k].kind === "block") last.set(els[k].track, k);
    const out = new Map();
    for (const [track, k] of last) {
      if (els[k].hasDuration) continue;
      for (let m = cut; m < els.length; m++) {
        if (els[m].kind === "block" && els[m].track === track) {
          const d = times[m] - times[k];
          if (d > 0) out.set(k, d);
          break;
        }
      }
    }
    return out;
  }

  /**
   * Returns the bytes of els[0..cut) as they are to be appended, with the
   * durations given (by element index), and moves the state past them.
   */
  _emit(b, els, cut, durations) {
    const st = this._state;
    const pieces = [];
    let pos = 0; // b[pos..] is not in pieces yet
    const skip = (e) => {
      pieces.push(b.subarray(pos, e.start));
      pos = e.end;
    };
    for (let k = 0; k < cut; k++) {
      const e = els[k];
      if (e.kind === "cluster") {
        st.dropping = this._fold(els, k);
        if (st.dropping) skip(e);
        else if (e.sized) {
          // Clusters folded into this one would end up after its end: make
          // its size unknown, as MediaRecorder writes them (ffmpeg writes
          // sizes, and cuts Clusters without keyframes).
          skip(e);
          pieces.push(UNKNOWN_SIZE_CLUSTER);
        }
      } else if (e.kind === "timestamp") {
        st.cluster = e.value;
        if (st.dropping) skip(e);
        else st.open = e.value;
      } else if (e.kind === "other") {
        if (st.dropping) skip(e); // a folded Cluster's other children (Position, PrevSize)
      } else {
        st.dropping = false;
        if (st.cluster < 0) continue;
        let rel = e.rel + st.cluster - st.open;
        if (rel < -32768 || rel > 32767) {
          // Too far from the open Cluster: open a new one here.
          pieces.push(b.subarray(pos, e.start));
          pos = e.start;
          pieces.push(clusterStart(st.cluster));
          st.open = st.cluster;
          rel = e.rel;
        }
        const duration = durations.get(k);
        if (rel === e.rel && duration === undefined) continue;
        pieces.push(b.subarray(pos, e.start));
        const block = b.slice(e.start, e.end);
        block[e.at - e.start] = (rel >> 8) & 0xff;
        block[e.at - e.start + 1] = rel & 0xff;
        pieces.push(duration === undefined ? block : withDuration(block, e, duration));
        pos = e.end;
      }
    }
    const end = cut < els.length ? els[cut].start : b.length;
    if (!pieces.length) return b.subarray(0, end);
    pieces.push(b.subarray(pos, end));
    let size = 0;
    for (const p of pieces) size += p.length;
    const out = new Uint8Array(size);
    let w = 0;
    for (const p of pieces) {
      out.set(p, w);
      w += p.length;
    }
    return out;
  }

  /** Whether the Cluster whose header is els[k] folds into the open one. */
  _fold(els, k) {
    const open = this._state.open;
    if (!this._video || open < 0) return false;
    let time = -1;
    const rels = [];
    let firstVideo = null;
    for (let j = k + 1; j < els.length && els[j].kind !== "cluster"; j++) {
      if (els[j].kind === "timestamp") time = els[j].value;
      if (els[j].kind === "block") {
        rels.push(els[j].rel);
        if (!firstVideo && els[j].track === this._video) firstVideo = els[j];
      }
    }
    if (time < 0 || (firstVideo && firstVideo.keyframe)) return false;
    // The blocks here must fit (later ones that do not open a new Cluster: see _emit).
    for (const rel of rels) {
      const shifted = rel + time - open;
      if (shifted < -32768 || shifted > 32767) return false;
    }
    return true;
  }
}

// ---------------------------------------------------------------------------
// The WebM the WebCodecs recorder writes

/**
 * WebMMuxer writes the WebM of relay.js's WebCodecsRecorder: VP8 video in
 * track 1, with a Cluster at each keyframe, and Opus audio in track 2, as
 * SimpleBlocks of millisecond times. out holds the bytes made since the
 * last take(); the header goes before them once the audio's parameters are
 * known.
 */
export class WebMMuxer {
  constructor() {
    this.out = []; // bytes made since the last take()
    /** Whether audio is recorded: video frames wait for it (see frame). */
    this.audio = false;
    this._cluster = -1; // the open Cluster's time (ms), -1 before the first
    this._lastTime = {}; // track -> ms of its last frame
    this._pending = []; // frames not written yet, in time order
    this._written = 0; // ms of the last frame written
  }

  /** The bytes made since the last take(), header first; out starts over. */
  take() {
    const out = this.out;
    this.out = [];
    return out;
  }

  /** The WebM header, before what was recorded so far: EBML, a Segment of unknown size, Info and Tracks. */
  header(width, height, audio) {
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
    this.out.unshift(
      ebml(0x1a45dfa3, [ebmlUint(0x4286, 1), ebmlUint(0x42f7, 1), ebmlUint(0x42f2, 4), ebmlUint(0x42f3, 8),
        ebmlString(0x4282, "webm"), ebmlUint(0x4287, 4), ebmlUint(0x4285, 2)]),
      new Uint8Array([0x18, 0x53, 0x80, 0x67, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
      ebml(0x1549a966, [ebmlUint(0x2ad7b1, 1000000), ebmlString(0x4d80, "segrelay relay.js"), ebmlString(0x5741, "segrelay relay.js")]),
      ebml(0x1654ae6b, tracks),
    );
  }

  /**
   * Takes one frame (t: ms of the recording; data: a Uint8Array, or an
   * EncodedVideoChunk). Frames are written in time order across tracks
   * (Chromium refuses a Cluster whose audio goes back in time after video),
   * so with audio a video frame waits until audio caught up with it, 500 ms
   * at most; audio later than that is dropped.
   */
  frame(track, t, key, data) {
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
    const mark = !this.audio ? newest : times.length === 2 ? Math.max(Math.min(...times), newest - 500) : newest - 500;
    while (q.length && q[0].t <= mark) {
      const f = q.shift();
      this._write(f.track, f.t, f.key, f.data);
    }
  }

  /** Writes the frames that wait (the recording ends). */
  flush() {
    for (const f of this._pending.splice(0)) this._write(f.track, f.t, f.key, f.data);
  }

  /** Writes one frame as a SimpleBlock; a video keyframe opens a Cluster. */
  _write(track, t, key, data) {
    if (track === 1 && key) {
      this.out.push(clusterStart(t));
      this._cluster = t;
    } else if (this._cluster < 0) {
      return; // nothing plays before the first keyframe
    } else if (t - this._cluster > 30000) {
      this.out.push(clusterStart(t)); // block times are 16 bits, relative to the Cluster
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
    this.out.push(ebml(0xa3, block));
  }
}
