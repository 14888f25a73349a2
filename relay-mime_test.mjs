// Unit tests of relay-mime.js in node (node --test relay-mime_test.mjs; the
// Go test TestRelayJSUnits runs them): a type's codecs and track layout,
// and which type the publisher picks, on a fake MediaRecorder.

import test from "node:test";
import assert from "node:assert/strict";

const { PUBLISH_MIME_TYPES, codecsOf, pickMimeType, trackLayout } = await import("./relay-mime.js");

test("codecsOf reads the codecs parameter", () => {
  assert.deepEqual(codecsOf("video/webm;codecs=vp9,opus"), ["vp9", "opus"]);
  assert.deepEqual(codecsOf('video/webm; codecs="VP8, Opus"'), ["vp8", "opus"]);
  assert.deepEqual(codecsOf("video/webm;codecs=vp09.00.10.08;foo=bar"), ["vp09.00.10.08"]);
  assert.deepEqual(codecsOf("video/webm;codecs=,vp8,"), ["vp8"]);
  assert.deepEqual(codecsOf("video/webm"), []);
  assert.deepEqual(codecsOf(""), []);
  assert.deepEqual(codecsOf(undefined), []);
});

test("trackLayout counts video and audio tracks", () => {
  for (const [mime, want] of [
    ["video/webm;codecs=vp9,opus", "1v1a"],
    ["video/webm;codecs=vp8,vorbis", "1v1a"],
    ["video/webm;codecs=vp8", "1v0a"],
    ["video/webm", "1v0a"], // no codecs: a video type has a video track
    ["audio/webm;codecs=opus", "0v1a"],
    ["audio/webm", "0v0a"],
    ["AUDIO/WEBM;codecs=OPUS", "0v1a"],
    ["video/webm;codecs=opus", "0v1a"],
    ["video/x-matroska;codecs=avc1,vp9,opus", "2v1a"],
  ]) assert.equal(trackLayout(mime), want, mime);
  // A SourceBuffer can change type only within a layout (AppendQueue.changeType).
  assert.equal(trackLayout("video/webm;codecs=vp8,opus"), trackLayout("video/webm;codecs=vp9,opus"));
  assert.notEqual(trackLayout("video/webm;codecs=vp8"), trackLayout("video/webm;codecs=vp8,opus"));
});

/** A MediaStream with video and audio tracks. */
const stream = (video, audio) => ({ getVideoTracks: () => Array(video).fill({}), getAudioTracks: () => Array(audio).fill({}) });

/** Runs fn with a MediaRecorder that supports the types supported says. */
function withRecorder(supported, fn) {
  const asked = [];
  globalThis.MediaRecorder = { isTypeSupported: (m) => (asked.push(m), supported(m)) };
  try {
    return fn(asked);
  } finally {
    delete globalThis.MediaRecorder;
  }
}

test("pickMimeType takes the best supported type that fits the tracks", () => {
  const all = () => true;
  withRecorder(all, () => {
    assert.equal(pickMimeType(stream(1, 1)), "video/webm;codecs=vp9,opus");
    assert.equal(pickMimeType(stream(1, 0)), "video/webm;codecs=vp9");
    assert.equal(pickMimeType(stream(0, 1)), "audio/webm;codecs=opus");
    // An audio type is not checked for an audio track: a stream without
    // tracks gets one (the Publisher then records nothing).
    assert.equal(pickMimeType(stream(0, 0)), "audio/webm;codecs=opus");
  });
  withRecorder((m) => !/vp9/.test(m), (asked) => {
    assert.equal(pickMimeType(stream(1, 1)), "video/webm;codecs=vp8,opus");
    assert.deepEqual(asked, ["video/webm;codecs=vp9,opus", "video/webm;codecs=vp8,opus"], "asks only about types that fit");
  });
  withRecorder((m) => m === "video/webm", (asked) => {
    // Without codecs, a type fits a stream with or without audio.
    assert.equal(pickMimeType(stream(1, 1)), "video/webm");
    assert.deepEqual(asked, ["video/webm;codecs=vp9,opus", "video/webm;codecs=vp8,opus", "video/webm"]);
    asked.length = 0;
    assert.equal(pickMimeType(stream(1, 0)), "video/webm");
    assert.deepEqual(asked, ["video/webm;codecs=vp9", "video/webm;codecs=vp8", "video/webm"]);
  });
  withRecorder(() => false, () => assert.equal(pickMimeType(stream(1, 1)), ""));
});

test("pickMimeType takes candidates, and needs MediaRecorder", () => {
  withRecorder(() => true, () => {
    assert.equal(pickMimeType(stream(1, 0), ["video/mp4", "video/webm;codecs=vp8"]), "video/mp4");
    assert.equal(pickMimeType(stream(1, 0), ["audio/webm", "video/webm;codecs=vp8,opus"]), "", "none fits");
    assert.equal(pickMimeType(stream(1, 1), []), "");
  });
  assert.equal(pickMimeType(stream(1, 1)), "", "no MediaRecorder");
});

test("PUBLISH_MIME_TYPES: best first, frozen", () => {
  assert.deepEqual(PUBLISH_MIME_TYPES, [
    "video/webm;codecs=vp9,opus", "video/webm;codecs=vp8,opus", "video/webm;codecs=vp9", "video/webm;codecs=vp8",
    "video/webm", "audio/webm;codecs=opus", "audio/webm",
  ]);
  assert.ok(Object.isFrozen(PUBLISH_MIME_TYPES));
});
