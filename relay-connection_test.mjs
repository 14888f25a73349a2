// Unit tests of relay-connection.js in node (node --test
// relay-connection_test.mjs; the Go test TestRelayJSUnits runs them):
// Backoff's delays, which close codes are refusals and which refusals are
// retried, and Connection's reconnections, on a fake WebSocket with node's
// mock timers and a mocked performance.now: no real time passes.

import test, { mock } from "node:test";
import assert from "node:assert/strict";

const {
  Backoff, Connection, REFUSAL_SUBPROTOCOL, RefusedError, SUBPROTOCOL, TRANSIENT_REFUSALS, closeRefusal, refusalOf,
} = await import("./relay-connection.js");
const { Publisher } = await import("./relay-publisher.js");

// The clock: performance.now, which every module reads through now().
const clock = { t: 1000 };
mock.method(performance, "now", () => clock.t);

/** Math.random returns r while fn runs. */
function withRandom(r, fn) {
  const m = mock.method(Math, "random", () => r);
  try {
    return fn();
  } finally {
    m.mock.restore();
  }
}

test("Backoff doubles from min up to max", () => {
  const b = new Backoff(250, 5000);
  const got = withRandom(0.5, () => Array.from({ length: 8 }, () => b.next())); // 0.5: no jitter
  assert.deepEqual(got, [250, 500, 1000, 2000, 4000, 5000, 5000, 5000]);
});

test("Backoff's jitter stays within ±20%", () => {
  for (const [r, factor] of [[0, 0.8], [0.999999, 1.2]]) {
    const b = new Backoff(1000, 8000);
    const got = withRandom(r, () => Array.from({ length: 5 }, () => b.next()));
    assert.deepEqual(got, [1000, 2000, 4000, 8000, 8000].map((d) => Math.round(d * factor)), `random ${r}`);
  }
  const b = new Backoff(300, 300);
  for (let i = 0; i < 200; i++) {
    const d = b.next();
    assert.ok(d >= 240 && d <= 360, `delay ${d} outside 240-360`);
  }
});

test("Backoff.reset starts over at min", () => {
  const b = new Backoff(100, 10000);
  withRandom(0.5, () => {
    b.next(), b.next(), b.next();
    assert.equal(b.next(), 800);
    b.reset();
    assert.equal(b.next(), 100);
    assert.equal(b.next(), 200);
  });
});

test("Backoff clamps its bounds and never overflows", () => {
  withRandom(0.5, () => {
    const neg = new Backoff(-5, -1);
    assert.equal(neg.next(), 0);
    const inverted = new Backoff(400, 100); // max below min: min
    assert.deepEqual([inverted.next(), inverted.next()], [400, 400]);
    const long = new Backoff(1, 1e12);
    let d = 0;
    for (let i = 0; i < 100; i++) d = long.next();
    assert.equal(d, 2 ** 30, "the exponent stops at 30");
  });
});

test("TRANSIENT_REFUSALS: only what may clear by itself is retried", () => {
  assert.deepEqual([...TRANSIENT_REFUSALS].sort(), [429, 500, 502, 503, 504]);
  for (const s of [400, 401, 403, 404, 409, 413]) assert.equal(TRANSIENT_REFUSALS.has(s), false, String(s));
});

test("closeRefusal: 4400-4599 are refusals, other codes are not", () => {
  for (const code of [4400, 4401, 4403, 4404, 4409, 4429, 4503, 4599]) {
    const r = closeRefusal("ws://h/a", code, "why");
    assert.ok(r instanceof RefusedError, String(code));
    assert.equal(r.status, code - 4000);
    assert.equal(r.reason, "why");
    assert.equal(r.url, "ws://h/a");
  }
  for (const code of [1000, 1001, 1006, 1011, 3000, 4000, 4399, 4600, 4999]) assert.equal(closeRefusal("ws://h/a", code, ""), null, String(code));
});

test("RefusedError says who refused what", () => {
  const e = new RefusedError("ws://h/s/publish", 409, "the stream has a publisher");
  assert.ok(e instanceof Error);
  assert.equal(e.name, "RefusedError");
  assert.equal(e.message, "segrelay: ws://h/s/publish refused with 409: the stream has a publisher");
  assert.equal(new RefusedError("u", 401, "").message, "segrelay: u refused with 401: no reason given");
  assert.deepEqual(refusalOf(e), { status: 409, reason: "the stream has a publisher" });
  assert.deepEqual(refusalOf(new Error("x")), {});
});

// --- Connection, on a fake WebSocket

class FakeWebSocket {
  static made = [];
  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.protocol = "";
    this.closedWith = null;
    FakeWebSocket.made.push(this);
  }
  close(code, reason) {
    this.closedWith = [code, reason];
  }
  /** The hub accepted with protocol. */
  accept(protocol = SUBPROTOCOL) {
    this.protocol = protocol;
    this.onopen();
  }
  drop(code, reason = "") {
    this.onclose({ code, reason });
  }
}

class TestConnection extends Connection {
  constructor(url, options = {}) {
    super(url, { reconnectMinDelay: 250, reconnectMaxDelay: 5000, ...options });
    this.stats = { reconnects: 0 };
    this.calls = [];
    this.events = [];
    for (const type of ["status", "error"]) this.addEventListener(type, (e) => this.events.push([type, e.detail]));
  }
  _opened(ws) { this.calls.push(["opened", ws]); }
  _received(data) { this.calls.push(["received", data]); }
  _dropped() { this.calls.push(["dropped"]); }
  _abort() { this.calls.push(["abort"]); this._end(); }
}

/** Runs fn with a fake WebSocket and mocked timers. */
async function withFakes(fn) {
  FakeWebSocket.made = [];
  globalThis.WebSocket = FakeWebSocket;
  mock.timers.enable({ apis: ["setTimeout"] });
  const random = mock.method(Math, "random", () => 0.5);
  try {
    await fn();
  } finally {
    random.mock.restore();
    mock.timers.reset();
    delete globalThis.WebSocket;
  }
}

const last = () => FakeWebSocket.made[FakeWebSocket.made.length - 1];

test("Connection opens with both subprotocols and hands over messages of its socket only", () => withFakes(() => {
  const c = new TestConnection("http://h/live/a/subscribe");
  c._connect();
  const ws = last();
  assert.equal(ws.url, "ws://h/live/a/subscribe");
  assert.deepEqual(ws.protocols, [SUBPROTOCOL, REFUSAL_SUBPROTOCOL]);
  assert.equal(ws.binaryType, "arraybuffer");
  ws.accept();
  assert.deepEqual(c.calls.map((x) => x[0]), ["opened"]);
  assert.equal(c._openedAt, clock.t);
  ws.onmessage({ data: "hello" });
  assert.deepEqual(c.calls[1], ["received", "hello"]);
  ws.drop(1006);
  assert.equal(FakeWebSocket.made.length, 1, "the reconnection waits for its delay");
  mock.timers.tick(250);
  assert.equal(FakeWebSocket.made.length, 2);
  ws.onmessage({ data: "stale" }); // the old socket's
  ws.drop(1006);
  assert.deepEqual(c.calls.map((x) => x[0]), ["opened", "received", "dropped"]);
  c._end();
}));

test("Connection reconnects with growing delays, and starts over after a connection that lived", () => withFakes(() => {
  const c = new TestConnection("ws://h/a", { reconnectMinDelay: 100, reconnectMaxDelay: 1000 });
  c._connect();
  const delays = [];
  for (let i = 0; i < 5; i++) {
    last().drop(1006, "");
    const [type, d] = c.events.at(-1);
    assert.equal(type, "status");
    assert.equal(d.status, "reconnecting");
    assert.equal(d.code, 1006);
    assert.equal(d.reason, "connection closed (1006)");
    delays.push(d.delay);
    c._setStatus("connecting"); // as a subclass does once connected again
    mock.timers.tick(d.delay);
  }
  assert.deepEqual(delays, [100, 200, 400, 800, 1000]);
  assert.equal(c.stats.reconnects, 5);

  // A connection that lived 3 s is not long enough; one that lived longer is.
  last().accept();
  clock.t += 3000;
  last().drop(1001, "going away");
  assert.equal(c.events.at(-1)[1].delay, 1000);
  assert.equal(c.events.at(-1)[1].reason, "going away");
  c._setStatus("connecting");
  mock.timers.tick(1000);
  last().accept();
  clock.t += 3001;
  last().drop(1001, "going away");
  assert.equal(c.events.at(-1)[1].delay, 100, "the backoff starts over");
  c._end();
}));

test("Connection retries transient refusals and reports them, not fatal", () => withFakes(() => {
  for (const status of [429, 500, 502, 503, 504]) {
    const c = new TestConnection("ws://h/a");
    c._connect();
    last().accept(REFUSAL_SUBPROTOCOL);
    assert.equal(c.calls.length, 0, "a refusal's open is not an open");
    last().drop(4000 + status, "busy");
    const error = c.events.find((e) => e[0] === "error");
    assert.ok(error, `${status}: an error event`);
    assert.equal(error[1].fatal, false);
    assert.equal(error[1].status, status);
    assert.equal(error[1].reason, "busy");
    assert.ok(error[1].error instanceof RefusedError);
    assert.equal(c.status, "reconnecting");
    assert.equal(c.events.at(-1)[1].code, 4000 + status);
    mock.timers.tick(250);
    assert.equal(last().url, "ws://h/a", "connected again");
    c._end();
  }
}));

test("Connection stops on refusals a person must fix", () => withFakes(() => {
  for (const status of [400, 401, 403, 404, 409, 413]) {
    FakeWebSocket.made = [];
    const c = new TestConnection("ws://h/a");
    c._connect();
    last().drop(4000 + status, "no");
    assert.equal(c.status, "failed", String(status));
    assert.deepEqual(c.events.map((e) => e[0]), ["error", "status"]);
    assert.equal(c.events[0][1].fatal, true);
    assert.equal(c.events[0][1].status, status);
    assert.equal(c.events[1][1].code, 4000 + status);
    assert.equal(c.stats.reconnects, 0);
    mock.timers.tick(60000);
    assert.equal(FakeWebSocket.made.length, 1, `${status}: no second attempt`);
  }
}));

test("Connection fails on a server that does not speak segrelay.v1", () => withFakes(() => {
  const c = new TestConnection("ws://h/a");
  c._connect();
  last().accept("");
  assert.deepEqual(last().closedWith, [1000, "want segrelay.v1"]);
  assert.equal(c.status, "failed");
  assert.equal(c.calls.length, 0);
  mock.timers.tick(60000);
  assert.equal(FakeWebSocket.made.length, 1);
}));

test("Connection does not reconnect once ended", () => withFakes(() => {
  const c = new TestConnection("ws://h/a");
  c._connect();
  last().drop(1006);
  c._end();
  mock.timers.tick(60000);
  assert.equal(FakeWebSocket.made.length, 1);
  c._connect();
  assert.equal(FakeWebSocket.made.length, 1, "_connect after _end opens nothing");
}));

test("Connection ends on its signal, at once or later", async () => {
  await withFakes(async () => {
    const aborted = new TestConnection("ws://h/a", { signal: AbortSignal.abort("bye") });
    assert.equal(aborted._watchSignal(), true);
    assert.deepEqual(aborted.calls, [], "reported in a microtask");
    await Promise.resolve();
    assert.deepEqual(aborted.calls.map((x) => x[0]), ["abort"]);
    assert.equal(aborted._abortReason(), "aborted: bye");

    const ctl = new AbortController();
    const c = new TestConnection("ws://h/a", { signal: ctl.signal });
    assert.equal(c._watchSignal(), false);
    c._connect();
    ctl.abort(new Error("page left"));
    assert.deepEqual(c.calls.map((x) => x[0]), ["abort"]);
    assert.equal(c._abortReason(), "aborted: page left");
    last().drop(1006);
    mock.timers.tick(60000);
    assert.equal(FakeWebSocket.made.length, 1, "no reconnection after the abort");
  });
});

test("a Publisher retries a 409 for a minute after its own connection dropped", () => {
  const retry = (lastLive, status) => Publisher.prototype._retryRefusal.call({ _lastLive: lastLive }, status);
  clock.t = 100000;
  assert.equal(retry(0, 409), false, "never live: another publisher has the stream");
  assert.equal(retry(clock.t - 59999, 409), true);
  assert.equal(retry(clock.t - 60000, 409), false);
  assert.equal(retry(clock.t - 1000, 403), false);
  assert.equal(retry(0, 503), true);
});
