// relay-connection.js: what Publisher and Player share (segrelay's browser
// client): protocol v1's subprotocols, refusals (RefusedError and which
// of them are retried), the backoff, and Connection, the WebSocket to the
// hub with its status, reopened with backoff until it ends. relay.js
// re-exports its public names; the Hub serves it beside relay.js
// ({mount}/relay-connection.js); node runs its unit tests
// (relay-connection_test.mjs). Not an API of its own: import relay.js.

"use strict";

/** The WebSocket subprotocol of protocol v1. */
export const SUBPROTOCOL = "segrelay.v1";

/**
 * Offered alongside SUBPROTOCOL: asks the hub to tell why it refuses a
 * connection. A browser's WebSocket hides a refused handshake's HTTP status
 * (the page sees close code 1006, as for a network failure), so the hub
 * accepts the connection and closes it at once with 4000 + the status (4401,
 * 4403, 4404, 4409, 4429, 4503, ...) and the one-line reason.
 */
export const REFUSAL_SUBPROTOCOL = "segrelay.refusal-close";

/**
 * The hub refused the connection: status is the HTTP status it stands for
 * (401 not authorized, 403 forbidden, 404 no such route, 409 the stream
 * already has a publisher, 429 over a limit, 503 shutting down or full),
 * reason the hub's one-line explanation.
 */
export class RefusedError extends Error {
  /** @param {string} url @param {number} status @param {string} reason */
  constructor(url, status, reason) {
    super("segrelay: " + url + " refused with " + status + ": " + (reason || "no reason given"));
    this.name = "RefusedError";
    /** @readonly */ this.url = url;
    /** @readonly */ this.status = status;
    /** @readonly */ this.reason = reason;
  }
}

/**
 * Statuses a refusal may clear by itself: retried with the usual backoff.
 * The others (400, 401, 403, 404, 409 ...) need a person to change
 * something: the client stops.
 */
export const TRANSIENT_REFUSALS = new Set([429, 500, 502, 503, 504]);

// ---------------------------------------------------------------------------
// Small helpers

/**
 * Resolves url against the page and turns http(s) into ws(s), so that
 * "/live/room1/publish" works as well as "wss://host/live/room1/publish".
 * @param {string|URL} url
 * @returns {string}
 */
export function webSocketURL(url) {
  const u = new URL(String(url), globalThis.location ? globalThis.location.href : undefined);
  if (u.protocol === "http:") u.protocol = "ws:";
  else if (u.protocol === "https:") u.protocol = "wss:";
  return u.href;
}

/** Exponential backoff with jitter. */
export class Backoff {
  /** @param {number} min ms @param {number} max ms */
  constructor(min, max) {
    this.min = Math.max(0, min);
    this.max = Math.max(this.min, max);
    this.n = 0;
  }
  /** @returns {number} the next delay in ms */
  next() {
    const d = Math.min(this.max, this.min * 2 ** this.n);
    this.n = Math.min(this.n + 1, 30);
    return Math.round(d * (0.8 + 0.4 * Math.random()));
  }
  reset() {
    this.n = 0;
  }
}

/**
 * The refusal a close code stands for: 4400-4599, the hub refused the
 * connection with the HTTP status code - 4000 (see REFUSAL_SUBPROTOCOL);
 * null for any other code.
 * @param {string} url @param {number} code @param {string} reason
 * @returns {RefusedError|null}
 */
export function closeRefusal(url, code, reason) {
  return code >= 4400 && code < 4600 ? new RefusedError(url, code - 4000, reason) : null;
}

/** @param {Error} error @returns {{status?: number, reason?: string}} what an "error" event adds for a refusal */
export function refusalOf(error) {
  return error instanceof RefusedError ? { status: error.status, reason: error.reason } : {};
}

/** @param {unknown} e @returns {Error} */
export function asError(e) {
  return e instanceof Error ? e : new Error(String(e && e.message ? e.message : e));
}

export const now = () => performance.now();

// ---------------------------------------------------------------------------
// Connection: the base Publisher and Player share

/**
 * The base of Publisher and Player: an EventTarget with a status (the
 * "status" event fires only when it changes) and a WebSocket to the hub,
 * reopened with backoff whenever it drops, until _end().
 *
 * A subclass sets this.stats (with a reconnects counter) and implements
 * _opened(ws) (the hub accepted the connection), _received(data) (a message
 * of the current connection), _dropped() (it closed; called before the
 * reconnection is scheduled) and _abort() (options.signal aborted). A
 * refusal the hub explains (REFUSAL_SUBPROTOCOL) ends it with _failed()
 * unless _retryRefusal(status) says it may clear by itself.
 */
export class Connection extends EventTarget {
  /**
   * @param {string|URL} url
   * @param {{reconnectMinDelay: number, reconnectMaxDelay: number}} options
   */
  constructor(url, options) {
    super();
    /** @readonly */ this.url = webSocketURL(url);
    this.status = "connecting";
    /** @type {WebSocket|null} */ this._ws = null;
    this._ended = false; // no more connections: stopped, closed, failed
    this._finished = false; // stop(), close() or _failed() ran: nothing more is reported
    this._timer = 0; // the pending reconnection
    this._openedAt = 0; // when the current connection opened (ms, performance.now)
    this._backoff = new Backoff(options.reconnectMinDelay, options.reconnectMaxDelay);
    /** @type {AbortSignal|null} */ this._signal = options.signal || null;
    this._onAbort = () => this._abort();
  }

  /**
   * Ends the publisher or player when options.signal aborts; one already
   * aborted ends it in a microtask, once the caller could add listeners.
   * @returns {boolean} whether the signal had aborted already
   */
  _watchSignal() {
    const signal = this._signal;
    if (!signal) return false;
    if (signal.aborted) {
      this._ended = true;
      queueMicrotask(this._onAbort);
      return true;
    }
    signal.addEventListener("abort", this._onAbort, { once: true });
    return false;
  }

  _unwatchSignal() {
    if (this._signal) this._signal.removeEventListener("abort", this._onAbort);
  }

  /** Why the signal aborted, as a status reason. */
  _abortReason() {
    const r = this._signal && this._signal.reason;
    return "aborted" + (r && r.message ? ": " + r.message : r && typeof r !== "object" ? ": " + r : "");
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /** Sets the status; the event fires only on a change, so a page can redraw on every one. */
  _setStatus(status, reason, extra) {
    if (this.status === status) return;
    this.status = status;
    this._emit("status", { status, reason, ...extra });
  }

  /** Reports an error; a fatal one also sets the status to "error". */
  _fail(error, fatal) {
    this._emit("error", { error, fatal, ...refusalOf(error) });
    if (fatal) this._setStatus("error", error.message);
  }

  /**
   * A failure after which nothing more happens: no more connections, an
   * "error" event (fatal, with the refusal's status and reason if any) and
   * the status "failed".
   * @param {Error} error
   */
  _failed(error) {
    if (this._finished) return;
    this._finished = true;
    this._end();
    this._unwatchSignal();
    const refusal = refusalOf(error);
    this._emit("error", { error, fatal: true, ...refusal });
    this._setStatus("failed", error.message, refusal.status ? { code: 4000 + refusal.status } : undefined);
  }

  /**
   * A failure found in the constructor: reported in a microtask, once the
   * caller has had the chance to add listeners.
   * @param {Error} error
   */
  _failedLater(error) {
    this._ended = true; // no connection meanwhile
    queueMicrotask(() => this._failed(error));
  }

  /** Stops reconnecting; the current connection, if any, is the caller's to close. */
  _end() {
    this._ended = true;
    clearTimeout(this._timer);
  }

  _connect() {
    if (this._ended) return;
    const ws = new WebSocket(this.url, [SUBPROTOCOL, REFUSAL_SUBPROTOCOL]);
    ws.binaryType = "arraybuffer";
    this._ws = ws;
    ws.onopen = () => {
      if (this._ws !== ws) return;
      if (ws.protocol === REFUSAL_SUBPROTOCOL) return; // the hub's refusal: its close follows
      if (ws.protocol !== SUBPROTOCOL) {
        // Not a segrelay hub (or a proxy dropped the header): retrying will
        // not help. (A page may close with 1000 or 3000-4999 only.)
        ws.close(1000, "want " + SUBPROTOCOL);
        this._failed(new Error("segrelay: " + this.url + " does not speak " + SUBPROTOCOL));
        return;
      }
      this._openedAt = now();
      this._opened(ws);
    };
    ws.onmessage = (ev) => {
      if (this._ws === ws) this._received(ev.data);
    };
    ws.onclose = (ev) => {
      if (this._ws !== ws) return;
      this._ws = null;
      this._dropped();
      if (this._ended) return;
      const refused = closeRefusal(this.url, ev.code, ev.reason);
      if (refused && !this._retryRefusal(refused.status)) {
        this._failed(refused);
        return;
      }
      if (refused) this._fail(refused, false);
      // A connection that lived a while was fine: start the backoff over.
      if (this._openedAt && now() - this._openedAt > 3000) this._backoff.reset();
      this._openedAt = 0;
      const delay = this._backoff.next();
      this.stats.reconnects++;
      this._setStatus("reconnecting", ev.reason || "connection closed (" + ev.code + ")", { code: ev.code, delay });
      this._timer = setTimeout(() => this._connect(), delay);
    };
  }

  /**
   * Whether a refusal with this HTTP status is worth retrying (the Publisher
   * adds its own 409s).
   * @param {number} status
   */
  _retryRefusal(status) {
    return TRANSIENT_REFUSALS.has(status);
  }
}
