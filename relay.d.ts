// relay.d.ts: TypeScript types for relay.js, the browser client of segrelay
// (https://github.com/segrelay/relay). The hub serves both, beside each
// other: {mount}/relay.js and {mount}/relay.d.ts. See relay.js and the
// README for what each does.

/** The WebSocket subprotocol of protocol v1: "segrelay.v1". */
export declare const SUBPROTOCOL: "segrelay.v1";

/**
 * Offered alongside SUBPROTOCOL: the hub then refuses a connection by
 * accepting it and closing it with 4000 + the HTTP status and a reason.
 */
export declare const REFUSAL_SUBPROTOCOL: "segrelay.refusal-close";

/** MIME types publish() tries, best first. */
export declare const PUBLISH_MIME_TYPES: readonly string[];

/** The hub refused the connection (close code 4000 + status). */
export declare class RefusedError extends Error {
  constructor(url: string, status: number, reason: string);
  readonly name: "RefusedError";
  readonly url: string;
  /** The HTTP status the refusal stands for: 401, 403, 404, 409, 429, 503, ... */
  readonly status: number;
  /** The hub's one-line reason. */
  readonly reason: string;
}

/** Resolves url against the page and turns http(s) into ws(s). */
export declare function webSocketURL(url: string | URL): string;

/** The first of candidates that MediaRecorder supports and that fits the stream's tracks; "" when none does. */
export declare function pickMimeType(stream: MediaStream, candidates?: readonly string[]): string;

/** MediaSource, or ManagedMediaSource where MediaSource is absent; null without either. */
export declare function mediaSourceClass(): typeof MediaSource | null;

/** Whether play() can play a stream of this MIME type in this browser. */
export declare function canPlay(mime: string): boolean;

/** The detail of an "error" event. */
export interface ErrorDetail {
  error: Error;
  /** Fatal errors come with the status "failed" (or, for a Player, "error": see PlayerStatus). */
  fatal: boolean;
  /** With a refusal by the hub (error is then a RefusedError): the HTTP status it stands for. */
  status?: number;
  /** With a refusal by the hub: its reason. */
  reason?: string;
}

/** The detail of a "status" event. */
export interface StatusDetail<S extends string> {
  status: S;
  reason?: string;
  /** ms until the first reconnection ("reconnecting"). */
  delay?: number;
  /** The close code that ended the connection ("reconnecting", and "failed" after a refusal). */
  code?: number;
}

export interface PublishOptions {
  /** MediaRecorder type to use; default: the first of PUBLISH_MIME_TYPES (or mimeTypes) that is supported and fits the tracks. */
  mimeType?: string;
  /** Candidate types, best first. */
  mimeTypes?: string[];
  /** ms of media per MediaRecorder blob (default 100). */
  timeslice?: number;
  /** ms between video keyframes (default 1000; 0: the browser's default). */
  keyFrameInterval?: number;
  /**
   * What records (default "auto"): MediaRecorder, or WebCodecs (VP8 muxed to WebM by relay.js,
   * Opus from MediaRecorder). "auto" takes WebCodecs in Firefox, whose MediaRecorder ignores
   * keyFrameInterval (a keyframe every 6-7 s), when the stream has video and is VP8.
   */
  encoder?: "auto" | "mediarecorder" | "webcodecs";
  videoBitsPerSecond?: number;
  audioBitsPerSecond?: number;
  /** ms the oldest unsent byte may wait before the recorder pauses (default 2000). */
  maxSendLag?: number;
  /** After congestion, record at a bitrate the connection can carry (default true). */
  adaptBitrate?: boolean;
  /** ms before the first reconnection (default 250). */
  reconnectMinDelay?: number;
  /** ms, the longest backoff (default 5000). */
  reconnectMaxDelay?: number;
  /** Ends publishing when it aborts, as stop() does. */
  signal?: AbortSignal;
}

export type PublisherStatus = "connecting" | "live" | "congested" | "reconnecting" | "stopped" | "failed";

export interface PublisherStats {
  bytesSent: number;
  blobs: number;
  restarts: number;
  reconnects: number;
  sendLag: number;
}

export interface PublisherEventMap {
  status: CustomEvent<StatusDetail<PublisherStatus>>;
  subscribers: CustomEvent<{ subscribers: number }>;
  restart: CustomEvent<{ reason: string; videoBitsPerSecond?: number }>;
  error: CustomEvent<ErrorDetail>;
}

/** Records a MediaStream and sends it to a hub; make one with publish(). */
export declare class Publisher extends EventTarget {
  constructor(url: string | URL, stream: MediaStream, options?: PublishOptions);
  /** The publish route as a ws(s) URL. */
  readonly url: string;
  readonly stream: MediaStream;
  options: PublishOptions;
  status: PublisherStatus;
  /** Viewers watching, as last reported by the hub; null before its first report. */
  subscribers: number | null;
  /** The MediaRecorder type in use. */
  mimeType: string;
  /** What records: "mediarecorder" or "webcodecs" (see PublishOptions.encoder); "" before the first recorder. */
  encoder: "" | "mediarecorder" | "webcodecs";
  stats: PublisherStats;
  /** Stops and restarts the recorder; viewers get a new init and keep playing. */
  restart(reason?: string): Promise<void>;
  /** Sends the last bytes and "end", then closes; resolved when closed. */
  stop(reason?: string): Promise<void>;
  addEventListener<K extends keyof PublisherEventMap>(type: K, listener: (this: Publisher, ev: PublisherEventMap[K]) => any, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof PublisherEventMap>(type: K, listener: (this: Publisher, ev: PublisherEventMap[K]) => any, options?: boolean | EventListenerOptions): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | EventListenerOptions): void;
}

/** Publishes a MediaStream to a hub's publish route, e.g. "/live/room1/publish". */
export declare function publish(url: string | URL, stream: MediaStream, options?: PublishOptions): Publisher;

export interface PlayOptions {
  /** Seconds behind the newest media to aim for (default 0: as low as is safe). */
  targetLatency?: number;
  /** Seconds added to the largest arrival gap (default 0.15). */
  safetyMargin?: number;
  /** Seconds behind the target past which the player seeks (default 1). */
  jumpThreshold?: number;
  /** The fastest catch-up rate (default 1.25). */
  maxPlaybackRate?: number;
  /** Seconds of played media kept (default 10). */
  backBuffer?: number;
  /** ms of silence from a live stream before reconnecting (default 10000). */
  idleTimeout?: number;
  /** Call video.play(), muted if the browser refuses sound (default true). */
  autoplay?: boolean;
  /** ms before the first reconnection (default 250). */
  reconnectMinDelay?: number;
  /** ms, the longest backoff (default 5000). */
  reconnectMaxDelay?: number;
  /** Ends playing when it aborts, as close() does. */
  signal?: AbortSignal;
}

export type PlayerStatus = "connecting" | "waiting" | "buffering" | "live" | "stalled" | "reconnecting" | "error" | "closed" | "failed";

export interface PlayerStats {
  segments: number;
  bytes: number;
  sessions: number;
  inits: number;
  discontinuities: number;
  skippedSegments: number;
  droppedSegments: number;
  jumps: number;
  gapSkips: number;
  nudges: number;
  reconnects: number;
  resets: number;
  quotaEvictions: number;
}

export interface PlayerEventMap {
  status: CustomEvent<StatusDetail<PlayerStatus>>;
  latency: CustomEvent<{ latency: number; target: number; lag: number; playbackRate: number }>;
  session: CustomEvent<{ mime: string; stream: string }>;
  muted: CustomEvent<{ reason: string }>;
  error: CustomEvent<ErrorDetail>;
}

/** Plays a stream in a video element with Media Source Extensions; make one with play(). */
export declare class Player extends EventTarget {
  constructor(url: string | URL, video: HTMLVideoElement, options?: PlayOptions);
  /** The subscribe route as a ws(s) URL. */
  readonly url: string;
  readonly video: HTMLVideoElement;
  options: PlayOptions;
  status: PlayerStatus;
  /** The current session's MIME type. */
  mimeType: string;
  /** The stream's name, from the hub. */
  streamName: string;
  /** Seconds behind the newest media received, smoothed; NaN before playback. */
  latency: number;
  stats: PlayerStats;
  /** Stops playing: closes the connection and detaches the video element. */
  close(reason?: string): void;
  addEventListener<K extends keyof PlayerEventMap>(type: K, listener: (this: Player, ev: PlayerEventMap[K]) => any, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof PlayerEventMap>(type: K, listener: (this: Player, ev: PlayerEventMap[K]) => any, options?: boolean | EventListenerOptions): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | EventListenerOptions): void;
}

/** Plays a hub's subscribe route, e.g. "/live/room1/subscribe", in a video element. */
export declare function play(url: string | URL, video: HTMLVideoElement, options?: PlayOptions): Player;
