// Server-Sent Events over fetch(): EventSource cannot send an Authorization header, so the
// page reads the stream body itself, parses it (SseParser) and reconnects with backoff
// (LiveStream).

import { errorOf } from "./api.js";

/**
 * Incremental parser of the `text/event-stream` format (WHATWG HTML, "Parsing an event
 * stream"): feed it text chunks split anywhere; it returns the events completed so far.
 * Lines end with CRLF, LF or CR; `:` lines are comments; several `data:` lines are joined
 * with "\n"; an event without data is not dispatched; `retry:` sets `retryMs`.
 */
export class SseParser {
  constructor() {
    this.buffer = "";
    this.type = "";
    this.data = [];
    this.retryMs = null;
    this.lastEventId = "";
  }

  /** @returns {{type: string, data: string}[]} */
  feed(chunk) {
    let text = this.buffer + chunk;
    // A CR at the very end may be the first half of a CRLF split across chunks.
    const keepCr = text.endsWith("\r");
    if (keepCr) text = text.slice(0, -1);
    const lines = text.split(/\r\n|\r|\n/);
    this.buffer = lines.pop() + (keepCr ? "\r" : "");
    const events = [];
    for (const line of lines) {
      const event = this.line(line);
      if (event) events.push(event);
    }
    return events;
  }

  line(line) {
    if (line === "") {
      if (this.data.length === 0) {
        this.type = "";
        return null;
      }
      const event = { type: this.type || "message", data: this.data.join("\n") };
      this.type = "";
      this.data = [];
      return event;
    }
    if (line.startsWith(":")) return null;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.type = value;
    else if (field === "data") this.data.push(value);
    else if (field === "id" && !value.includes("\0")) this.lastEventId = value;
    else if (field === "retry" && /^\d+$/.test(value)) this.retryMs = Number(value);
    return null;
  }
}

/** Delay before reconnect attempt `attempt` (0, 1, ...): exponential, capped, jittered. */
export function backoffMs(attempt, baseMs, maxMs, random = Math.random) {
  const ceiling = Math.min(maxMs, baseMs * 2 ** attempt);
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/**
 * One live subscription that stays open: connects, parses, and on any failure reconnects
 * after a growing delay (a server `Retry-After` or `retry:` is a lower bound). A 401 stops
 * it (a key is needed: the page asks for one and starts a new stream). A stream silent for
 * longer than `idleTimeoutMs` (the server sends a heartbeat every 15 s) counts as dead.
 *
 * Callbacks: onEvent(type, data) per event; onState(state, detail) with state "connecting",
 * "connected", "reconnecting" ({delayMs, error}) or "stopped" ({error} when it gave up).
 */
export class LiveStream {
  constructor({
    url,
    headers,
    onEvent,
    onState = () => {},
    baseDelayMs = 1000,
    maxDelayMs = 30000,
    idleTimeoutMs = 45000,
  }) {
    this.url = url;
    this.headers = headers;
    this.onEvent = onEvent;
    this.onState = onState;
    this.baseDelayMs = baseDelayMs;
    this.maxDelayMs = maxDelayMs;
    this.idleTimeoutMs = idleTimeoutMs;
    this.stopped = true;
    this.controller = null;
    this.wakeUp = null;
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.run();
  }

  stop() {
    this.stopped = true;
    this.controller?.abort();
    this.wakeUp?.();
  }

  async run() {
    let attempt = 0;
    while (!this.stopped) {
      this.onState("connecting", {});
      let minDelayMs = 0;
      let error = null;
      try {
        const outcome = await this.connect(() => {
          attempt = 0; // data flows again: the next failure starts the backoff afresh
        });
        minDelayMs = outcome.retryMs ?? 0;
      } catch (err) {
        if (this.stopped) break;
        if (err.status === 401) {
          this.stopped = true;
          this.onState("stopped", { error: err });
          return;
        }
        error = err;
        minDelayMs = (err.retryAfterS ?? 0) * 1000;
      }
      if (this.stopped) break;
      const delayMs = Math.max(minDelayMs, backoffMs(attempt, this.baseDelayMs, this.maxDelayMs));
      attempt += 1;
      this.onState("reconnecting", { delayMs, error });
      await this.sleep(delayMs);
    }
    this.onState("stopped", {});
  }

  sleep(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wakeUp = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** One connection until the server ends it; throws on an error status or network error. */
  async connect(onData) {
    const controller = new AbortController();
    this.controller = controller;
    const response = await fetch(this.url(), {
      headers: { Accept: "text/event-stream", ...this.headers() },
      cache: "no-store",
      signal: controller.signal,
    });
    if (!response.ok) throw await errorOf(response);
    this.onState("connected", {});
    const parser = new SseParser();
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let idle = null;
    const armIdle = () => {
      clearTimeout(idle);
      idle = setTimeout(() => {
        controller.abort(new Error(`no data for ${Math.round(this.idleTimeoutMs / 1000)} s`));
      }, this.idleTimeoutMs);
    };
    armIdle();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        armIdle();
        onData();
        for (const event of parser.feed(value)) this.onEvent(event.type, event.data);
      }
    } catch (err) {
      if (this.stopped) return { retryMs: parser.retryMs };
      throw err;
    } finally {
      clearTimeout(idle);
      reader.releaseLock();
    }
    return { retryMs: parser.retryMs };
  }
}
