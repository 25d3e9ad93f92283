"""Live compliance: the engine run on the open days of each plant as readings are stored.

Each plant-local day is kept in memory while it is open (plus ``keep_days`` after it, for late
data): the readings of the sensors the engine reads (analysers of limited pollutants, their
peripherals, the plant mode). Whenever the watermark (newest reading time minus the allowed
lateness) closes a half-hour, or a reading arrives for a period already evaluated, the day is
evaluated again with the same :class:`ComplianceEngine` as ``stackwatch compliance`` and its
short-term averages and daily record are returned as points to store. Re-evaluating whole days
keeps the live results equal to the offline ones whatever the order and batching of the input.

Readings older than the watermark are *settled* every minute: folded into per-period totals
(:class:`PeriodTotals`: sum and counts per category) and dropped, so memory holds about a
minute of readings per sensor plus a few numbers per period, not the day's readings (at
5 000 sensors and 1 Hz that is 7 GB a day). The plant mode stays as readings (the periods'
time-weighted operating share needs it). A reading for a settled time (late, or redelivered)
reopens the hours from its own: their totals are dropped and their readings reloaded from the
store, then counted again with the new ones.

After a restart (or for a day no longer in memory) the day is first reloaded from the store, so
a restart never produces a day computed from part of its data. Reloads read the store: a
reading still waiting in the store-and-forward spool is not seen by a reload made before the
spool drains.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import structlog

from stream.compliance import calrange
from stream.compliance.averaging import PeriodTotals, StaBatch, align_down, period_totals
from stream.compliance.chain import chain_inputs, plant_mode
from stream.compliance.engine import ComplianceEngine, EvaluationWindow, stack_periods
from stream.compliance.events import (
    ComplianceEvent,
    calibration_range_event,
    day_events,
    invalid_days_exceeded,
    qal3_event,
)
from stream.compliance.longterm import (
    DailyRecord,
    local_day_bounds_ns,
    monthly_averages,
    yearly_averages,
)
from stream.compliance.points import DAILY, STA, daily_point, period_point, sta_points
from stream.compliance.qal3_checks import qal3_events
from stream.compliance.report import PollutantReport
from stream.model import NS_PER_S, Reading, SensorKey, datetime_from_ns
from stream.plant import PlantConfig, Quantity, StackConfig
from stream.schema import READINGS
from stream.series import STATUS_CODE, SensorSeries, series_from_stored
from stream.storage.base import Point, SeriesQuery, SeriesRow, Store

log = structlog.get_logger(__name__)


_TICK_NS = 1800 * NS_PER_S  # re-evaluate when a half-hour closes (hours are whole half-hours)


_PENDING_MAX = 256
"""Live readings of a sensor kept as Python columns before they become one array chunk."""

_SETTLE_NS = 60 * NS_PER_S
"""Readings older than the watermark are folded into period totals once a minute of them."""

_REOPEN_ALIGN_S = 3600
"""A late reading reopens whole hours (a multiple of every averaging period: 10 min, 30 min,
1 h), so every period is either settled or held as readings, never split."""


@dataclass
class _Day:
    """Readings of one plant-local day, columnar (about 17 bytes a reading): appended as they
    come, de-duplicated (same sensor and time: the last one wins, as in storage) when read."""

    start_ns: int
    end_ns: int
    chunks: dict[SensorKey, list[SensorSeries]] = field(default_factory=dict)
    # Live readings since the last compaction, as plain columns: appending to lists costs far
    # less per reading than a small array per sensor and batch.
    # Keyed by plain (plant, stack, sensor) tuples: they hash and compare as the SensorKey
    # ``_flush`` makes of them, and build without a Python call (``Reading.key`` is one).
    pending: dict[tuple[str, str, str], tuple[list[int], list[float], list[int]]] = field(
        default_factory=dict
    )
    evaluated_to_ns: int | None = None  # the "now" of the last evaluation
    notified: set[tuple[str, ...]] = field(default_factory=set)  # events already handed on
    # Readings of the engine's inputs before ``settled_to_ns`` are held only as totals, per
    # (stack, sensor, period_s); the plant mode is never settled.
    settled_to_ns: int = 0
    totals: dict[tuple[str, str, int], PeriodTotals] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.settled_to_ns = self.start_ns

    def prepend(self, key: SensorKey, series: SensorSeries) -> None:
        """Readings older than those held (reloaded): the held ones win on equal times."""
        if len(series):
            self.chunks.setdefault(key, []).insert(0, series)

    def keep_from(self, key: SensorKey, ts_ns: int) -> None:
        """Drop the held readings of ``key`` before ``ts_ns`` (they have been settled)."""
        parts = self.chunks.get(key)
        if parts:
            (merged,) = parts  # series() has compacted them
            keep = merged.ts_ns >= ts_ns
            self.chunks[key] = [
                SensorSeries(merged.ts_ns[keep], merged.values[keep], merged.status[keep])
            ]

    def carried(self, stack: str) -> dict[tuple[str, int], PeriodTotals]:
        return {(sid, p): t for (st, sid, p), t in self.totals.items() if st == stack}

    def append(self, key: SensorKey, series: SensorSeries) -> None:
        if len(series):
            self.chunks.setdefault(key, []).append(series)

    def add(self, r: Reading) -> None:
        """One live reading (in the columns :meth:`series` turns into arrays)."""
        key = (r.plant, r.stack, r.sensor)
        columns = self.pending.get(key)
        if columns is None:
            columns = self.pending[key] = ([], [], [])
        columns[0].append(r.ts_ns)
        columns[1].append(r.value)
        columns[2].append(STATUS_CODE[r.status])
        if len(columns[0]) >= _PENDING_MAX:  # Python objects cost ~5x the array bytes
            self._flush(key)

    def _flush(self, key: tuple[str, str, str]) -> None:
        ts, values, status = self.pending.pop(key)
        self.append(
            SensorKey(*key),
            SensorSeries(
                np.asarray(ts, np.int64),
                np.asarray(values, np.float64),
                np.asarray(status, np.int8),
            ),
        )

    def series(self) -> dict[str, SensorSeries]:
        """Per ``stack/sensor``; compacts the chunks so memory stays one array per sensor."""
        for key in list(self.pending):
            self._flush(key)
        out: dict[str, SensorSeries] = {}
        for key, parts in self.chunks.items():
            merged = parts[0] if len(parts) == 1 else _last_wins(parts)
            self.chunks[key] = [merged]
            out[f"{key.stack}/{key.sensor}"] = merged
        return out


def _mode_for(
    mode: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | None, from_ns: int, to_ns: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | None:
    """The plant-mode changes that decide the mode of readings in ``[from_ns, to_ns)``: those
    in the range and the one in force at its start (the latest before it; of equal times the
    last given, as the averaging reads them), not the whole day's again for every sensor."""
    if mode is None:
        return None
    ts, values = mode
    keep = (ts >= from_ns) & (ts < to_ns)
    before = np.flatnonzero(ts < from_ns)
    if len(before):
        keep[before[np.lexsort((before, ts[before]))[-1]]] = True
    return ts[keep], values[keep]


def _last_wins(parts: list[SensorSeries]) -> SensorSeries:
    ts = np.concatenate([p.ts_ns for p in parts])
    values = np.concatenate([p.values for p in parts])
    status = np.concatenate([p.status for p in parts])
    # np.unique keeps the first occurrence: look at the arrays back to front.
    _, first_from_end = np.unique(ts[::-1], return_index=True)
    keep = len(ts) - 1 - first_from_end
    return SensorSeries(ts[keep], values[keep], status[keep])


@dataclass(frozen=True)
class _Fresh:
    """One pollutant's evaluation of one day, made in the current call."""

    stack: StackConfig
    report: PollutantReport
    record: DailyRecord
    day: _Day
    complete: bool


@dataclass
class _Plant:
    tz: str
    watermark_ns: int | None = None
    days: dict[date, _Day] = field(default_factory=dict)
    qal3_notified: set[tuple[str, ...]] = field(default_factory=set)


class LiveCompliance:
    """Turns stored readings into stored compliance results, one plant-local day at a time."""

    def __init__(
        self,
        config: PlantConfig,
        store: Store,
        *,
        lateness_s: float = 60.0,
        keep_days: int = 1,
        on_event: Callable[[ComplianceEvent], None] | None = None,
        qal3_history_days: int = 400,
    ) -> None:
        self._config = config
        self._engine = ComplianceEngine(config)
        self._store = store
        self._on_event = on_event
        self._qal3_history_ns = qal3_history_days * 86_400 * NS_PER_S
        self._lateness_ns = int(lateness_s * NS_PER_S)
        self._keep_ns = keep_days * 86_400 * NS_PER_S
        self._plants = {
            pid: _Plant(plant.timezone)
            for pid, plant in config.plants.items()
            if any(stack.limits for stack in plant.stacks.values())
        }
        # Per plant: the engine's inputs (settled) and the plant-mode sensors (kept), by
        # (stack, sensor); no other reading is held.
        self._inputs: dict[str, set[tuple[str, str]]] = {}
        self._modes: dict[str, set[tuple[str, str]]] = {}
        for pid in self._plants:
            limited = {k: v for k, v in config.plants[pid].stacks.items() if v.limits}
            self._inputs[pid] = {(k, sid) for k, v in limited.items() for sid in chain_inputs(v)}
            self._modes[pid] = {
                (k, mode) for k, v in limited.items() if (mode := v.peripheral("mode"))
            }
        # Per plant: the analyser of each zero/span check channel, by (stack, sensor).
        self._checks: dict[str, dict[tuple[str, str], str]] = {
            pid: {
                (stack_id, sid): sensor.check.analyser
                for stack_id, stack in config.plants[pid].stacks.items()
                for sid, sensor in stack.sensors.items()
                if sensor.check is not None
            }
            for pid in self._plants
        }

    def held_readings(self) -> int:
        """Readings held in memory now (the rest of the open days is held as totals)."""
        held = 0
        for plant in self._plants.values():
            for day in plant.days.values():
                held += sum(len(p) for parts in day.chunks.values() for p in parts)
                held += sum(len(columns[0]) for columns in day.pending.values())
        return held

    async def add(self, readings: Sequence[Reading]) -> list[Point]:
        """Take newly stored readings; return the compliance points to store."""
        points: list[Point] = []
        by_plant: dict[str, list[Reading]] = {}
        plants = self._plants
        for r in readings:
            batch = by_plant.get(r.plant)
            if batch is not None:
                batch.append(r)
            elif r.plant in plants:  # not setdefault: a list per reading
                by_plant[r.plant] = [r]
        for plant_id, batch in by_plant.items():
            points += await self._add_plant(plant_id, self._plants[plant_id], batch)
        return points

    async def _add_plant(self, plant_id: str, plant: _Plant, batch: list[Reading]) -> list[Point]:
        zone = ZoneInfo(plant.tz)
        held = self._inputs[plant_id] | self._modes[plant_id]
        earliest: dict[date, int] = {}  # of the held readings: only they change a result
        # The readings of one time step share their timestamp: one date conversion each.
        day_of: dict[int, date] = {}
        kept: list[Reading] = []
        for r in batch:
            day = day_of.get(r.ts_ns)
            if day is None:
                day = day_of[r.ts_ns] = datetime_from_ns(r.ts_ns).astimezone(zone).date()
                if day not in plant.days:  # a day with no input reading is evaluated too
                    plant.days[day] = await self._load_day(plant_id, day, plant.tz)
            if plant.watermark_ns is None or r.ts_ns > plant.watermark_ns:
                plant.watermark_ns = r.ts_ns
            if (r.stack, r.sensor) in held:
                kept.append(r)
                first = earliest.get(day)
                if first is None or r.ts_ns < first:
                    earliest[day] = r.ts_ns
        days = plant.days
        for day, first in earliest.items():
            if first < days[day].settled_to_ns:
                await self._reopen(plant_id, days[day], first)
        for r in kept:
            days[day_of[r.ts_ns]].add(r)
        assert plant.watermark_ns is not None
        closed = plant.watermark_ns - self._lateness_ns
        points: list[Point] = []
        fresh: list[_Fresh] = []
        for day, buffered in sorted(plant.days.items()):
            if self._needs_evaluation(buffered, closed, earliest.get(day)):
                day_points, day_fresh = self._evaluate(plant_id, day, buffered, plant.tz, closed)
                points += day_points
                fresh += day_fresh
        points += await self._after_days(fresh)
        for day in [d for d, b in plant.days.items() if b.end_ns + self._keep_ns < closed]:
            del plant.days[day]
        for buffered in plant.days.values():
            self._settle(plant_id, buffered, closed)
        points += await self._qal3(plant_id, plant, batch)
        return points

    def _settle(self, plant_id: str, day: _Day, closed_ns: int) -> None:
        """Fold the input readings before the watermark (a whole minute of them at least)
        into the day's period totals and drop them."""
        to = min(align_down(closed_ns, 60), day.end_ns)
        if to < day.settled_to_ns + _SETTLE_NS and to < day.end_ns:
            return
        if to <= day.settled_to_ns:
            return
        series = day.series()
        stacks = self._config.plants[plant_id].stacks
        empty = SensorSeries.empty()
        modes: dict[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | None] = {}
        for stack_id, sensor_id in sorted(self._inputs[plant_id]):
            stack = stacks[stack_id]
            if stack_id not in modes:
                prefix = f"{stack_id}/"
                data = {k[len(prefix) :]: v for k, v in series.items() if k.startswith(prefix)}
                modes[stack_id] = _mode_for(plant_mode(stack, data), day.settled_to_ns, to)
            mode = modes[stack_id]
            s = series.get(f"{stack_id}/{sensor_id}", empty)
            new = (s.ts_ns >= day.settled_to_ns) & (s.ts_ns < to)
            for period_s in stack_periods(stack):
                start = align_down(day.start_ns, period_s)
                totals = period_totals(
                    s.ts_ns[new],
                    s.values[new],
                    s.status[new],
                    start_ns=start,
                    end_ns=-align_down(-to, period_s),
                    period_s=period_s,
                    mode_ts_ns=None if mode is None else mode[0],
                    mode_values=None if mode is None else mode[1],
                )
                key = (stack_id, sensor_id, period_s)
                before = day.totals.get(key)
                day.totals[key] = totals if before is None else before.plus(totals)
            if (stack_id, sensor_id) not in self._modes[plant_id]:  # the mode is held whole
                day.keep_from(SensorKey(plant_id, stack_id, sensor_id), to)
        day.settled_to_ns = to

    async def _reopen(self, plant_id: str, day: _Day, ts_ns: int) -> None:
        """A reading for a settled time: hold the readings of the hours from its own again
        (reloaded from the store) and drop their totals."""
        start = max(align_down(ts_ns, _REOPEN_ALIGN_S), day.start_ns)
        stored = await self._store.scan(READINGS, start, day.settled_to_ns, {"plant": plant_id})
        settled = self._inputs[plant_id] - self._modes[plant_id]  # the mode is held whole
        for key, s in series_from_stored(stored).items():
            if (key.stack, key.sensor) in settled:
                day.prepend(key, s)
        cut = align_down(ts_ns, _REOPEN_ALIGN_S)
        day.totals = {k: t.before(cut) for k, t in day.totals.items()}
        day.settled_to_ns = start

    async def _qal3(self, plant_id: str, plant: _Plant, batch: list[Reading]) -> list[Point]:
        """Re-run the control charts of each analyser that got a check in ``batch`` over its
        whole recent check history (CUSUM state spans months; checks are sparse)."""
        checks = self._checks[plant_id]
        newest: dict[tuple[str, str], int] = {}
        if checks:  # most plants have no check channels: no look at each reading
            for r in batch:
                analyser = checks.get((r.stack, r.sensor))
                if analyser is not None:
                    key = (r.stack, analyser)
                    newest[key] = max(newest.get(key, r.ts_ns), r.ts_ns)
        stacks = self._config.plants[plant_id].stacks
        points: list[Point] = []
        for (stack_id, analyser), ts in newest.items():
            stack = stacks[stack_id]
            start = ts - self._qal3_history_ns
            data = {
                sid: await self._sensor_values(SensorKey(plant_id, stack_id, sid), start, ts + 1)
                for sid in stack.check_channels(analyser)
            }
            pollutant = stack.sensors[analyser].quantity.value
            for found in qal3_events(stack, analyser, data):
                event = qal3_event(plant_id, stack_id, pollutant, found)
                points.append(event.to_point())
                seen = (event.kind.value, stack_id, analyser, str(event.ts_ns))
                if seen not in plant.qal3_notified:
                    plant.qal3_notified.add(seen)
                    self._hand_on(event)
        return points

    @staticmethod
    def _needs_evaluation(day: _Day, closed_ns: int, earliest_new: int | None) -> bool:
        if closed_ns <= day.start_ns:
            return False  # nothing of the day is over yet
        if day.evaluated_to_ns is None:
            return True
        late = earliest_new is not None and earliest_new < day.evaluated_to_ns
        advanced = min(closed_ns, day.end_ns) // _TICK_NS > day.evaluated_to_ns // _TICK_NS
        return late or advanced

    async def _load_day(self, plant_id: str, day: date, tz: str) -> _Day:
        start, end = local_day_bounds_ns(day, tz)
        buffered = _Day(start, end)
        stored = await self._store.scan(READINGS, start, end, {"plant": plant_id})
        held = self._inputs[plant_id] | self._modes[plant_id]
        for key, s in series_from_stored(stored).items():
            if (key.stack, key.sensor) in held:
                buffered.append(key, s)
        return buffered

    async def _sensor_values(self, key: SensorKey, start_ns: int, end_ns: int) -> SensorSeries:
        """One sensor's stored values in one query (check channels: sparse, long ranges; their
        status is not needed, every check reading counts)."""
        where = {"plant": key.plant, "stack": key.stack, "sensor": key.sensor}
        rows = await self._store.series(SeriesQuery(READINGS, "value", start_ns, end_ns, where))
        return SensorSeries(
            np.fromiter((r.ts_ns for r in rows), np.int64, len(rows)),
            np.fromiter((r.value for r in rows), np.float64, len(rows)),
            np.zeros(len(rows), np.int8),
        )

    def _evaluate(
        self, plant_id: str, day: date, buffered: _Day, tz: str, closed_ns: int
    ) -> tuple[list[Point], list[_Fresh]]:
        now = min(closed_ns, buffered.end_ns)
        buffered.evaluated_to_ns = now
        window = EvaluationWindow(day, day, buffered.start_ns, buffered.end_ns)
        series = buffered.series()
        points: list[Point] = []
        fresh: list[_Fresh] = []
        for stack_id, stack in self._config.plants[plant_id].stacks.items():
            if not stack.limits:
                continue
            prefix = f"{stack_id}/"
            data = {k[len(prefix) :]: v for k, v in series.items() if k.startswith(prefix)}
            reports = self._engine.evaluate_stack(
                plant_id,
                stack_id,
                stack,
                data,
                window=window,
                tz=tz,
                now_ns=now,
                qal3=False,
                carried=buffered.carried(stack_id),
            )
            for report in reports:
                points += sta_points(report, buffered.start_ns, now)
                complete = now >= buffered.end_ns
                for record in report.daily:
                    if record.date != day:
                        continue
                    points.append(daily_point(report, record, tz, complete=complete))
                    for event in day_events(
                        report,
                        record,
                        day_start_ns=buffered.start_ns,
                        now_ns=now,
                        complete=complete,
                    ):
                        points.append(event.to_point())
                        self._notify(buffered, event)
                    fresh.append(_Fresh(stack, report, record, buffered, complete))
        return points, fresh

    async def _after_days(self, fresh: list[_Fresh]) -> list[Point]:
        """Period results of the days completed in this call, once every day evaluated in it
        is known (a late re-evaluation and a completion can come in the same batch)."""
        points: list[Point] = []
        for f in fresh:
            if not f.complete:
                continue
            for event in await self._period_events(f.stack, f.report, f.record, f.day):
                points.append(event.to_point())
                self._notify(f.day, event)
            same = [
                g
                for g in fresh
                if (g.report.stack, g.report.pollutant) == (f.report.stack, f.report.pollutant)
            ]
            points += await self._long_term(f, same)
        return points

    async def _period_events(
        self, stack: StackConfig, report: PollutantReport, record: DailyRecord, day: _Day
    ) -> list[ComplianceEvent]:
        """Events over longer periods, at the end of a day: the yearly invalid-day counter and
        the weekly valid-calibration-range counter (from the stored results of earlier days)."""
        events: list[ComplianceEvent] = []
        tz = self._config.plants[report.plant].timezone
        where = {"plant": report.plant, "stack": report.stack, "pollutant": report.pollutant}
        comp = stack.compliance
        if record.invalid_day:
            year_start = local_day_bounds_ns(date(record.date.year, 1, 1), tz)[0]
            earlier = await self._store.series(
                SeriesQuery(DAILY, "invalid_day_count", year_start, day.start_ns, where)
            )
            count = int(sum(r.value for r in earlier)) + 1
            if count > comp.max_invalid_days_per_year:
                events.append(
                    invalid_days_exceeded(
                        report, record, count, day.start_ns, comp.max_invalid_days_per_year
                    )
                )
        analyser = stack.sensors[stack.pollutant_sensors(Quantity(report.pollutant))[0]]
        upper = analyser.calibration.upper if analyser.calibration else None
        if upper is not None and record.date.isoweekday() == 7 and report.sta is not None:
            events += await self._calibration_range(report, upper, day, where, tz)
        return events

    async def _long_term(self, current: _Fresh, fresh: list[_Fresh]) -> list[Point]:
        """Monthly and yearly validated averages so far (EN 17255-1 LTA, C4), once a day is
        over: the stored valid STA of the year, with the days evaluated just now taken from
        memory, without invalid days, through the same functions as the offline report."""
        report, record = current.report, current.record
        tz = self._config.plants[report.plant].timezone
        where = {"plant": report.plant, "stack": report.stack, "pollutant": report.pollutant}
        year_start = local_day_bounds_ns(date(record.date.year, 1, 1), tz)[0]
        year_end = local_day_bounds_ns(date(record.date.year, 12, 31), tz)[1]

        def in_fresh(ts: int) -> bool:
            return any(f.day.start_ns <= ts < f.day.end_ns for f in fresh)

        # The whole year so far (not only up to this day: a late re-evaluation of an earlier
        # day must not shrink the period), except the days in memory.
        sta = [
            row
            for row in await self._valid_sta(where, year_start, year_end)
            if not in_fresh(row[0])
        ]
        daily_rows = await self._store.series(
            SeriesQuery(DAILY, "invalid_day_count", year_start, year_end, where)
        )
        zone = ZoneInfo(tz)
        invalid = {
            datetime_from_ns(r.ts_ns).astimezone(zone).date(): r.value > 0
            for r in daily_rows
            if not in_fresh(r.ts_ns)
        }
        starts = [np.fromiter((row[0] for row in sta), np.int64, len(sta))]
        normalised = [np.fromiter((row[1] for row in sta), np.float64, len(sta))]
        validated = [np.fromiter((row[2] for row in sta), np.float64, len(sta))]
        for f in fresh:
            assert f.report.sta is not None
            invalid[f.record.date] = f.record.invalid_day
            ok = f.report.sta.state == 0
            starts.append(f.report.sta.start_ns[ok])
            normalised.append(f.report.sta.normalised[ok])
            validated.append(f.report.sta.validated[ok])
        order = np.argsort(np.concatenate(starts), kind="stable")
        start_ns: npt.NDArray[np.int64] = np.concatenate(starts)[order]
        norm: npt.NDArray[np.float64] = np.concatenate(normalised)[order]
        vald: npt.NDArray[np.float64] = np.concatenate(validated)[order]
        days = {datetime_from_ns(t).astimezone(zone).date() for t in start_ns.tolist()}
        records = [
            DailyRecord(
                d, not invalid.get(d, False), 0.0, None, None, 0, 0, 0, invalid.get(d, False)
            )
            for d in sorted(days)
        ]
        batch = StaBatch.from_counts(
            start_ns=start_ns,
            mean=norm,
            state=np.zeros(len(start_ns), np.int8),
            period_s=report.sta_period_s,
        )
        coverage = current.stack.compliance.lta_min_coverage
        month = [
            p
            for p in monthly_averages(batch, norm, vald, records, tz=tz, min_coverage=coverage)
            if p.start <= record.date < p.end
        ]
        year = yearly_averages(batch, norm, vald, records, tz=tz, min_coverage=coverage)
        return [period_point(report, "month", p, tz) for p in month] + [
            period_point(report, "year", p, tz) for p in year
        ]

    async def _calibration_range(
        self, report: PollutantReport, upper: float, day: _Day, where: dict[str, str], tz: str
    ) -> list[ComplianceEvent]:
        """EN 14181 §6.5 / BEP S10 at the end of an ISO week, over the weeks since the last
        QAL2 or AST (``calibration.valid_from``; at most a year back)."""
        assert report.sta is not None
        stack = self._config.plants[report.plant].stacks[report.stack]
        analyser = stack.sensors[stack.pollutant_sensors(Quantity(report.pollutant))[0]]
        assert analyser.calibration is not None
        start = day.end_ns - 371 * 86_400 * NS_PER_S
        if analyser.calibration.valid_from is not None:
            start = max(start, local_day_bounds_ns(analyser.calibration.valid_from, tz)[0])
        earlier = await self._valid_sta(where, start, day.start_ns)
        today = report.sta.state == 0
        starts = np.concatenate(
            [
                np.fromiter((row[0] for row in earlier), np.int64, len(earlier)),
                report.sta.start_ns[today],
            ]
        )
        values = np.concatenate(
            [
                np.fromiter((row[1] for row in earlier), np.float64, len(earlier)),
                report.sta.normalised[today],
            ]
        )
        weeks = calrange.weekly_results(starts, values, np.ones(len(starts), bool), upper, tz)
        counter = calrange.CalibrationRangeCounter(tz)
        messages: list[str] = []
        for week in weeks:
            messages = counter.add(week)
        this_week = weeks[-1] if weeks else None
        current = calrange.iso_week_start_ns(day.start_ns, tz)
        if this_week is None or this_week.week_start_ns != current or not messages:
            return []
        return [
            calibration_range_event(report, this_week, counter, " ".join(messages), day.start_ns)
        ]

    async def _valid_sta(
        self, where: dict[str, str], start_ns: int, end_ns: int
    ) -> list[tuple[int, float, float]]:
        """Stored valid short-term averages: (start, normalised, validated). By the stored
        state: a period re-evaluated from valid to invalid or excluded (late data) keeps its
        earlier numbers in the store, since points with fewer fields merge into it. (Points
        stored before ``state_code`` existed count as valid where they have a number.)"""

        async def series(field_name: str) -> list[SeriesRow]:
            return await self._store.series(SeriesQuery(STA, field_name, start_ns, end_ns, where))

        normalised = await series("normalised")
        validated = {r.ts_ns: r.value for r in await series("validated")}
        state = {r.ts_ns: r.value for r in await series("state_code")}
        return [
            (r.ts_ns, r.value, validated.get(r.ts_ns, math.nan))
            for r in normalised
            if state.get(r.ts_ns, 0) == 0
        ]

    def _notify(self, day: _Day, event: ComplianceEvent) -> None:
        """Hand each event on once (re-evaluations repeat them; storage overwrites them)."""
        key = (event.kind.value, event.plant, event.stack, event.pollutant, str(event.ts_ns))
        if key not in day.notified:
            day.notified.add(key)
            self._hand_on(event)

    def _hand_on(self, event: ComplianceEvent) -> None:
        # structlog's console renderer reserves "stack" for tracebacks: use "source".
        log.warning(
            "compliance event",
            kind=event.kind.value,
            source=f"{event.plant}/{event.stack}/{event.pollutant}",
            message=event.message,
        )
        if self._on_event is not None:
            self._on_event(event)
