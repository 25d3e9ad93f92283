// Current alerts (firing and acknowledged) of the selected plant, and acknowledging one
// through a small dialog.
//
// Rows carry data-fingerprint, data-rule and data-state for tests. Alerts without a plant
// label (service health) concern every plant and are always shown.

import { el, formatAge, formatNumber } from "./format.js";

const RANK = { critical: 2, warning: 1, info: 0 };
const ACTIVE = new Set(["firing", "acknowledged"]);

function where(labels) {
  const parts = [labels.stack, labels.sensor ?? labels.pollutant].filter(Boolean);
  return parts.length ? parts.join(" / ") : "service";
}

export class AlertsView {
  /**
   * @param elements {tbody, empty, count, dialog} of the page
   * @param acknowledge async (fingerprint, {by?, comment}) => the acknowledged alert
   * @param hasKey () => whether an API key is in use (the name is then optional)
   * @param onError (error) => void for errors the dialog cannot show (a 401)
   */
  constructor({ tbody, empty, count, dialog }, { acknowledge, hasKey, onError }) {
    this.tbody = tbody;
    this.empty = empty;
    this.count = count;
    this.dialog = dialog;
    this.acknowledge = acknowledge;
    this.hasKey = hasKey;
    this.onError = onError;
    this.alerts = new Map();
    this.plant = null;
    this.fmt = null;
    this.stackFilter = "";
    this.current = null; // the alert the dialog is about
    this.wireDialog();
  }

  setPlant(plantId, fmt) {
    this.plant = plantId;
    this.fmt = fmt;
    this.alerts.clear();
  }

  concerns(alert) {
    const { plant, stack } = alert.labels;
    return (
      (plant === undefined || plant === this.plant) &&
      (!this.stackFilter || stack === undefined || stack === this.stackFilter)
    );
  }

  replaceAll(list) {
    this.alerts.clear();
    for (const a of list) if (ACTIVE.has(a.state)) this.alerts.set(a.fingerprint, a);
    this.render();
  }

  /** An alert as the API returned it after a change (acknowledge, live transition). */
  update(alert) {
    const known = this.alerts.get(alert.fingerprint);
    if (known && known.updated_ns > alert.updated_ns) return; // a late, older transition
    if (ACTIVE.has(alert.state)) this.alerts.set(alert.fingerprint, alert);
    else this.alerts.delete(alert.fingerprint);
    this.render();
  }

  setStackFilter(stack) {
    this.stackFilter = stack;
    this.render();
  }

  render() {
    const fmt = this.fmt;
    const now = Date.now();
    const shown = [...this.alerts.values()]
      .filter((a) => this.concerns(a))
      .sort(
        (a, b) => (RANK[b.severity] ?? 0) - (RANK[a.severity] ?? 0) || b.started_ns - a.started_ns,
      );
    this.count.textContent = shown.length ? `(${shown.length})` : "";
    this.empty.hidden = shown.length > 0;
    this.tbody.replaceChildren(
      ...shown.map((a) => {
        const since = a.fired_ns ?? a.started_ns;
        const sinceMs = since / 1e6;
        const value =
          a.value === null
            ? "–"
            : a.threshold === null
              ? formatNumber(a.value)
              : `${formatNumber(a.value)} / ${formatNumber(a.threshold)}`;
        const acknowledged = a.state === "acknowledged";
        return el(
          "tr",
          { "data-fingerprint": a.fingerprint, "data-rule": a.rule, "data-state": a.state },
          el("td", {}, el("span", { class: `severity ${a.severity}` }, a.severity)),
          el("th", { scope: "row" }, a.summary, el("span", { class: "sub block" }, a.rule)),
          el("td", {}, where(a.labels)),
          el(
            "td",
            {},
            el("time", { datetime: new Date(sinceMs).toISOString() }, fmt.when(sinceMs, now)),
            el("span", { class: "sub block age", "data-t": sinceMs }, formatAge(now - sinceMs)),
          ),
          el("td", { class: "num" }, value),
          el(
            "td",
            {},
            acknowledged
              ? [
                  el(
                    "span",
                    { class: "state acknowledged" },
                    `acknowledged by ${a.acknowledged_by}`,
                  ),
                  a.ack_comment ? el("span", { class: "sub block" }, a.ack_comment) : null,
                ]
              : el("span", { class: `state ${a.state}` }, a.state),
          ),
          el(
            "td",
            {},
            a.state === "firing"
              ? el(
                  "button",
                  {
                    type: "button",
                    class: "ack",
                    "aria-label": `Acknowledge: ${a.summary}`,
                    onclick: () => this.open(a),
                  },
                  "Acknowledge",
                )
              : null,
          ),
        );
      }),
    );
  }

  /** Refresh the "… ago" texts without rebuilding rows (buttons keep focus). */
  tick(nowMs) {
    for (const age of this.tbody.querySelectorAll(".age")) {
      age.textContent = formatAge(nowMs - Number(age.dataset.t));
    }
  }

  wireDialog() {
    const d = this.dialog;
    this.form = d.querySelector("form");
    this.by = d.querySelector("#ack-by");
    this.comment = d.querySelector("#ack-comment");
    this.error = d.querySelector("#ack-error");
    this.hint = d.querySelector("#ack-by-hint");
    this.summary = d.querySelector("#ack-summary");
    this.submit = d.querySelector("button[type=submit]");
    d.querySelector("#ack-cancel").addEventListener("click", () => d.close());
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.send();
    });
  }

  open(alert) {
    this.current = alert;
    const keyed = this.hasKey();
    this.summary.textContent = alert.summary;
    this.by.required = !keyed;
    this.by.value = sessionValue("stackwatch.ackBy") ?? "";
    this.hint.textContent = keyed
      ? "Optional: leave empty to act as the holder of the API key."
      : "Required: there is no login in demo mode; recorded in the audit log.";
    this.comment.value = "";
    this.error.hidden = true;
    this.submit.disabled = false;
    this.dialog.showModal();
    (this.by.value ? this.comment : this.by).focus();
  }

  async send() {
    const alert = this.current;
    if (!alert) return;
    const by = this.by.value.trim();
    const body = { comment: this.comment.value.trim() };
    if (by) body.by = by;
    this.submit.disabled = true;
    try {
      const updated = await this.acknowledge(alert.fingerprint, body);
      if (by) sessionValue("stackwatch.ackBy", by);
      this.dialog.close();
      this.update(updated);
    } catch (err) {
      if (err.status === 401) {
        this.dialog.close();
        this.onError(err);
        return;
      }
      const why = err.status === 409 ? "Not acknowledged" : "Could not acknowledge";
      this.error.textContent = `${why}: ${err.message}`;
      this.error.hidden = false;
      this.submit.disabled = false;
    }
  }
}

/** Read (one argument) or write a sessionStorage value; null when storage is unavailable. */
function sessionValue(name, value) {
  try {
    if (value === undefined) return sessionStorage.getItem(name);
    sessionStorage.setItem(name, value);
  } catch {
    // storage disabled
  }
  return null;
}
