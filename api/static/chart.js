// A small time-series chart drawn on a <canvas>: the last `windowMs` up to now, lines broken
// at gaps, step segments for averages, labelled horizontal limit lines. Colours come from CSS
// custom properties (--chart-*) so the style sheet themes it (light and dark).

const MARGIN = { left: 58, right: 104, top: 10, bottom: 28 };

/** A "nice" tick step (1, 2 or 5 × 10^n) giving about `count` ticks over `span`. */
export function niceStep(span, count) {
  const raw = span / Math.max(1, count);
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const residual = raw / magnitude;
  const nice = residual > 5 ? 10 : residual > 2 ? 5 : residual > 1 ? 2 : 1;
  return nice * magnitude;
}

function cssVar(style, name, fallback) {
  return style.getPropertyValue(name).trim() || fallback;
}

export class LiveChart {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {{windowMs: number, yLabel: string, timeZone: string}} options
   */
  constructor(canvas, { windowMs, yLabel, timeZone }) {
    this.canvas = canvas;
    this.windowMs = windowMs;
    this.yLabel = yLabel;
    this.timeFormat = new Intl.DateTimeFormat(undefined, {
      hour: "2-digit",
      minute: "2-digit",
      timeZone,
      hourCycle: "h23",
    });
    this.series = []; // {color, points: [{t, v}], kind: "line"|"steps", width, dash, gapMs}
    this.limits = []; // {label, value, color, dash}
  }

  setSeries(series, limits) {
    this.series = series;
    this.limits = limits;
  }

  /** The y range: from 0 to above every visible value and every limit. */
  yMax(t0) {
    let max = 0;
    for (const s of this.series) {
      const from = t0 - (s.kind === "steps" ? s.holdMs : 0);
      for (const p of s.points) if (p.t >= from && p.v > max) max = p.v;
    }
    for (const l of this.limits) if (l.value > max) max = l.value;
    if (max <= 0) return 1;
    const step = niceStep(max * 1.1, 5);
    return Math.ceil((max * 1.1) / step) * step;
  }

  draw(nowMs) {
    const canvas = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    if (width === 0 || height === 0) return; // hidden
    if (canvas.width !== Math.round(width * dpr) || canvas.height !== Math.round(height * dpr)) {
      canvas.width = Math.round(width * dpr);
      canvas.height = Math.round(height * dpr);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const style = getComputedStyle(canvas);
    const text = cssVar(style, "--chart-text", "#444");
    const grid = cssVar(style, "--chart-grid", "#e3e6ea");
    const font = `12px ${cssVar(style, "font-family", "sans-serif")}`;

    const t1 = nowMs;
    const t0 = nowMs - this.windowMs;
    const yMax = this.yMax(t0);
    const plotW = width - MARGIN.left - MARGIN.right;
    const plotH = height - MARGIN.top - MARGIN.bottom;
    const x = (t) => MARGIN.left + ((t - t0) / (t1 - t0)) * plotW;
    const y = (v) => MARGIN.top + plotH - (v / yMax) * plotH;

    ctx.font = font;
    ctx.lineWidth = 1;
    // y grid and ticks
    const yStep = niceStep(yMax, 5);
    ctx.fillStyle = text;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (let v = 0; v <= yMax + yStep / 1000; v += yStep) {
      ctx.strokeStyle = grid;
      ctx.beginPath();
      ctx.moveTo(MARGIN.left, Math.round(y(v)) + 0.5);
      ctx.lineTo(MARGIN.left + plotW, Math.round(y(v)) + 0.5);
      ctx.stroke();
      ctx.fillText(formatTick(v, yStep), MARGIN.left - 6, y(v));
    }
    // x grid and ticks: every 1, 2, 5, 10, ... minutes
    const minutes = [1, 2, 5, 10, 15, 30, 60, 120, 240];
    const wantTicks = Math.max(2, Math.floor(plotW / 90));
    const stepMin = minutes.find((m) => (this.windowMs / 60000) / m <= wantTicks) ?? 240;
    const xStep = stepMin * 60000;
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (let t = Math.ceil(t0 / xStep) * xStep; t <= t1; t += xStep) {
      ctx.strokeStyle = grid;
      ctx.beginPath();
      ctx.moveTo(Math.round(x(t)) + 0.5, MARGIN.top);
      ctx.lineTo(Math.round(x(t)) + 0.5, MARGIN.top + plotH);
      ctx.stroke();
      ctx.fillText(this.timeFormat.format(t), x(t), MARGIN.top + plotH + 6);
    }
    // y axis title
    ctx.save();
    ctx.translate(12, MARGIN.top + plotH / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText(this.yLabel, 0, 0);
    ctx.restore();

    ctx.save();
    ctx.beginPath();
    ctx.rect(MARGIN.left, MARGIN.top, plotW, plotH);
    ctx.clip();
    for (const s of this.series) this.drawSeries(ctx, s, x, y, t0, t1);
    ctx.restore();

    // limit lines with their labels in the right margin
    ctx.textAlign = "left";
    ctx.textBaseline = "middle";
    for (const l of this.limits) {
      const ly = Math.round(y(l.value)) + 0.5;
      ctx.strokeStyle = l.color;
      ctx.fillStyle = l.color;
      ctx.lineWidth = 1.5;
      ctx.setLineDash(l.dash ?? []);
      ctx.beginPath();
      ctx.moveTo(MARGIN.left, ly);
      ctx.lineTo(MARGIN.left + plotW, ly);
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.fillText(l.label, MARGIN.left + plotW + 6, ly);
    }
    // plot frame
    ctx.strokeStyle = text;
    ctx.lineWidth = 1;
    ctx.strokeRect(MARGIN.left + 0.5, MARGIN.top + 0.5, plotW, plotH);
    if (!this.series.some((s) => s.points.some((p) => p.t >= t0))) {
      ctx.fillStyle = text;
      ctx.textAlign = "center";
      ctx.fillText("waiting for data…", MARGIN.left + plotW / 2, MARGIN.top + plotH / 2);
    }
  }

  drawSeries(ctx, s, x, y, t0, t1) {
    const pts = s.points;
    if (pts.length === 0) return;
    ctx.strokeStyle = s.color;
    ctx.fillStyle = s.color;
    ctx.lineWidth = s.width ?? 1.5;
    ctx.setLineDash(s.dash ?? []);
    ctx.beginPath();
    if (s.kind === "steps") {
      // Each value holds from its time until the next one (the last one: for `holdMs`).
      for (let i = 0; i < pts.length; i += 1) {
        const held = Math.min(t1, pts[i].t + s.holdMs);
        const end = i + 1 < pts.length ? Math.min(pts[i + 1].t, held) : held;
        if (end < t0) continue;
        ctx.moveTo(x(pts[i].t), y(pts[i].v));
        ctx.lineTo(x(end), y(pts[i].v));
      }
      ctx.stroke();
    } else {
      // Split at gaps; a segment of one point would be invisible as a line: a dot.
      const gapMs = s.gapMs ?? Infinity;
      const segments = [];
      let prev = null;
      for (const p of pts) {
        if (p.t < t0 - gapMs) continue;
        if (prev === null || p.t - prev.t > gapMs) segments.push([]);
        segments.at(-1).push(p);
        prev = p;
      }
      for (const seg of segments) {
        ctx.beginPath();
        if (seg.length === 1) {
          ctx.arc(x(seg[0].t), y(seg[0].v), 2, 0, 2 * Math.PI);
          ctx.fill();
          continue;
        }
        ctx.moveTo(x(seg[0].t), y(seg[0].v));
        for (const p of seg.slice(1)) ctx.lineTo(x(p.t), y(p.v));
        ctx.stroke();
      }
    }
    ctx.setLineDash([]);
  }
}

function formatTick(v, step) {
  const decimals = step >= 1 ? 0 : Math.min(6, Math.ceil(-Math.log10(step)));
  return v.toFixed(decimals);
}
