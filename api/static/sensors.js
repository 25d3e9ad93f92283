// Sensor health: per configured sensor its newest reading (value, status, age) and what the
// detectors and soft sensors said of it lately, summarised as ok / warning / problem.
//
// Rows carry data-stack, data-sensor and data-health ("ok", "warn", "bad") for tests.

import { el, eventMs, formatAge, formatNumber, quantityName } from "./format.js";

const RECENT_MS = 5 * 60 * 1000; // an anomaly or PEMS deviation older than this is history
const DRIFT_MS = 24 * 3600 * 1000;

/** A sensor is stale after three missed intervals (at least 10 s: delivery takes time). */
export function staleAfterMs(intervalS) {
  return Math.max(10_000, 3 * intervalS * 1000);
}

/** {level: "ok" | "warn" | "bad", text} for one sensor row at `nowMs`. */
export function assess(row, nowMs) {
  const problems = [];
  const warnings = [];
  if (!row.last) problems.push("no data");
  else if (nowMs - row.last.t > staleAfterMs(row.sensor.interval_s)) {
    problems.push(`no reading since ${formatAge(nowMs - row.last.t)}`);
  }
  if (row.fault) problems.push(`sensor fault (${row.fault.kind})`);
  if (row.last && row.last.status !== "valid") warnings.push(`status ${row.last.status}`);
  if (row.drift && nowMs - row.drift.t < DRIFT_MS) warnings.push("drift suspected");
  if (row.anomaly && nowMs - row.anomaly.t < RECENT_MS) {
    warnings.push(`anomalous reading ${formatAge(nowMs - row.anomaly.t)} (${row.anomaly.kind})`);
  }
  if (row.pems && nowMs - row.pems.t < RECENT_MS) {
    if (row.pems.substitute) warnings.push("analyser silent: PEMS substitute in use");
    else if (row.pems.outside) warnings.push("outside the PEMS prediction band");
  }
  if (problems.length) return { level: "bad", text: [...problems, ...warnings].join("; ") };
  if (warnings.length) return { level: "warn", text: warnings.join("; ") };
  return { level: "ok", text: "ok" };
}

export class SensorTable {
  constructor(tbody) {
    this.tbody = tbody;
    this.rows = new Map();
    this.fmt = null;
  }

  setPlant(plant, fmt) {
    this.fmt = fmt;
    this.rows.clear();
    for (const stack of plant.stacks) {
      for (const sensor of stack.sensors) {
        this.rows.set(`${stack.id}/${sensor.id}`, {
          stack: stack.id,
          stackName: stack.name || stack.id,
          sensor,
          last: null,
          fault: null,
          drift: null,
          anomaly: null,
          pems: null,
        });
      }
    }
  }

  row(data) {
    return this.rows.get(`${data.stack}/${data.sensor}`);
  }

  onReading(r) {
    const row = this.row(r);
    if (!row) return;
    const t = eventMs(r);
    if (!row.last || t >= row.last.t) row.last = { t, value: r.value, status: r.status };
  }

  onScore(s) {
    const row = this.row(s);
    if (!row) return;
    if (s.is_anomaly) row.anomaly = { t: eventMs(s), kind: s.kind ?? "anomaly" };
    if (s.drift) row.drift = { t: eventMs(s) };
  }

  onDetection(d) {
    const row = this.row(d);
    if (!row) return;
    const t = eventMs(d);
    if (d.event === "fault") row.fault = d.active ? { t, kind: d.kind } : null;
    else if (d.event === "drift") row.drift = d.active ? { t } : null;
    else if (d.event === "anomaly" && d.active) row.anomaly = { t, kind: d.kind };
  }

  onPems(p) {
    const row = this.row(p);
    if (!row) return;
    row.pems = { t: eventMs(p), outside: p.outside === true, substitute: p.substitute === true };
  }

  render(nowMs, stackFilter) {
    const fmt = this.fmt;
    const rows = [...this.rows.values()].filter((r) => !stackFilter || r.stack === stackFilter);
    this.tbody.replaceChildren(
      ...rows.map((row) => {
        const health = assess(row, nowMs);
        const s = row.sensor;
        const last = row.last;
        return el(
          "tr",
          { "data-stack": row.stack, "data-sensor": s.id, "data-health": health.level },
          el("td", { title: row.stackName }, row.stack),
          el(
            "th",
            { scope: "row" },
            s.id,
            el("span", { class: "sub" }, ` ${quantityName(s.quantity)}`),
          ),
          el("td", { class: "num" }, last ? `${formatNumber(last.value)} ${s.unit}` : "–"),
          el(
            "td",
            {},
            last
              ? el("time", { datetime: new Date(last.t).toISOString() }, fmt.when(last.t, nowMs))
              : "never",
            last ? el("span", { class: "sub" }, ` ${formatAge(nowMs - last.t)}`) : null,
          ),
          el("td", {}, last ? last.status : "–"),
          el("td", {}, el("span", { class: `health ${health.level}` }, health.text)),
        );
      }),
    );
  }
}
