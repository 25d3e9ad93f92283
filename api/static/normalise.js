// The live estimate of a normalised concentration, computed in the browser.
//
// Raw readings are at the measured O2; limits apply at the stack's reference O2. The
// compliance engine publishes validated averages only when a short-term period closes, so for
// a chart at the sampling rate the page estimates
//     C_ref = C_meas × (21 − O2_ref) / (21 − O2_meas)        (IED Annex VI Part 7)
// pairing each reading with the stack's O2 reading nearest in time. It is an estimate: no
// calibration function, wet/dry conversion or status validation is applied; the validated
// short-term averages from the service are the values that count.

export const O2_AIR = 21;

/** C at the reference O2, or null when undefined (O2 at or above that of air). */
export function normalise(value, o2Measured, o2Reference) {
  if (o2Reference === null || o2Reference === undefined) return value;
  if (!(o2Measured < O2_AIR) || !(o2Reference < O2_AIR)) return null;
  return (value * (O2_AIR - o2Reference)) / (O2_AIR - o2Measured);
}

/**
 * Pairs each concentration reading with the stack's O2 reading nearest in time (at most
 * `toleranceMs` apart). The O2 of the same instant often arrives just after the reading, so
 * a reading newer than every O2 known waits until the O2 catches up with it, or until a
 * reading `toleranceMs` newer shows the O2 is late (then the nearest known O2 is used, or
 * none: without O2 there is no estimate). Keeps `keepMs` of O2 history.
 */
export class O2Pairing {
  constructor(toleranceMs, keepMs) {
    this.toleranceMs = toleranceMs;
    this.keepMs = keepMs;
    this.o2 = []; // {t, v}, sorted by t
    this.waiting = []; // {t, ...item}, sorted by arrival
  }

  /** The O2 value nearest to time `t` within the tolerance, or null. */
  nearest(t) {
    let best = null;
    let bestGap = Infinity;
    // Scan back from the newest: the gap shrinks until t is passed, then grows.
    for (let i = this.o2.length - 1; i >= 0; i -= 1) {
      const gap = Math.abs(this.o2[i].t - t);
      if (gap < bestGap) {
        best = this.o2[i];
        bestGap = gap;
      } else if (this.o2[i].t < t) {
        break;
      }
    }
    return best && bestGap <= this.toleranceMs ? best.v : null;
  }

  get latestO2() {
    return this.o2.length ? this.o2.at(-1).t : -Infinity;
  }

  /** Add an O2 reading; returns the waiting items it settles, each with its `o2`. */
  addO2(t, v) {
    const last = this.o2.at(-1);
    if (!last || last.t < t) this.o2.push({ t, v });
    else {
      const at = this.o2.findIndex((p) => p.t >= t);
      if (this.o2[at].t === t) this.o2[at] = { t, v };
      else this.o2.splice(at, 0, { t, v });
    }
    while (this.o2.length && this.o2[0].t < this.o2.at(-1).t - this.keepMs) this.o2.shift();
    return this.settle((w) => w.t <= this.latestO2);
  }

  /**
   * The O2 for a reading at `t` now, or null: then `item` waits, and a later call of
   * addO2() or pair() returns it settled. Returns {o2, settled}: `settled` are earlier
   * waiting items given up on waiting (paired with the nearest O2, or dropped without one).
   */
  pair(t, item) {
    const settled = this.settle((w) => w.t < t - this.toleranceMs);
    if (t <= this.latestO2) return { o2: this.nearest(t), settled };
    this.waiting.push({ t, ...item });
    if (this.waiting.length > 10_000) this.waiting.shift(); // O2 gone for good: bounded
    return { o2: null, settled };
  }

  settle(done) {
    const settled = [];
    const still = [];
    for (const w of this.waiting) {
      if (!done(w)) still.push(w);
      else {
        const o2 = this.nearest(w.t);
        if (o2 !== null) settled.push({ ...w, o2 });
      }
    }
    this.waiting = still;
    return settled;
  }
}
