// One card per stack: per pollutant a live chart of the normalised concentration (live
// estimate), the validated short-term averages, the running daily average and the limits.
//
// Test and accessibility hook: every chart <canvas> carries data-stack, data-pollutant,
// data-points (live-estimate points held for the last 15 minutes), data-last-value (the
// newest live estimate, full precision), data-last-time (ISO 8601), data-sta-points and
// data-daily-average; its aria-label summarises the same in words.

import { LiveChart } from "./chart.js";
import { el, eventMs, formatNumber, POLLUTANTS, quantityName } from "./format.js";
import { normalise, O2Pairing } from "./normalise.js";

export const WINDOW_MS = 15 * 60 * 1000;
const KEEP_MS = WINDOW_MS + 60 * 1000;
const BACKFILL_EVERY_S = 5;

/** A colour of the style sheet (custom property `name`), so the page themes its charts. */
function colour(element, name, fallback) {
  return getComputedStyle(element).getPropertyValue(name).trim() || fallback;
}

function insertSorted(points, point) {
  if (points.length === 0 || points.at(-1).t <= point.t) {
    if (points.length && points.at(-1).t === point.t) points[points.length - 1] = point;
    else points.push(point);
    return;
  }
  const at = points.findIndex((p) => p.t >= point.t);
  if (points[at].t === point.t) points[at] = point;
  else points.splice(at, 0, point);
}

function trim(points, fromMs) {
  let n = 0;
  while (n < points.length && points[n].t < fromMs) n += 1;
  if (n) points.splice(0, n);
}

class PollutantPanel {
  constructor(stack, pollutant, sensors, limit) {
    this.stack = stack;
    this.pollutant = pollutant;
    this.sensors = sensors; // live sensors (mg/Nm3) measuring this pollutant
    this.limit = limit ?? null;
    this.live = new Map(sensors.map((s) => [s.id, []]));
    this.sta = [];
    this.day = [];
    this.dayInfo = null;
    this.staPeriodMs = limit && limit.half_hour == null && limit.hourly != null ? 3600e3 : 1800e3;
    this.last = null; // {t, v}
    this.dirty = true;
    this.build();
  }

  get name() {
    return quantityName(this.pollutant);
  }

  build() {
    const stack = this.stack;
    const id = `chart-${stack.plant}-${stack.id}-${this.pollutant}`.replace(/[^\w-]/g, "_");
    this.lastValue = el("span", { class: "last-value" }, "no data yet");
    this.canvas = el("canvas", {
      id,
      role: "img",
      "data-stack": stack.id,
      "data-pollutant": this.pollutant,
      "data-points": 0,
      "data-sta-points": 0,
    });
    this.daily = el("p", { class: "daily" }, "Running daily average: none yet today.");
    const legend = el(
      "ul",
      { class: "legend", "aria-label": `${this.name} chart legend` },
      this.sensors.length
        ? el("li", {}, el("span", { class: "swatch live" }), `${stack.liveLabel}`)
        : el("li", {}, "no live concentration sensor (validated averages only)"),
      el("li", {}, el("span", { class: "swatch sta" }), "validated short-term average"),
      el("li", {}, el("span", { class: "swatch day" }), "running daily average"),
      ...this.limitLines().map((l) =>
        el("li", {}, el("span", { class: `swatch ${l.kind}` }), `${l.label} (limit)`),
      ),
    );
    this.element = el(
      "figure",
      { class: "chart" },
      el(
        "figcaption",
        {},
        el("span", { class: "pollutant" }, this.name),
        " ",
        this.lastValue,
      ),
      this.canvas,
      legend,
      this.daily,
    );
    this.chart = new LiveChart(this.canvas, {
      windowMs: WINDOW_MS,
      yLabel: stack.yLabel,
      timeZone: stack.fmt.timeZone,
    });
    this.describe();
  }

  limitLines() {
    const lim = this.limit;
    if (!lim) return [];
    return [
      ["elv", "ELV ½ h", lim.half_hour],
      ["elv", "ELV 1 h", lim.hourly],
      ["elv-day", "ELV day", lim.daily],
    ]
      .filter(([, , value]) => value !== null && value !== undefined)
      .map(([kind, name, value]) => ({ kind, label: `${name} ${formatNumber(value)}`, value }));
  }

  addLive(sensorId, t, v) {
    const points = this.live.get(sensorId);
    if (!points || v === null || !Number.isFinite(v)) return;
    insertSorted(points, { t, v });
    if (!this.last || t >= this.last.t) this.last = { t, v };
    this.changed();
  }

  addSta(t, v) {
    insertSorted(this.sta, { t, v });
    // The period is the shortest spacing seen (periods may be missing in between).
    for (let i = 1; i < this.sta.length; i += 1) {
      const gap = this.sta[i].t - this.sta[i - 1].t;
      if (gap > 0 && gap < this.staPeriodMs) this.staPeriodMs = gap;
    }
    this.changed();
  }

  setDay(data, nowMs) {
    this.dayInfo = data;
    const fmt = this.stack.fmt;
    if (typeof data.validated_mean === "number" && fmt.date(eventMs(data)) === fmt.date(nowMs)) {
      this.day.push({ t: nowMs, v: data.validated_mean });
    }
    this.changed();
  }

  changed() {
    this.dirty = true;
    this.describe();
  }

  trim(nowMs) {
    for (const points of this.live.values()) trim(points, nowMs - KEEP_MS);
    trim(this.sta, nowMs - KEEP_MS - this.staPeriodMs);
    if (this.day.length > 1) trim(this.day, Math.min(nowMs - KEEP_MS, this.day.at(-1).t));
  }

  describe() {
    const stack = this.stack;
    const fmt = stack.fmt;
    const unit = stack.unitLabel;
    const points = [...this.live.values()].reduce((n, p) => n + p.length, 0);
    this.canvas.dataset.points = String(points);
    this.canvas.dataset.staPoints = String(this.sta.length);
    const parts = [`${this.name}, ${stack.name}, in ${stack.yLabel}`];
    if (this.last) {
      this.canvas.dataset.lastValue = String(this.last.v);
      this.canvas.dataset.lastTime = new Date(this.last.t).toISOString();
      const text = `${formatNumber(this.last.v)} ${unit} at ${fmt.when(this.last.t)}`;
      this.lastValue.textContent = text;
      parts.push(`${stack.liveLabel}: ${text}`);
    } else {
      parts.push("no live value yet");
    }
    const sta = this.sta.at(-1);
    if (sta) parts.push(`last validated short-term average ${formatNumber(sta.v)} ${unit}`);
    const d = this.dayInfo;
    if (d && typeof d.validated_mean === "number") {
      const date = fmt.date(eventMs(d));
      const hours =
        typeof d.valid_hours === "number" ? `, ${formatNumber(d.valid_hours)} valid h` : "";
      const final = d.complete ? ", final" : "";
      const text = `${formatNumber(d.validated_mean)} ${unit} (${date}${hours}${final})`;
      this.daily.textContent = `Running daily average: ${text}.`;
      this.canvas.dataset.dailyAverage = String(d.validated_mean);
      parts.push(`running daily average ${text}`);
    }
    for (const l of this.limitLines()) parts.push(l.label);
    this.canvas.setAttribute("aria-label", parts.join("; "));
  }

  draw(nowMs) {
    const c = this.canvas;
    const liveColours = [
      colour(c, "--chart-live", "#1f6fb2"),
      colour(c, "--chart-live-2", "#2a9d8f"),
    ];
    const series = [...this.live.values()].map((points, i) => ({
      kind: "line",
      points,
      color: liveColours[i % liveColours.length],
      width: 1.5,
      gapMs: this.stack.gapMs,
    }));
    series.push({
      kind: "steps",
      points: this.sta,
      color: colour(c, "--chart-sta", "#e07b00"),
      width: 3,
      holdMs: this.staPeriodMs,
    });
    series.push({
      kind: "steps",
      points: this.day,
      color: colour(c, "--chart-day", "#7b3fa0"),
      width: 2,
      dash: [6, 4],
      holdMs: Infinity,
    });
    const limits = this.limitLines().map((l) => ({
      label: l.label,
      value: l.value,
      color: colour(c, l.kind === "elv" ? "--chart-elv" : "--chart-elv-day", "#c62828"),
      dash: l.kind === "elv" ? [] : [8, 4],
    }));
    this.chart.setSeries(series, limits);
    this.chart.draw(nowMs);
    this.dirty = false;
  }
}

export class StackView {
  /**
   * @param plant the plant (GET /plants item); @param stack one of its stacks;
   * @param fmt the plant's time formatters (format.js timeFormats)
   */
  constructor(plant, stack, fmt) {
    this.plant = plant.id;
    this.id = stack.id;
    this.name = stack.name || stack.id;
    this.fmt = fmt;
    this.ref = stack.reference_o2;
    this.sensors = new Map(stack.sensors.map((s) => [s.id, s]));
    const o2 = stack.sensors.find((s) => s.quantity === "o2");
    this.o2Sensor = o2 ? o2.id : null;
    this.normalising = this.ref !== null && this.o2Sensor !== null;
    const o2IntervalMs = (o2 ? o2.interval_s : 1) * 1000;
    this.pairing = new O2Pairing(Math.max(5000, 3 * o2IntervalMs), KEEP_MS);
    this.unitLabel = "mg/Nm3";
    this.yLabel = this.normalising
      ? `mg/Nm3 @ ${formatNumber(this.ref)} % O2`
      : "mg/Nm3 (as measured)";
    this.liveLabel = this.normalising
      ? "normalised (live estimate)"
      : this.ref === null
        ? "concentration (no reference O2)"
        : "as measured (no O2 sensor to normalise)";
    const concentrations = stack.sensors.filter(
      (s) => POLLUTANTS.has(s.quantity) && s.unit === "mg/Nm3",
    );
    this.gapMs = 3 * Math.max(1000, ...concentrations.map((s) => s.interval_s * 1000));
    const pollutants = [
      ...new Set([
        ...stack.limits.map((l) => l.quantity),
        ...concentrations.map((s) => s.quantity),
      ]),
    ];
    this.panels = new Map();
    this.panelBySensor = new Map();
    for (const q of pollutants) {
      const sensors = concentrations.filter((s) => s.quantity === q);
      const limit = stack.limits.find((l) => l.quantity === q);
      const panel = new PollutantPanel(this, q, sensors, limit);
      this.panels.set(q, panel);
      for (const s of sensors) this.panelBySensor.set(s.id, panel);
    }
    this.element = this.build(stack);
  }

  build(stack) {
    const headingId = `stack-${this.plant}-${this.id}`.replace(/[^\w-]/g, "_");
    const meta = [
      `stack ${this.id}`,
      this.ref !== null ? `reference O2 ${formatNumber(this.ref)} %` : "no reference O2",
      `${stack.sensors.length} sensors`,
    ].join(" · ");
    return el(
      "article",
      { class: "stack card", "aria-labelledby": headingId, "data-stack": this.id },
      el("h3", { id: headingId }, this.name),
      el("p", { class: "meta" }, meta),
      this.panels.size
        ? el("div", { class: "charts" }, [...this.panels.values()].map((p) => p.element))
        : el("p", { class: "note" }, "No pollutant concentration is measured on this stack."),
    );
  }

  /** A `reading` event (or a stored reading) of this stack. */
  onReading(r) {
    const t = eventMs(r);
    if (r.sensor === this.o2Sensor) {
      if (r.status === "valid") this.addPaired(this.pairing.addO2(t, r.value));
      return;
    }
    const panel = this.panelBySensor.get(r.sensor);
    if (!panel || r.status !== "valid") return; // other statuses show in the sensor table
    if (!this.normalising) {
      panel.addLive(r.sensor, t, r.value);
      return;
    }
    const { o2, settled } = this.pairing.pair(t, { sensor: r.sensor, v: r.value });
    this.addPaired(settled);
    if (o2 !== null) panel.addLive(r.sensor, t, normalise(r.value, o2, this.ref));
  }

  addPaired(items) {
    for (const w of items) {
      this.panelBySensor.get(w.sensor)?.addLive(w.sensor, w.t, normalise(w.v, w.o2, this.ref));
    }
  }

  /** An `average` event of this stack. */
  onAverage(a, nowMs) {
    const panel = this.panels.get(a.pollutant);
    if (!panel) return;
    if (a.period === "short_term" && typeof a.validated === "number") {
      panel.addSta(eventMs(a), a.validated);
    } else if (a.period === "day") {
      panel.setDay(a, nowMs);
    }
  }

  /** Fill the charts with the stored readings of the last 15 minutes (5 s means). */
  async backfill(getJson, endMs) {
    const start = new Date(endMs - WINDOW_MS).toISOString();
    const end = new Date(endMs).toISOString();
    const series = async (sensor) => {
      const every = Math.max(BACKFILL_EVERY_S, Math.ceil(this.sensors.get(sensor).interval_s));
      const path = [this.plant, this.id, sensor].map(encodeURIComponent).join("/");
      const body = await getJson(`/readings/${path}`, { start, end, every: `${every}s` });
      return body.points.map((p) => ({ t: Date.parse(p.time), v: p.value }));
    };
    const concentrations = [...this.panelBySensor.keys()];
    if (concentrations.length === 0) return;
    const o2 = this.normalising ? await series(this.o2Sensor) : [];
    const pairing = new O2Pairing(BACKFILL_EVERY_S * 1000, KEEP_MS);
    for (const p of o2) pairing.addO2(p.t, p.v);
    for (const sensor of concentrations) {
      const panel = this.panelBySensor.get(sensor);
      for (const p of await series(sensor)) {
        if (!this.normalising) panel.addLive(sensor, p.t, p.v);
        else {
          const o2At = pairing.nearest(p.t);
          if (o2At !== null) panel.addLive(sensor, p.t, normalise(p.v, o2At, this.ref));
        }
      }
    }
  }

  /** Forget what has left the chart window (keeps memory bounded, drawn or not). */
  trim(nowMs) {
    for (const panel of this.panels.values()) {
      panel.trim(nowMs);
      panel.describe();
    }
  }

  draw(nowMs, force) {
    for (const panel of this.panels.values()) if (force || panel.dirty) panel.draw(nowMs);
  }

  set hidden(value) {
    this.element.hidden = value;
  }
}
