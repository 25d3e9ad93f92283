"""The compliance engine: recorded or live readings in, one report per stack and pollutant out.

The same code serves ``stackwatch compliance`` (a recording) and the live service (the
readings of the days so far): every number is computed from the short-term averages of whole
local days, so a result never depends on how the input was batched or ordered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from zoneinfo import ZoneInfo

from stream.compliance import calrange, mass
from stream.compliance.averaging import PeriodTotals, align_down, confidence_interval, validated
from stream.compliance.chain import Floats, PollutantSta, StackChain
from stream.compliance.config import CiSource
from stream.compliance.forecast import Forecast, daily_forecast, expected_sta_per_day
from stream.compliance.longterm import (
    DailyRecord,
    daily_records,
    invalid_day_events,
    local_day_bounds_ns,
    monthly_averages,
    yearly_averages,
)
from stream.compliance.qal3_checks import qal3_events
from stream.compliance.regimes import CriterionResult, lcp_criteria, wi_criteria
from stream.compliance.report import PollutantReport, StaSeries
from stream.compliance.types import Regime
from stream.model import NS_PER_S, SensorKey, datetime_from_ns
from stream.plant import EmissionLimit, PlantConfig, Quantity, StackConfig
from stream.series import SensorSeries

TEN_MINUTES_S = 600


@dataclass(frozen=True)
class EvaluationWindow:
    """Whole local days ``[first, last]`` of one plant, as epoch-ns bounds."""

    first: date
    last: date
    start_ns: int
    end_ns: int


def window_for(series: Mapping[str, SensorSeries], tz: str) -> EvaluationWindow | None:
    """The local days covered by any reading of ``series`` (None without readings)."""
    lows = [int(s.ts_ns.min()) for s in series.values() if len(s)]
    highs = [int(s.ts_ns.max()) for s in series.values() if len(s)]
    if not lows:
        return None
    zone = ZoneInfo(tz)
    first = datetime_from_ns(min(lows)).astimezone(zone).date()
    last = datetime_from_ns(max(highs)).astimezone(zone).date()
    return EvaluationWindow(
        first, last, local_day_bounds_ns(first, tz)[0], local_day_bounds_ns(last, tz)[1]
    )


def ci_for(stack: StackConfig, quantity: Quantity, limit: EmissionLimit) -> float:
    """Confidence interval subtracted from measured averages (IED Annex V Part 3 pt 9-10,
    Annex VI Part 6 pt 1.3 / Part 8; check C3): ``p × ELV`` of the daily ELV (else the
    shortest-period ELV given), or the QAL2 uncertainty where the permit says so (capped at
    ``p × ELV``). The permit's ``ci_fraction`` replaces the regime's table value; the plant
    configuration refuses a pollutant that has neither."""
    elv = next(
        v
        for v in (limit.daily, limit.half_hour, limit.hourly, limit.monthly, limit.yearly)
        if v is not None
    )
    qal2: float | None = None
    if stack.compliance.ci_source is CiSource.QAL2:
        calibration = stack.sensors[stack.pollutant_sensors(quantity)[0]].calibration
        qal2 = calibration.uncertainty if calibration else None
    return confidence_interval(
        stack.compliance.regime.value,
        quantity.value,
        elv,
        qal2_uncertainty=qal2,
        fraction=limit.ci_fraction,
    )


def stack_periods(stack: StackConfig) -> tuple[int, ...]:
    """The averaging periods (s) the engine computes for a stack: the STA period, and 10 min
    where a WI stack has a 10-minute CO limit (IED Annex VI Part 3)."""
    periods = [stack.compliance.sta_period_s]
    co = stack.limits.get(Quantity.CO)
    if stack.compliance.regime is Regime.WI and co is not None and co.ten_minute is not None:
        periods.append(TEN_MINUTES_S)
    return tuple(periods)


Carried = Mapping[tuple[str, int], PeriodTotals]
"""Totals of readings the caller no longer holds, per (sensor, period_s); see PeriodTotals."""


class ComplianceEngine:
    """Evaluates every limited pollutant of every stack of a plant configuration."""

    def __init__(self, config: PlantConfig) -> None:
        self.config = config

    def evaluate(
        self, series: Mapping[SensorKey, SensorSeries], *, now_ns: int | None = None
    ) -> list[PollutantReport]:
        """Reports for all stacks with limits. ``now_ns`` (live use) adds a forecast for the
        day it falls in."""
        reports: list[PollutantReport] = []
        for plant_id, plant in self.config.plants.items():
            plant_series = {k: v for k, v in series.items() if k.plant == plant_id}
            window = window_for({"/".join(k): v for k, v in plant_series.items()}, plant.timezone)
            if window is None:
                continue
            for stack_id, stack in plant.stacks.items():
                if not stack.limits:
                    continue
                data = {k.sensor: v for k, v in plant_series.items() if k.stack == stack_id}
                reports += self.evaluate_stack(
                    plant_id,
                    stack_id,
                    stack,
                    data,
                    window=window,
                    tz=plant.timezone,
                    now_ns=now_ns,
                )
        return reports

    def evaluate_stack(
        self,
        plant_id: str,
        stack_id: str,
        stack: StackConfig,
        data: Mapping[str, SensorSeries],
        *,
        window: EvaluationWindow,
        tz: str,
        now_ns: int | None = None,
        qal3: bool = True,
        carried: Carried | None = None,
    ) -> list[PollutantReport]:
        """Reports of one stack over ``window``. ``qal3=False`` skips the QAL3 charts (the
        live engine runs them over the whole check history instead of one day). ``carried``:
        totals of earlier readings of the window that ``data`` no longer holds (live
        compliance), per sensor and period length, aligned at the window's first period."""
        comp = stack.compliance
        end_ns = window.end_ns
        if now_ns is not None:  # live: later periods are not over yet, so not missing either
            end_ns = max(window.start_ns, min(end_ns, align_down(now_ns, comp.sta_period_s)))
        if carried and qal3:
            raise ValueError("the QAL3 charts need every reading: pass qal3=False with carried")
        ctx = _StackContext(
            plant_id, stack_id, stack, dict(data), window, end_ns, tz, now_ns, qal3, carried or {}
        )
        chain = StackChain(
            stack,
            ctx.data,
            start_ns=window.start_ns,
            end_ns=end_ns,
            period_s=comp.sta_period_s,
            carried=ctx.carried_for(comp.sta_period_s),
        )
        flow = chain.flow()
        reports = []
        for quantity, limit in stack.limits.items():
            sta = chain.pollutant(quantity)
            ci = ci_for(stack, quantity, limit)
            reports.append(self._report(ctx, quantity, limit, sta, ci=ci, flow=flow))
        return reports

    def _report(
        self,
        ctx: _StackContext,
        quantity: Quantity,
        limit: EmissionLimit,
        sta: PollutantSta,
        *,
        ci: float,
        flow: Floats | None,
    ) -> PollutantReport:
        comp = ctx.stack.compliance
        val = validated(sta.normalised, ci)
        # The analyser's STA batch with the chain's state (peripheral gaps make STA invalid).
        batch = replace(sta.sta, state=sta.state)
        daily = daily_records(
            batch,
            sta.normalised,
            val,
            tz=ctx.tz,
            max_invalid_sta_per_day=comp.invalid_sta_per_day_limit,
            min_valid_hours=comp.min_valid_hours_per_day,
        )
        monthly = monthly_averages(
            batch, sta.normalised, val, daily, tz=ctx.tz, min_coverage=comp.lta_min_coverage
        )
        yearly = yearly_averages(
            batch, sta.normalised, val, daily, tz=ctx.tz, min_coverage=comp.lta_min_coverage
        )
        if comp.regime is Regime.LCP:
            criteria = lcp_criteria(
                elv_monthly=limit.monthly,
                elv_daily=limit.daily,
                elv_hourly_basis=limit.daily if limit.hourly is None else limit.hourly,
                monthly=monthly,
                daily=daily,
                hourly_validated=val[sta.valid],
                daily_factor=comp.daily_limit_factor,
            )
        else:
            criteria = self._wi_criteria(ctx, quantity, limit, sta=sta, val=val, daily=daily, ci=ci)
        totals, kg = None, None
        if flow is not None:
            kg = mass.mass_kg(sta.sta.start_ns, sta.standard, flow, comp.sta_period_s)
            totals = mass.mass_totals(sta.sta.start_ns, kg, ctx.tz)
        weeks: list[calrange.WeekResult] = []
        analyser = ctx.stack.pollutant_sensors(quantity)[0]
        calibration = ctx.stack.sensors[analyser].calibration
        if calibration is not None and calibration.upper is not None:
            weeks = calrange.weekly_results(
                sta.sta.start_ns, sta.normalised, sta.valid, calibration.upper, ctx.tz
            )
        forecast = None
        if ctx.now_ns is not None and limit.daily is not None:
            forecast = _forecast(sta, val, limit.daily, ctx)
        return PollutantReport(
            plant=ctx.plant_id,
            stack=ctx.stack_id,
            pollutant=quantity.value,
            regime=comp.regime.value,
            reference_o2=ctx.stack.reference_o2,
            limits=limit,
            confidence_interval=ci,
            sta_period_s=comp.sta_period_s,
            daily_limit_factor=comp.daily_limit_factor,
            sta_valid=int((sta.state == 0).sum()),
            sta_invalid=int((sta.state == 1).sum()),
            sta_excluded=int((sta.state == 2).sum()),
            daily=daily,
            monthly=monthly,
            yearly=yearly,
            invalid_days=sum(1 for d in daily if d.invalid_day),
            events=invalid_day_events(daily, max_per_year=comp.max_invalid_days_per_year),
            criteria=criteria,
            mass_kg_per_day=None if totals is None else totals.daily_kg,
            mass_kg_per_year=None if totals is None else totals.yearly_kg,
            calibration_weeks=weeks,
            forecast=forecast,
            qal3_events=qal3_events(ctx.stack, analyser, ctx.data) if ctx.qal3 else (),
            sta=StaSeries(sta.sta.start_ns, sta.normalised, val, sta.state, sta.sta.n_valid, kg),
        )

    @staticmethod
    def _wi_criteria(
        ctx: _StackContext,
        quantity: Quantity,
        limit: EmissionLimit,
        *,
        sta: PollutantSta,
        val: Floats,
        daily: list[DailyRecord],
        ci: float,
    ) -> list[CriterionResult]:
        ten_minute = None
        if quantity is Quantity.CO and limit.ten_minute is not None:
            chain10 = StackChain(
                ctx.stack,
                ctx.data,
                start_ns=ctx.window.start_ns,
                end_ns=align_down(ctx.end_ns, TEN_MINUTES_S),
                period_s=TEN_MINUTES_S,
                carried=ctx.carried_for(TEN_MINUTES_S),
            )
            co = chain10.pollutant(quantity)
            co_val = validated(co.normalised, ci)
            ten_minute = (co.sta.start_ns[co.valid], co_val[co.valid])
        return wi_criteria(
            pollutant=quantity.value,
            elv_daily=limit.daily,
            elv_half_hour_a=limit.half_hour,
            elv_half_hour_b=limit.half_hour_b,
            daily=daily,
            half_hourly_validated=val[sta.valid],
            co_ten_minute=ten_minute,
            elv_co_ten_minute=limit.ten_minute,
        )


@dataclass(frozen=True)
class _StackContext:
    plant_id: str
    stack_id: str
    stack: StackConfig
    data: dict[str, SensorSeries]
    window: EvaluationWindow
    end_ns: int  # end of the evaluated periods (earlier than the window's end when live)
    tz: str
    now_ns: int | None
    qal3: bool
    carried: Carried

    def carried_for(self, period_s: int) -> dict[str, PeriodTotals]:
        return {sid: t for (sid, p), t in self.carried.items() if p == period_s}


def _forecast(
    sta: PollutantSta, val: Floats, elv_daily: float, ctx: _StackContext
) -> Forecast | None:
    """Today's forecast from the finished, valid STA of the day ``ctx.now_ns`` falls in."""
    assert ctx.now_ns is not None
    period_s = ctx.stack.compliance.sta_period_s
    today = datetime_from_ns(ctx.now_ns).astimezone(ZoneInfo(ctx.tz)).date()
    start, _ = local_day_bounds_ns(today, ctx.tz)
    starts = sta.sta.start_ns
    done = (starts >= start) & (starts + period_s * NS_PER_S <= ctx.now_ns)
    so_far = val[done & sta.valid]
    if not len(so_far):
        return None
    return daily_forecast(
        so_far, elv_daily=elv_daily, n_expected=expected_sta_per_day(today, ctx.tz, period_s)
    )
