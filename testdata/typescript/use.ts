// Type-checked against relay.d.ts by TestRelayDTSTypeCheck (tsc --strict):
// every export of relay.js, used as a page would.
import {
  SUBPROTOCOL, REFUSAL_SUBPROTOCOL, PUBLISH_MIME_TYPES, RefusedError, webSocketURL, pickMimeType,
  mediaSourceClass, canPlay, publish, play, Publisher, Player,
  type PublishOptions, type PlayOptions, type PublisherStatus, type PlayerStatus, type ErrorDetail,
} from "./relay.js";

const proto: "segrelay.v1" = SUBPROTOCOL;
const refusal: string = REFUSAL_SUBPROTOCOL;
const types: readonly string[] = PUBLISH_MIME_TYPES;
const url: string = webSocketURL(new URL("http://example.com/live/a/publish"));
const ms = mediaSourceClass();
const ok: boolean = canPlay("video/webm;codecs=vp8");

async function run(stream: MediaStream, video: HTMLVideoElement) {
  const mime: string = pickMimeType(stream, types);
  const ctl = new AbortController();
  const popts: PublishOptions = { mimeType: mime, timeslice: 200, signal: ctl.signal };
  const pub: Publisher = publish("/live/a/publish", stream, popts);
  pub.addEventListener("error", (e) => {
    const d: ErrorDetail = e.detail;
    if (d.error instanceof RefusedError) console.log(d.error.status, d.error.reason, d.status, d.reason);
  });
  pub.addEventListener("status", (e) => {
    const s: PublisherStatus = e.detail.status;
    console.log(s, e.detail.reason, e.detail.delay, e.detail.code);
  });
  pub.addEventListener("subscribers", (e) => console.log(e.detail.subscribers + 1));
  pub.addEventListener("restart", (e) => console.log(e.detail.reason, e.detail.videoBitsPerSecond));
  const n: number | null = pub.subscribers;
  await pub.restart("why");
  await pub.stop();
  const o: PlayOptions = { targetLatency: 0.5, signal: ctl.signal };
  const player: Player = play("/live/a/subscribe", video, o);
  player.addEventListener("latency", (e) => console.log(e.detail.latency * e.detail.playbackRate));
  player.addEventListener("session", (e) => console.log(e.detail.mime, e.detail.stream));
  player.addEventListener("muted", (e) => console.log(e.detail.reason));
  player.addEventListener("status", (e) => { const s: PlayerStatus = e.detail.status; console.log(s); });
  const st: number = player.stats.reconnects + pub.stats.bytesSent;
  player.close("done");
  ctl.abort();
  console.log(proto, refusal, url, ms, ok, n, st, player.latency, player.streamName, player.mimeType, new Publisher(url, stream), new Player(url, video));
}
// @ts-expect-error: not a status
const bad: PlayerStatus = "dancing";
console.log(run, bad);
