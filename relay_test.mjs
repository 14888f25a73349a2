// Unit tests of relay.js, the entry point, in node (node --test
// relay_test.mjs; the Go test TestRelayJSUnits runs every relay*_test.mjs):
// it exports what it always did, so old imports keep working, and each name
// is the module's own.

import test from "node:test";
import assert from "node:assert/strict";

const relay = await import("./relay.js");

test("relay.js exports the names it always did", () => {
  // The exports of relay.js before it was split into modules (5ca32a8);
  // relay.d.ts declares the same (TestRelayDTSMatchesExports).
  assert.deepEqual(Object.keys(relay).sort(), [
    "PUBLISH_MIME_TYPES", "Player", "Publisher", "REFUSAL_SUBPROTOCOL", "RefusedError", "SUBPROTOCOL",
    "canPlay", "mediaSourceClass", "pickMimeType", "play", "publish", "webSocketURL",
  ]);
  assert.equal(relay.SUBPROTOCOL, "segrelay.v1");
  assert.equal(relay.REFUSAL_SUBPROTOCOL, "segrelay.refusal-close");
});

test("relay.js re-exports the modules' own objects", async () => {
  const modules = await Promise.all(["./relay-connection.js", "./relay-mime.js", "./relay-publisher.js", "./relay-player.js"].map((m) => import(m)));
  for (const [name, value] of Object.entries(relay)) {
    const homes = modules.filter((m) => name in m);
    assert.equal(homes.length, 1, `${name}: one home`);
    assert.equal(homes[0][name], value, `${name} is its module's`);
  }
});

test("webSocketURL turns http(s) into ws(s)", () => {
  assert.equal(relay.webSocketURL("http://h:8080/live/a/publish"), "ws://h:8080/live/a/publish");
  assert.equal(relay.webSocketURL("https://h/live/a/subscribe"), "wss://h/live/a/subscribe");
  assert.equal(relay.webSocketURL("wss://h/x"), "wss://h/x");
  assert.equal(relay.webSocketURL(new URL("http://h/y")), "ws://h/y");
});

test("mediaSourceClass and canPlay without MSE", () => {
  // node has neither MediaSource nor ManagedMediaSource.
  assert.equal(relay.mediaSourceClass(), null);
  assert.equal(relay.canPlay("video/webm;codecs=vp8"), false);
  globalThis.ManagedMediaSource = class { static isTypeSupported(m) { return /vp8/.test(m); } };
  try {
    assert.equal(relay.mediaSourceClass(), globalThis.ManagedMediaSource);
    assert.equal(relay.canPlay("video/webm;codecs=vp8"), true);
    assert.equal(relay.canPlay("video/webm;codecs=vp9"), false);
    assert.equal(relay.canPlay(""), false);
  } finally {
    delete globalThis.ManagedMediaSource;
  }
});
