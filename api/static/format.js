// Small helpers shared by the page's views: DOM building (text only, never HTML from data),
// names and number/time formatting.

/** An element with attributes and children; strings become text nodes (never parsed). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const NAMES = {
  nox: "NOx",
  no: "NO",
  no2: "NO₂",
  so2: "SO₂",
  co: "CO",
  dust: "Dust",
  toc: "TOC",
  hcl: "HCl",
  hf: "HF",
  nh3: "NH₃",
  hg: "Hg",
  n2o: "N₂O",
  co2: "CO₂",
  o2: "O₂",
  h2o: "H₂O",
};

export const POLLUTANTS = new Set([
  "nox",
  "no",
  "no2",
  "so2",
  "co",
  "dust",
  "toc",
  "hcl",
  "hf",
  "nh3",
  "hg",
  "n2o",
]);

export function quantityName(q) {
  return NAMES[q] ?? q.charAt(0).toUpperCase() + q.slice(1);
}

const numberFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
const smallFormat = new Intl.NumberFormat(undefined, { maximumSignificantDigits: 3 });

export function formatNumber(v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return "–";
  return Math.abs(v) < 1 && v !== 0 ? smallFormat.format(v) : numberFormat.format(v);
}

/** "12 s ago", "3 min ago", "2 h ago", "4 d ago". */
export function formatAge(ms) {
  if (!Number.isFinite(ms)) return "never";
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 90) return `${s} s ago`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min ago`;
  if (s < 36 * 3600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

/** Formatters of date-times in the plant's time zone (the browser's if that one is unknown). */
export function timeFormats(timeZone) {
  const make = (options) => {
    try {
      return new Intl.DateTimeFormat(undefined, { ...options, timeZone, hourCycle: "h23" });
    } catch {
      return new Intl.DateTimeFormat(undefined, { ...options, hourCycle: "h23" });
    }
  };
  const time = make({ hour: "2-digit", minute: "2-digit", second: "2-digit" });
  const dateTime = make({
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
  });
  const date = make({ year: "numeric", month: "2-digit", day: "2-digit" });
  return {
    timeZone: time.resolvedOptions().timeZone,
    time: (ms) => time.format(ms),
    dateTime: (ms) => dateTime.format(ms),
    date: (ms) => date.format(ms),
    /** Today's date, or the date and time when `ms` is another day. */
    when: (ms, nowMs = Date.now()) =>
      date.format(ms) === date.format(nowMs) ? time.format(ms) : dateTime.format(ms),
  };
}

/** Epoch ms of an event's time (exact enough from `time_ns`: double keeps ~0.25 µs). */
export function eventMs(data) {
  if (typeof data.time_ns === "number") return data.time_ns / 1e6;
  return Date.parse(data.time);
}
