// relay-mime.js: the MIME types of segrelay's browser client: which type
// the publisher records (PUBLISH_MIME_TYPES, pickMimeType), a type's codecs
// and track layout (which the player's SourceBuffer cannot change). relay.js
// re-exports its public names; the Hub serves it beside relay.js
// ({mount}/relay-mime.js); node runs its unit tests (relay-mime_test.mjs).
// Not an API of its own: import relay.js.

"use strict";

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

/** @param {string} mime @returns {string[]} the codecs parameter, lower case */
export function codecsOf(mime) {
  const m = /codecs\s*=\s*"?([^";]*)"?/i.exec(mime || "");
  return m ? m[1].split(",").map((c) => c.trim().toLowerCase()).filter(Boolean) : [];
}

/** @param {string} mime @returns {string} e.g. "1v1a", "1v0a" */
export function trackLayout(mime) {
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
