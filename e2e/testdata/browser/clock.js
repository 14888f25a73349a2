// clock.js: the test clock, shared by the browser test pages.
//
// A publisher draws Date.now() into every canvas frame as 40 black/white
// blocks (2 rows of 20 across the top: 32 bits of the time in ms, then a
// CRC-8), and viewers read it back from the frame they display, so the
// glass-to-glass latency is measured, not guessed: latency = Date.now() when
// the frame is presented minus the time drawn into it (all pages run in one
// browser, on one clock).

export const COLS = 20;
export const ROWS = 2;
const BITS = COLS * ROWS; // 32 data + 8 check

function crc8(bytes) {
  let c = 0;
  for (const b of bytes) {
    c ^= b;
    for (let i = 0; i < 8; i++) c = c & 0x80 ? ((c << 1) ^ 0x07) & 0xff : (c << 1) & 0xff;
  }
  return c;
}

function stampBits(ms) {
  const v = ms % 2 ** 32;
  const bytes = [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
  const all = [...bytes, crc8(bytes) ^ 0xa5]; // ^0xa5: an all-black strip does not check
  const bits = [];
  for (const b of all) for (let i = 7; i >= 0; i--) bits.push((b >> i) & 1);
  return bits;
}

/**
 * Draws the clock on canvas at every animation frame and returns its
 * captureStream(fps).
 */
export function startClock(canvas, { fps = 30, label = "", noise = false } = {}) {
  const ctx = canvas.getContext("2d", { alpha: false });
  const W = canvas.width, H = canvas.height, bs = W / COLS;
  let running = true, n = 0;
  // noise: random pixels below the code strip, which no encoder can
  // compress: a high bitrate on demand (for the congestion test).
  const noiseImg = noise ? ctx.createImageData(W, H - ROWS * bs) : null;
  const noisePx = noiseImg ? new Uint32Array(noiseImg.data.buffer) : null;
  function draw() {
    if (!running) return;
    const t = Date.now();
    const s = t / 1000;
    // Background: never dark (a black frame on a viewer means a flash).
    ctx.fillStyle = "hsl(" + ((s * 30) % 360) + ",35%,55%)";
    ctx.fillRect(0, 0, W, H);
    // Something that moves, so the encoder has work like a real picture.
    ctx.fillStyle = "#fc3";
    ctx.beginPath();
    ctx.arc(W / 2 + (W / 3) * Math.cos(s * 2), H * 0.6 + (H / 5) * Math.sin(s * 3), H / 8, 0, 2 * Math.PI);
    ctx.fill();
    ctx.fillStyle = "#246";
    ctx.fillRect(((s * 200) % (W + 60)) - 60, H - 40, 60, 30);
    if (noiseImg) {
      for (let i = 0; i < noisePx.length; i++) noisePx[i] = (Math.random() * 0x1000000) | 0xff000000;
      ctx.putImageData(noiseImg, 0, ROWS * bs);
    }
    // The code strip.
    const bits = stampBits(t);
    for (let i = 0; i < BITS; i++) {
      ctx.fillStyle = bits[i] ? "#fff" : "#000";
      ctx.fillRect((i % COLS) * bs, Math.floor(i / COLS) * bs, bs, bs);
    }
    ctx.fillStyle = "#000";
    ctx.font = "bold " + Math.round(H / 10) + "px monospace";
    const d = new Date(t);
    ctx.fillText(d.toISOString().slice(11, 23) + "  #" + n, 10, ROWS * bs + H / 8);
    if (label) ctx.fillText(label, 10, ROWS * bs + H / 4);
    n++;
    requestAnimationFrame(draw);
  }
  draw();
  const stream = canvas.captureStream(fps);
  return { stream, stop: () => { running = false; } };
}

/**
 * Reads the clock from the frame a video element displays. Returns the
 * stamp in ms (full Date.now() value), or -1 when the code does not check.
 */
export class ClockReader {
  constructor() {
    this.canvas = document.createElement("canvas");
    this.ctx = this.canvas.getContext("2d", { willReadFrequently: true });
  }

  /** @returns {{stamp: number, luma: number}} luma: mean of a patch in the middle */
  read(video) {
    const W = video.videoWidth, H = video.videoHeight;
    if (!W || !H) return { stamp: -1, luma: -1 };
    const bs = W / COLS, sh = Math.ceil(ROWS * bs);
    if (this.canvas.width !== W || this.canvas.height !== sh + 32) {
      this.canvas.width = W;
      this.canvas.height = sh + 32;
    }
    const ctx = this.ctx;
    ctx.drawImage(video, 0, 0, W, sh, 0, 0, W, sh);
    ctx.drawImage(video, W / 2 - 16, H / 2 - 16, 32, 32, 0, sh, 32, 32);
    const img = ctx.getImageData(0, 0, W, sh + 32).data;
    const lumaAt = (x, y) => {
      const i = (Math.round(y) * W + Math.round(x)) * 4;
      return 0.299 * img[i] + 0.587 * img[i + 1] + 0.114 * img[i + 2];
    };
    const bits = [];
    const r = Math.max(1, Math.floor(bs / 4));
    for (let i = 0; i < BITS; i++) {
      const cx = (i % COLS) * bs + bs / 2, cy = Math.floor(i / COLS) * bs + bs / 2;
      let sum = 0, k = 0;
      for (let dy = -r; dy <= r; dy += r) for (let dx = -r; dx <= r; dx += r) { sum += lumaAt(cx + dx, cy + dy); k++; }
      bits.push(sum / k > 128 ? 1 : 0);
    }
    let luma = 0;
    for (let y = 0; y < 32; y += 4) for (let x = 0; x < 32; x += 4) luma += lumaAt(x, sh + y);
    luma /= 64;
    const bytes = [];
    for (let b = 0; b < 5; b++) {
      let v = 0;
      for (let i = 0; i < 8; i++) v = (v << 1) | bits[b * 8 + i];
      bytes.push(v);
    }
    if ((crc8(bytes.slice(0, 4)) ^ 0xa5) !== bytes[4]) return { stamp: -1, luma };
    const low = ((bytes[0] << 24) >>> 0) + (bytes[1] << 16) + (bytes[2] << 8) + bytes[3];
    const nowMs = Date.now();
    const stamp = nowMs - ((nowMs - low) % 2 ** 32 + 2 ** 32) % 2 ** 32;
    return { stamp, luma };
  }
}

/**
 * Records what a video element shows: every presented frame (Date.now(),
 * decoded stamp, black or not) and the element's events. The Go test reads
 * probe.report().
 */
export class FrameProbe {
  constructor(video) {
    this.video = video;
    this.reader = new ClockReader();
    this.frames = []; // flat: t, stamp, black
    this.events = []; // [t, type, detail]
    this.firstFrameAt = 0;
    this.src = "";
    this.lastLatency = NaN;
    for (const type of ["waiting", "playing", "emptied", "loadstart", "seeking", "seeked", "error", "pause", "play", "ended"]) {
      video.addEventListener(type, () => {
        this.events.push([Date.now(), type, type === "error" && video.error ? video.error.code + " " + video.error.message : ""]);
      });
    }
    const onFrame = () => {
      const t = Date.now();
      const { stamp, luma } = this.reader.read(video);
      this.frames.push(t, stamp, luma >= 0 && luma < 20 ? 1 : 0);
      if (!this.firstFrameAt) this.firstFrameAt = t;
      if (stamp > 0) this.lastLatency = t - stamp;
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  }

  note(type, detail = "") {
    this.events.push([Date.now(), type, String(detail)]);
  }

  report() {
    return { frames: this.frames, events: this.events, firstFrameAt: this.firstFrameAt };
  }
}
