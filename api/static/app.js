// StackWatch built-in page: per stack live charts of the normalised concentrations with the
// limits and the running daily average, the current alerts (with acknowledge) and the health
// of every sensor, fed by the REST API and the live event stream (GET /live).
//
// Plain ES2020 modules, no build step, no third-party code. Demo mode is open; otherwise the
// first 401 shows a form asking for an API key, kept in sessionStorage and sent as
// `Authorization: Bearer` on every request, the live stream included.
//
// Test hooks (stable, documented): #live-status[data-state] is "connecting", "connected",
// "reconnecting" or "stopped"; #health-badge[data-status] is "ok", "degraded" or
// "unreachable"; charts, alert rows and sensor rows: see stacks.js, alerts.js, sensors.js.

import { AlertsView } from "./alerts.js";
import {
  apiUrl,
  authHeaders,
  AuthRequiredError,
  getJson,
  postJson,
  storedKey,
  storeKey,
} from "./api.js";
import { el, timeFormats } from "./format.js";
import { SensorTable } from "./sensors.js";
import { LiveStream } from "./sse.js";
import { StackView } from "./stacks.js";

const LIVE_TYPES = "reading,average,score,detection,pems,alert";
const HEALTH_EVERY_MS = 10_000;
const ALERTS_EVERY_MS = 60_000;
const RETRY_LOAD_MS = 5_000;

const $ = (selector) => document.querySelector(selector);

const page = {
  plants: [],
  plant: null,
  stackFilter: "",
  stacks: new Map(),
  fmt: timeFormats(undefined),
  stream: null,
  backfilled: false,
  generation: 0, // bumped on every plant change: late answers of the previous one are ignored
  dropped: 0,
  timers: [],
};

const sensors = new SensorTable($("#sensors-body"));
const alerts = new AlertsView(
  {
    tbody: $("#alerts-body"),
    empty: $("#alerts-empty"),
    count: $("#alert-count"),
    dialog: $("#ack-dialog"),
  },
  {
    acknowledge: (fingerprint, body) =>
      postJson(`/alerts/${encodeURIComponent(fingerprint)}/acknowledge`, body),
    hasKey: () => storedKey() !== null,
    onError: (err) => failed(err, "the alert"),
  },
);

// ------------------------------------------------------------------------------ errors, auth

const problems = new Map(); // what failed (plants, latest, alerts, backfill) → message

function showProblems() {
  const banner = $("#error");
  banner.textContent = [...problems.values()].join(" ");
  banner.hidden = problems.size === 0;
}

/** `what` works again: its earlier failure is no longer shown. */
function recovered(what) {
  if (problems.delete(what)) showProblems();
}

/** A request for `what` failed: a 401 asks for a key, anything else is shown until it works. */
function failed(err, what = "request") {
  if (err instanceof AuthRequiredError || err.status === 401) {
    const refused = storedKey() !== null;
    storeKey(null); // a refused key is of no use on the next visit either
    askForKey(refused ? "The API key was refused. Enter a valid key." : "");
    return;
  }
  if (err.name === "AbortError") return;
  const message = err instanceof TypeError ? "the service cannot be reached" : err.message;
  problems.set(what, `Could not load ${what}: ${message}.`);
  showProblems();
}

function askForKey(message) {
  stopLive();
  $("#dashboard").hidden = true;
  $("#auth").hidden = false;
  const error = $("#auth-error");
  error.textContent = message;
  error.hidden = !message;
  $("#forget-key").hidden = true;
  $("#api-key").focus();
}

$("#auth-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const key = $("#api-key").value.trim();
  if (!key) return;
  storeKey(key);
  $("#api-key").value = "";
  load();
});

$("#forget-key").addEventListener("click", () => {
  storeKey(null);
  askForKey("");
});

// ------------------------------------------------------------------------------ plants

async function load() {
  try {
    page.plants = await getJson("/plants");
    recovered("the plants");
  } catch (err) {
    failed(err, "the plants");
    if (!(err instanceof AuthRequiredError)) setTimeout(load, RETRY_LOAD_MS);
    return;
  }
  $("#auth").hidden = true;
  $("#dashboard").hidden = false;
  $("#forget-key").hidden = storedKey() === null;
  const wanted = new URLSearchParams(location.hash.slice(1));
  const select = $("#plant-select");
  select.replaceChildren(
    ...page.plants.map((p) => el("option", { value: p.id }, p.name ? `${p.name} (${p.id})` : p.id)),
  );
  const plant = page.plants.find((p) => p.id === wanted.get("plant")) ?? page.plants[0];
  if (!plant) {
    problems.set("the plants", "No plant is configured.");
    showProblems();
    return;
  }
  select.value = plant.id;
  selectPlant(plant.id, wanted.get("stack") ?? "");
}

function selectPlant(plantId, stackFilter = "") {
  stopLive();
  page.generation += 1;
  const plant = page.plants.find((p) => p.id === plantId);
  page.plant = plant;
  page.fmt = timeFormats(plant.timezone);
  page.backfilled = false;
  page.stacks = new Map(plant.stacks.map((s) => [s.id, new StackView(plant, s, page.fmt)]));
  $("#stacks").replaceChildren(...[...page.stacks.values()].map((v) => v.element));
  $("#timezone").textContent = page.fmt.timeZone;
  const stackSelect = $("#stack-select");
  stackSelect.replaceChildren(
    el("option", { value: "" }, "All stacks"),
    ...plant.stacks.map((s) =>
      el("option", { value: s.id }, s.name ? `${s.name} (${s.id})` : s.id),
    ),
  );
  sensors.setPlant(plant, page.fmt);
  alerts.setPlant(plant.id, page.fmt);
  selectStack(plant.stacks.some((s) => s.id === stackFilter) ? stackFilter : "");
  startLive();
  refreshLatest();
  refreshAlerts();
}

function selectStack(stackId) {
  page.stackFilter = stackId;
  $("#stack-select").value = stackId;
  for (const view of page.stacks.values()) view.hidden = Boolean(stackId) && view.id !== stackId;
  alerts.setStackFilter(stackId);
  sensors.render(Date.now(), stackId);
  const hash = new URLSearchParams({ plant: page.plant.id });
  if (stackId) hash.set("stack", stackId);
  history.replaceState(null, "", `#${hash}`);
  drawAll(true);
}

$("#plant-select").addEventListener("change", (e) => selectPlant(e.target.value));
$("#stack-select").addEventListener("change", (e) => selectStack(e.target.value));

// ------------------------------------------------------------------------------ REST refreshes

/** Answers for an older plant selection are dropped. */
function current(generation) {
  return generation === page.generation;
}

async function refreshLatest() {
  const generation = page.generation;
  try {
    const latest = await getJson("/readings/latest", { plant: page.plant.id });
    if (!current(generation)) return;
    for (const r of latest) sensors.onReading(r);
    sensors.render(Date.now(), page.stackFilter);
    recovered("the latest readings");
  } catch (err) {
    failed(err, "the latest readings");
  }
}

async function refreshAlerts() {
  const generation = page.generation;
  try {
    const list = await getJson("/alerts", { active_only: true });
    if (!current(generation)) return;
    alerts.replaceAll(list);
    recovered("the alerts");
  } catch (err) {
    failed(err, "the alerts");
  }
}

async function backfill(endMs) {
  const generation = page.generation;
  for (const view of page.stacks.values()) {
    try {
      await view.backfill((path, params) => getJson(path, params), endMs);
    } catch (err) {
      if (current(generation)) failed(err, "the last 15 minutes");
      return;
    }
  }
  recovered("the last 15 minutes");
}

async function refreshHealth() {
  const badge = $("#health-badge");
  const list = $("#health-components");
  try {
    const health = await getJson("/health/ready", {}, { okStatuses: [503] });
    badge.dataset.status = health.status;
    badge.textContent = health.status === "ok" ? "Service ok" : "Service degraded";
    list.replaceChildren(
      ...Object.entries(health.components).map(([name, c]) =>
        el(
          "li",
          { class: c.ok ? "ok" : "bad" },
          `${name}: ${c.ok ? "ok" : "not ok"}`,
          c.detail ? ` — ${c.detail}` : "",
        ),
      ),
    );
  } catch (err) {
    badge.dataset.status = "unreachable";
    badge.textContent = "Service unreachable";
    list.replaceChildren(el("li", { class: "bad" }, err.message));
  }
}

// ------------------------------------------------------------------------------ live stream

function setLiveState(state, text) {
  const status = $("#live-status");
  status.dataset.state = state;
  status.textContent = text;
}

function startLive() {
  const plantId = page.plant.id;
  const generation = page.generation;
  page.stream = new LiveStream({
    url: () => apiUrl("/live", { plant: plantId, types: LIVE_TYPES }),
    headers: authHeaders,
    onEvent: (type, data) => {
      if (current(generation)) onLiveEvent(type, data);
    },
    onState: (state, detail) => {
      if (!current(generation)) return;
      if (state === "connecting") setLiveState("connecting", "Live: connecting…");
      else if (state === "connected") {
        setLiveState("connected", "Live: connected");
        // Live only (no replay): fill what was missed from the REST API.
        if (!page.backfilled) {
          page.backfilled = true;
          backfill(Date.now());
        }
        refreshLatest();
        refreshAlerts();
      } else if (state === "reconnecting") {
        const why = detail.error ? ` (${detail.error.message})` : "";
        const inS = Math.ceil(detail.delayMs / 1000);
        setLiveState("reconnecting", `Live: reconnecting in ${inS} s${why}`);
      } else if (state === "stopped") {
        setLiveState("stopped", "Live: stopped");
        if (detail.error) failed(detail.error, "the live stream");
      }
    },
  });
  page.stream.start();
}

function stopLive() {
  page.stream?.stop();
  page.stream = null;
}

function onLiveEvent(type, text) {
  let data;
  try {
    data = JSON.parse(text);
  } catch {
    return; // not ours to fix: the next event will do
  }
  const view = data.stack ? page.stacks.get(data.stack) : undefined;
  switch (type) {
    case "reading":
      view?.onReading(data);
      sensors.onReading(data);
      break;
    case "average":
      view?.onAverage(data, Date.now());
      break;
    case "score":
      sensors.onScore(data);
      break;
    case "detection":
      sensors.onDetection(data);
      break;
    case "pems":
      sensors.onPems(data);
      break;
    case "alert":
      alerts.update(data.alert);
      break;
    case "dropped":
      page.dropped = data.dropped_total;
      $("#live-status").title = `${page.dropped} live events dropped: this connection is too slow`;
      break;
    default:
      break;
  }
}

// ------------------------------------------------------------------------------ drawing, timers

let frameRequested = false;

function drawAll(force) {
  if (frameRequested && !force) return;
  frameRequested = true;
  requestAnimationFrame(() => {
    frameRequested = false;
    const now = Date.now();
    for (const view of page.stacks.values()) if (!view.element.hidden) view.draw(now, force);
  });
}

function everySecond() {
  if (!page.plant) return;
  const now = Date.now();
  for (const view of page.stacks.values()) view.trim(now); // hidden ones too
  drawAll(true); // the time axis moves
  sensors.render(now, page.stackFilter);
  alerts.tick(now);
}

page.timers.push(setInterval(everySecond, 1000));
page.timers.push(setInterval(refreshHealth, HEALTH_EVERY_MS));
page.timers.push(
  setInterval(() => {
    if (page.plant && page.stream) refreshAlerts();
  }, ALERTS_EVERY_MS),
);
new ResizeObserver(() => drawAll(true)).observe($("#stacks"));
refreshHealth();
load();
