"""The compliance engine end to end: readings in, reports out, on small plants built here.

Each test feeds field-level readings (with status) for whole local days and checks the
numbers the engine reports against the worked examples of ``shared/docs/emission-rules.md``
(C1 chain, C2 ppm, C3 validated daily average, C4 invalid days, C6 WI rules, C9 forecast) and
against the rules the README lists (operating modes, peripherals, calibration, mass).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.compliance.chain import StackChain
from stream.compliance.engine import ComplianceEngine
from stream.compliance.longterm import DailyRecord, local_day_bounds_ns
from stream.compliance.report import PollutantReport, to_json
from stream.model import NS_PER_S, SensorKey
from stream.plant import PlantConfig, Quantity
from stream.series import SensorSeries

TZ = "Europe/Vienna"
DAY = date(2026, 6, 1)  # a Monday, 24 h long
HOUR_NS = 3600 * NS_PER_S
VALID, MAINTENANCE, MALFUNCTION, CALIBRATION = 0, 1, 2, 3
NO2_PER_PPM = 46.0055 / 22.414  # rules A3: NOx as NO2, mg/Nm3 per ppm


def sensor(quantity: str, unit: str, hi: float = 5000.0, **extra: Any) -> dict[str, Any]:
    return {"quantity": quantity, "unit": unit, "valid_range": [0, hi], "interval_s": 60} | extra


def plant(stack: dict[str, Any], tz: str = TZ) -> PlantConfig:
    return PlantConfig.model_validate({"plants": {"p": {"timezone": tz, "stacks": {"s": stack}}}})


def day_start(day: date = DAY) -> int:
    return local_day_bounds_ns(day, TZ)[0]


def hourly(
    values: npt.ArrayLike,
    status: npt.ArrayLike = VALID,
    *,
    start_ns: int | None = None,
    interval_s: int = 60,
) -> SensorSeries:
    """Readings every ``interval_s`` for consecutive hours: hour ``i`` has value ``values[i]``
    and status ``status[i]`` (scalars broadcast over 24 hours)."""
    vals = np.asarray(values, np.float64)
    n_hours = vals.size if vals.ndim else 24
    vals = np.broadcast_to(vals, (n_hours,))
    codes = np.broadcast_to(np.asarray(status, np.int8), (n_hours,))
    per_hour = 3600 // interval_s
    start = day_start() if start_ns is None else start_ns
    ts = start + np.arange(n_hours * per_hour, dtype=np.int64) * interval_s * NS_PER_S
    return SensorSeries(ts, np.repeat(vals, per_hour), np.repeat(codes, per_hour))


def evaluate(
    config: PlantConfig, data: dict[str, SensorSeries], now_ns: int | None = None
) -> dict[str, PollutantReport]:
    """Reports of stack ``p/s`` by pollutant."""
    series = {SensorKey("p", "s", sid): s for sid, s in data.items()}
    reports = ComplianceEngine(config).evaluate(series, now_ns=now_ns)
    return {r.pollutant: r for r in reports}


def normalised_sta(config: PlantConfig, data: dict[str, SensorSeries], q: Quantity) -> Any:
    """The hourly normalised STA of one local day, straight from the chain."""
    start, end = local_day_bounds_ns(DAY, TZ)
    stack = config.plants["p"].stacks["s"]
    return StackChain(stack, data, start_ns=start, end_ns=end, period_s=3600).pollutant(q)


def only_day(report: PollutantReport) -> DailyRecord:
    [record] = report.daily
    return record


def criterion(report: PollutantReport, name: str) -> Any:
    [c] = [c for c in report.criteria if c.name == name]
    return c


# --- C1 / C2 and the conversions of the chain ------------------------------------------------


def test_c1_wet_no_in_ppm_becomes_nox_as_no2_at_reference_o2() -> None:
    """C1: NO 120 ppm wet, H2O 18 %, O2 7.4 % wet, reference 6 % → 376.2 mg/Nm³ every hour."""
    config = plant(
        {
            "reference_o2": 6,
            "sensors": {
                "no": sensor("no", "ppm", basis="wet"),
                "h2o": sensor("h2o", "%", hi=100),
                "o2": sensor("o2", "%", hi=25, basis="wet"),
            },
            "limits": {"nox": {"daily": 200}},
        }
    )
    data = {"no": hourly(120.0), "h2o": hourly(18.0), "o2": hourly(7.4)}

    no_dry, o2_dry = 120.0 * 100 / 82, 7.4 * 100 / 82
    expected = no_dry * NO2_PER_PPM * (21 - 6) / (21 - o2_dry)
    sta = normalised_sta(config, data, Quantity.NOX)
    assert sta.valid.all() and len(sta.normalised) == 24
    assert [round(float(v), 1) for v in sta.normalised] == [376.2] * 24
    np.testing.assert_allclose(sta.normalised, expected, rtol=1e-12)
    # standard = dry mg/Nm3 at the measured O2 (before O2 normalisation): 300.37
    assert round(float(sta.standard[0]), 2) == 300.37

    report = evaluate(config, data)["nox"]
    day = only_day(report)
    assert report.confidence_interval == pytest.approx(40.0)  # LCP NOx 20 % of 200
    assert day.valid and day.n_valid_sta == 24
    assert day.measured_mean == pytest.approx(expected, rel=1e-12)
    assert day.validated_mean == pytest.approx(expected - 40.0, rel=1e-12)
    # 336.2 > 110 % of 200: the daily criterion fails, so the stack is not compliant
    assert not criterion(report, "lcp_daily").passed
    assert not report.compliant


def test_nox_from_separate_no_and_no2_analysers_in_ppm() -> None:
    """Rules A3: NOx[mg/Nm3] = (NO_ppm + NO2_ppm) × 2.0525 (no reference O2: identity)."""
    config = plant(
        {
            "sensors": {"no": sensor("no", "ppm"), "no2": sensor("no2", "ppm")},
            "limits": {"nox": {"daily": 200}},
        }
    )
    sta = normalised_sta(config, {"no": hourly(100.0), "no2": hourly(5.0)}, Quantity.NOX)
    assert [round(float(v), 1) for v in sta.normalised] == [215.5] * 24


def test_no_in_mg_is_expressed_as_no2() -> None:
    """NO in mg/Nm3 × 46.0055/30.0061 (rules A3)."""
    config = plant({"sensors": {"no": sensor("no", "mg/Nm3")}, "limits": {"nox": {"daily": 200}}})
    sta = normalised_sta(config, {"no": hourly(100.0)}, Quantity.NOX)
    np.testing.assert_allclose(sta.normalised, 100.0 * 46.0055 / 30.0061, rtol=1e-12)


@pytest.mark.parametrize(
    ("molar_volume_l", "so2", "co"),
    [(22.414, 285.82, 124.97), (22.4195, 285.75, 124.94)],
    ids=["101.325kPa", "101.3kPa"],
)
def test_c2_ppm_to_mg(molar_volume_l: float, so2: float, co: float) -> None:
    """C2: 100 ppm SO2 → 285.82 mg/Nm³ (285.75 at 101.3 kPa), 100 ppm CO → 124.97."""
    config = plant(
        {
            "compliance": {"molar_volume_l": molar_volume_l},
            "sensors": {"so2": sensor("so2", "ppm"), "co": sensor("co", "ppm")},
            "limits": {"so2": {"daily": 200}, "co": {"daily": 100}},
        }
    )
    data = {"so2": hourly(100.0), "co": hourly(100.0)}
    reports = evaluate(config, data)
    assert round(only_day(reports["so2"]).measured_mean or 0, 2) == so2
    assert round(only_day(reports["co"]).measured_mean or 0, 2) == co
    # LCP confidence intervals: SO2 20 %, CO 10 % of the daily ELV
    assert round(only_day(reports["so2"]).validated_mean or 0, 2) == round(so2 - 40, 2)
    assert round(only_day(reports["co"]).validated_mean or 0, 2) == round(co - 10, 2)


@pytest.mark.parametrize(
    ("t_unit", "t", "p_unit", "p"),
    [("°C", 150.0, "hPa", 980.0), ("K", 423.15, "kPa", 98.0), ("degC", 150.0, "mbar", 980.0)],
)
def test_actual_to_standard_conditions(t_unit: str, t: float, p_unit: str, p: float) -> None:
    """Rules A3: C × (T/273.15) × (101.3/p): 100 mg/m³ at 150 °C, 980 hPa → 160.13 mg/Nm³."""
    config = plant(
        {
            "sensors": {
                "dust": sensor("dust", "mg/Nm3", conditions="actual"),
                "t": sensor("temperature", t_unit, hi=1500),
                "p": sensor("pressure", p_unit, hi=200_000),
            },
            "limits": {"dust": {"daily": 20}},
        }
    )
    data = {"dust": hourly(100.0), "t": hourly(t), "p": hourly(p)}
    reports = evaluate(config, data)
    assert round(only_day(reports["dust"]).measured_mean or 0, 2) == 160.13


def test_ppm_at_actual_conditions_is_refused() -> None:
    """A ppm (volume) fraction does not depend on T/p: "actual" for it is a config error."""
    with pytest.raises(ValueError, match=r"ppm .* does not depend on temperature and pressure"):
        plant(
            {
                "sensors": {
                    "so2": sensor("so2", "ppm", conditions="actual"),
                    "t": sensor("temperature", "°C", hi=1500),
                    "p": sensor("pressure", "hPa", hi=2000),
                },
                "limits": {"so2": {"daily": 200}},
            }
        )


def test_missing_temperature_invalidates_an_actual_conditions_sta() -> None:
    config = plant(
        {
            "sensors": {
                "dust": sensor("dust", "mg/Nm3", conditions="actual"),
                "t": sensor("temperature", "°C", hi=1500),
                "p": sensor("pressure", "hPa", hi=2000),
            },
            "limits": {"dust": {"daily": 20}},
        }
    )
    t_status = [VALID] * 10 + [MALFUNCTION] + [VALID] * 13
    data = {"dust": hourly(10.0), "t": hourly(150.0, t_status), "p": hourly(980.0)}
    day = only_day(evaluate(config, data)["dust"])
    assert (day.n_valid_sta, day.n_invalid_sta, day.valid) == (23, 1, True)


def test_qal2_calibration_before_normalisation_and_calibration_range() -> None:
    """EN 14181: ŷ = a + b·x on the raw STA, then normalisation; STA above 1.1 × the highest
    QAL2 value are outside the valid calibration range (C10); CI from the QAL2 (DE option)."""
    config = plant(
        {
            "reference_o2": 6,
            "compliance": {"ci_source": "qal2"},
            "sensors": {
                "nox": sensor(
                    "nox",
                    "mg/Nm3",
                    calibration={"a": 2.0, "b": 1.05, "upper": 90, "uncertainty": 31.5},
                ),
                "o2": sensor("o2", "%", hi=25),
            },
            "limits": {"nox": {"daily": 250}},
        }
    )
    data = {"nox": hourly(100.0), "o2": hourly(9.0)}
    report = evaluate(config, data)["nox"]
    day = only_day(report)
    assert day.measured_mean == pytest.approx(107.0 * 15 / 12)  # (2 + 1.05·100) at 6 % O2
    assert report.confidence_interval == pytest.approx(31.5)  # min(QAL2 31.5, 20 % × 250)
    assert day.validated_mean == pytest.approx(107.0 * 15 / 12 - 31.5)
    [week] = report.calibration_weeks
    assert (week.n_valid, week.n_outside, week.increment) == (24, 24, 6)  # 133.75 > 99


@pytest.mark.parametrize(
    ("quantity", "limit", "ci_source", "expected"),
    [
        ("nox", {"daily": 250, "ci_fraction": 0.2}, "qal2", 31.5),  # QAL2 below 20 % × 250
        ("nox", {"daily": 250, "ci_fraction": 0.1}, "qal2", 25.0),  # capped at 10 % × 250
        ("nox", {"daily": 250, "ci_fraction": 0.1}, "elv_fraction", 25.0),
        ("nh3", {"daily": 10, "ci_fraction": 0.4}, "elv_fraction", 4.0),  # DE 44. BImSchV
    ],
)
def test_confidence_interval_sources(
    quantity: str, limit: dict[str, float], ci_source: str, expected: float
) -> None:
    """IED Annex V Part 3 pt 9 / DE 44. BImSchV Anl. 2: p × ELV (p from the permit or the
    table), or the QAL2 uncertainty capped at p × ELV."""
    config = plant(
        {
            "compliance": {"ci_source": ci_source},
            "sensors": {
                quantity: sensor(quantity, "mg/Nm3", calibration={"uncertainty": 31.5}),
            },
            "limits": {quantity: limit},
        }
    )
    report = evaluate(config, {quantity: hourly(100.0)})[quantity]
    assert report.confidence_interval == pytest.approx(expected)
    assert only_day(report).validated_mean == pytest.approx(100.0 - expected)


def test_pollutant_without_a_confidence_interval_needs_one_in_the_permit() -> None:
    """The LCP table has no CI for NH3: the configuration must say, never a silent zero."""
    with pytest.raises(ValueError, match="defines no confidence interval for it; set ci_fraction"):
        plant({"sensors": {"nh3": sensor("nh3", "mg/Nm3")}, "limits": {"nh3": {"daily": 10}}})


def test_mass_uses_the_unnormalised_unvalidated_concentration() -> None:
    """EN 17255-1: mass = concentration (dry, standard, at measured O2) × flow."""
    config = plant(
        {
            "reference_o2": 6,
            "sensors": {
                "nox": sensor("nox", "mg/Nm3"),
                "o2": sensor("o2", "%", hi=25),
                "flow": sensor("flow", "Nm3/h", hi=1e6),
            },
            "limits": {"nox": {"daily": 300}},
        }
    )
    data = {"nox": hourly(200.0), "o2": hourly(9.0), "flow": hourly(100_000.0)}
    report = evaluate(config, data)["nox"]
    assert only_day(report).measured_mean == pytest.approx(250.0)  # 200 × 15/12
    assert report.mass_kg_per_day is not None
    assert list(report.mass_kg_per_day) == [DAY]
    assert report.mass_kg_per_day[DAY] == pytest.approx(480.0)  # 200 mg × 1e5 Nm3/h × 24 h


# --- C3 / C4: validated daily averages and invalid days ---------------------------------------

NOX_ONLY = {"sensors": {"nox": sensor("nox", "mg/Nm3")}}


def c3_day(n_flagged: int, flag: int = MAINTENANCE) -> SensorSeries:
    """24 hours: ``n_flagged`` flagged, then 280 mg/Nm3, the last hour 330 (C3/C4)."""
    values = [999.0] * n_flagged + [280.0] * (23 - n_flagged) + [330.0]
    status = [flag] * n_flagged + [VALID] * (24 - n_flagged)
    return hourly(values, status)


def test_c3_validated_daily_average() -> None:
    """C3: 3 h maintenance, 20 h at 280, 1 h at 330, ELV 250, CI 20 % → 282.38 / 232.38, PASS."""
    config = plant(NOX_ONLY | {"limits": {"nox": {"daily": 250, "ci_fraction": 0.2}}})
    report = evaluate(config, {"nox": c3_day(3)})["nox"]
    day = only_day(report)
    assert (day.valid, day.invalid_day, day.n_valid_sta, day.n_invalid_sta) == (True, False, 21, 3)
    assert round(day.measured_mean or 0, 2) == 282.38  # above the ELV: a naive DAHS alarms
    assert round(day.validated_mean or 0, 2) == 232.38
    daily = criterion(report, "lcp_daily")
    assert daily.passed and daily.limit == pytest.approx(275.0) and daily.n == 1
    assert round(daily.worst, 2) == 232.38
    assert report.compliant
    assert (report.sta_valid, report.sta_invalid, report.sta_excluded) == (21, 3, 0)


@pytest.mark.parametrize("flag", [MAINTENANCE, MALFUNCTION, CALIBRATION])
def test_c4_four_flagged_hours_invalidate_the_day_and_keep_it_out_of_the_month(flag: int) -> None:
    """C4: 4 flagged hours → invalid day: not in the monthly average, counted once."""
    config = plant(NOX_ONLY | {"limits": {"nox": {"daily": 250, "monthly": 250}}})
    second = hourly(200.0, start_ns=day_start(DAY + timedelta(days=1)))
    first = c3_day(4, flag)
    data = {
        "nox": SensorSeries(
            np.concatenate([first.ts_ns, second.ts_ns]),
            np.concatenate([first.values, second.values]),
            np.concatenate([first.status, second.status]),
        )
    }
    report = evaluate(config, data)["nox"]
    bad, good = report.daily
    assert (bad.invalid_day, bad.valid, bad.n_invalid_sta) == (True, False, 4)
    assert (good.invalid_day, good.valid) == (False, True)
    assert report.invalid_days == 1
    [month] = report.monthly
    assert month.n_sta == 24 and month.measured_mean == pytest.approx(200.0)
    assert month.validated_mean == pytest.approx(150.0)
    assert criterion(report, "lcp_daily").n == 1  # only the valid day is judged
    assert report.events == []


def invalid_days_series(first: date, pattern: list[bool], interval_s: int = 600) -> SensorSeries:
    """One day per entry from ``first``: True → 4 hours in maintenance (an invalid day)."""
    parts = []
    for i, bad in enumerate(pattern):
        status = [MAINTENANCE] * 4 + [VALID] * 20 if bad else VALID
        start = day_start(first + timedelta(days=i))
        parts.append(hourly(100.0, status, start_ns=start, interval_s=interval_s))
    return SensorSeries(
        np.concatenate([p.ts_ns for p in parts]),
        np.concatenate([p.values for p in parts]),
        np.concatenate([p.status for p in parts]),
    )


def counter_config() -> PlantConfig:
    return plant(
        {
            "sensors": {"nox": sensor("nox", "mg/Nm3", interval_s=600)},
            "limits": {"nox": {"daily": 250}},
        }
    )


@pytest.mark.parametrize(("n_invalid", "n_events"), [(10, 0), (11, 1), (12, 2)])
def test_c4_yearly_invalid_day_counter(n_invalid: int, n_events: int) -> None:
    """C4: more than 10 invalid days in a calendar year → "reliability improvement required"
    on the 11th (and a reminder for every further one). 10-min readings: 4 of 6 per hour
    cover 2/3."""
    first = date(2026, 1, 5)
    pattern = [True] * n_invalid + [False] * 3
    report = evaluate(counter_config(), {"nox": invalid_days_series(first, pattern)})["nox"]
    assert report.invalid_days == n_invalid
    assert len(report.events) == n_events
    if n_events:
        event = report.events[0]
        assert (event.date, event.count) == (first + timedelta(days=10), 11)
        assert "reliability improvement required" in event.message
        assert to_json(report)["events"][0]["date"] == "2026-01-15"


def test_c4_counter_restarts_on_1_january() -> None:
    """Six invalid days at the end of 2025 and six at the start of 2026: 12, but no event."""
    pattern = [True] * 12  # 26 Dec 2025 … 6 Jan 2026
    report = evaluate(counter_config(), {"nox": invalid_days_series(date(2025, 12, 26), pattern)})
    nox = report["nox"]
    assert nox.invalid_days == 12
    assert nox.events == []
    assert [y.start.year for y in nox.yearly] == [2025, 2026]


def test_a_day_without_any_data_is_an_invalid_day() -> None:
    """Data loss while the plant runs (no mode sensor says otherwise) counts against the AMS."""
    pattern_days = [DAY, DAY + timedelta(days=2)]
    parts = [hourly(100.0, start_ns=day_start(d)) for d in pattern_days]
    data = {
        "nox": SensorSeries(
            np.concatenate([p.ts_ns for p in parts]),
            np.concatenate([p.values for p in parts]),
            np.concatenate([p.status for p in parts]),
        )
    }
    report = evaluate(plant(NOX_ONLY | {"limits": {"nox": {"daily": 250}}}), data)["nox"]
    assert [(d.date, d.invalid_day) for d in report.daily] == [
        (DAY, False),
        (DAY + timedelta(days=1), True),
        (DAY + timedelta(days=2), False),
    ]


# --- operating modes and peripherals --------------------------------------------------------


def mode_config() -> PlantConfig:
    return plant(
        {
            "sensors": {"nox": sensor("nox", "mg/Nm3"), "mode": sensor("mode", "-", hi=3)},
            "limits": {"nox": {"daily": 250}},
        }
    )


@pytest.mark.parametrize("startup_status", [VALID, MAINTENANCE])
@pytest.mark.parametrize("sparse_mode", [False, True], ids=["sampled", "on-change"])
def test_startup_hours_are_excluded_not_invalid(startup_status: int, sparse_mode: bool) -> None:
    """IED Annex V Part 4: start-up (mode 1) for the first 4 hours → those STA are EXCLUDED,
    not invalid: the day stays valid and the start-up values never enter the averages."""
    nox = hourly([900.0] * 4 + [150.0] * 20, [startup_status] * 4 + [VALID] * 20)
    if sparse_mode:  # the mode as a step function: one reading per change
        start = day_start()
        mode = SensorSeries(
            np.array([start, start + 4 * HOUR_NS], np.int64),
            np.array([1.0, 0.0]),
            np.zeros(2, np.int8),
        )
    else:
        mode = hourly([1.0] * 4 + [0.0] * 20)
    report = evaluate(mode_config(), {"nox": nox, "mode": mode})["nox"]
    day = only_day(report)
    assert (report.sta_valid, report.sta_invalid, report.sta_excluded) == (20, 0, 4)
    assert (day.valid, day.invalid_day, day.n_excluded_sta, day.n_invalid_sta) == (
        True,
        False,
        4,
        0,
    )
    assert day.measured_mean == pytest.approx(150.0)
    assert day.validated_mean == pytest.approx(100.0)


def test_without_a_mode_signal_the_startup_values_count() -> None:
    config = plant(NOX_ONLY | {"limits": {"nox": {"daily": 250}}})
    nox = hourly([900.0] * 4 + [150.0] * 20)
    day = only_day(evaluate(config, {"nox": nox})["nox"])
    assert day.measured_mean == pytest.approx((4 * 900 + 20 * 150) / 24)


@pytest.mark.parametrize(("o2_down_hours", "invalid_day"), [(2, False), (4, True)])
def test_o2_analyser_malfunction_invalidates_pollutant_sta(
    o2_down_hours: int, invalid_day: bool
) -> None:
    """No O2 STA → no normalised pollutant STA: the hours are INVALID and count for C4."""
    config = plant(
        {
            "reference_o2": 6,
            "sensors": {"nox": sensor("nox", "mg/Nm3"), "o2": sensor("o2", "%", hi=25)},
            "limits": {"nox": {"daily": 250}},
        }
    )
    o2_status = [VALID] * 5 + [MALFUNCTION] * o2_down_hours + [VALID] * (19 - o2_down_hours)
    nox_values = [200.0] * 5 + [600.0] * o2_down_hours + [200.0] * (19 - o2_down_hours)
    data = {"nox": hourly(nox_values), "o2": hourly(9.0, o2_status)}
    report = evaluate(config, data)["nox"]
    day = only_day(report)
    assert day.n_invalid_sta == o2_down_hours and day.n_valid_sta == 24 - o2_down_hours
    assert day.invalid_day is invalid_day
    assert day.measured_mean == pytest.approx(250.0)  # the 600s are not used
    assert report.sta_invalid == o2_down_hours
    sta = normalised_sta(config, data, Quantity.NOX)
    assert np.isnan(sta.normalised[5 : 5 + o2_down_hours]).all()


def test_sta_needs_two_thirds_of_the_hour() -> None:
    """40 valid one-minute readings make an hour valid (2/3), 39 do not."""
    config = plant(NOX_ONLY | {"limits": {"nox": {"daily": 250}}})
    series = hourly(100.0)
    status = series.status.copy()
    status[20:60] = CALIBRATION  # hour 0: 20 valid → invalid
    status[60 + 40 : 120] = CALIBRATION  # hour 1: exactly 40 valid → valid
    status[120 + 39 : 180] = CALIBRATION  # hour 2: 39 valid → invalid
    day = only_day(evaluate(config, {"nox": replace(series, status=status)})["nox"])
    assert (day.n_valid_sta, day.n_invalid_sta) == (22, 2)


# --- WI regime (half-hours, columns A/B, CO 10-minute values) and the forecast ---------------


def wi_config(pollutant: str, limits: dict[str, float]) -> PlantConfig:
    return plant(
        {
            "compliance": {"regime": "wi"},
            "sensors": {pollutant: sensor(pollutant, "mg/Nm3")},
            "limits": {pollutant: limits},
        }
    )


def per_slot(values: list[float], slot_s: int, interval_s: int = 60) -> SensorSeries:
    """Readings every ``interval_s`` with value ``values[i]`` in the i-th ``slot_s`` slot."""
    per = slot_s // interval_s
    ts = day_start() + np.arange(len(values) * per, dtype=np.int64) * interval_s * NS_PER_S
    return SensorSeries(ts, np.repeat(values, per), np.zeros(ts.size, np.int8))


@pytest.mark.parametrize(("n_high", "passed"), [(7, True), (8, False)])
def test_c6_co_ten_minute_rule(n_high: int, passed: bool) -> None:
    """C6: 144 ten-minute CO values in 24 h, ≤ 7 above 150 (95 %) → PASS, 8 → FAIL.
    Validated = measured − 10 % of the daily ELV 50: 160 → 155 > 150."""
    config = wi_config("co", {"daily": 50, "ten_minute": 150})
    values = [20.0] * (144 - n_high) + [160.0] * n_high
    report = evaluate(config, {"co": per_slot(values, 600)})["co"]
    assert report.sta_period_s == 1800 and report.sta_valid == 48
    ten = criterion(report, "wi_co_ten_minute")
    assert (ten.passed, ten.n, ten.count) == (passed, 144, n_high)
    assert ten.allowed == pytest.approx(7.2)
    assert criterion(report, "wi_daily_co").passed
    assert report.compliant is passed


@pytest.mark.parametrize(
    ("n_over_b", "spike", "a_passed", "b_passed"),
    [(1, False, True, True), (2, False, True, False), (0, True, False, True)],
)
def test_c6_half_hour_columns_a_and_b(
    n_over_b: int, spike: bool, a_passed: bool, b_passed: bool
) -> None:
    """C6 (one day, 48 half-hours): count(> B) ≤ 3 % of N = 1.44; no half-hour above A.
    SO2 CI 20 % of 50 = 10: 70 → 60 > B 50; 215 → 205 > A 200."""
    config = wi_config("so2", {"daily": 50, "half_hour": 200, "half_hour_b": 50})
    values = [30.0] * 48
    values[10 : 10 + n_over_b] = [70.0] * n_over_b
    if spike:
        values[30] = 215.0
    report = evaluate(config, {"so2": per_slot(values, 1800)})["so2"]
    col_a, col_b = criterion(report, "wi_half_hour_a"), criterion(report, "wi_half_hour_b")
    assert (col_a.passed, col_b.passed) == (a_passed, b_passed)
    assert col_b.n == 48 and col_b.allowed == pytest.approx(1.44)
    assert col_b.count == n_over_b + spike


def test_wi_invalid_day_allows_five_half_hours() -> None:
    """WI (Annex VI Part 8): 5 discarded half-hours → valid day, 6 → invalid."""
    config = wi_config("so2", {"daily": 50})
    for n_bad, invalid in [(5, False), (6, True)]:
        series = per_slot([30.0] * 48, 1800)
        status = series.status.copy()
        status[: n_bad * 30] = MAINTENANCE
        day = only_day(evaluate(config, {"so2": replace(series, status=status)})["so2"])
        assert (day.n_invalid_sta, day.invalid_day) == (n_bad, invalid)


def test_c9_forecast_at_16h() -> None:
    """C9: daily ELV 250 (validated), at 16:00 32 valid half-hours with validated mean 240 of
    48 expected → the remaining 16 may average at most 270."""
    config = wi_config("nox", {"daily": 250})  # WI NOx CI 20 % = 50: measured 290 → 240
    now_ns = day_start() + 16 * HOUR_NS
    report = evaluate(config, {"nox": per_slot([290.0] * 32, 1800)}, now_ns=now_ns)["nox"]
    forecast = report.forecast
    assert forecast is not None
    assert forecast.n_done == 32 and forecast.n_expected == 48
    assert forecast.validated_mean_so_far == pytest.approx(240.0)
    assert forecast.remaining_allowance == pytest.approx(270.0)
    assert not forecast.prealarm
    assert to_json(report)["forecast"]["remaining_allowance"] == 270.0
    assert evaluate(config, {"nox": per_slot([290.0] * 32, 1800)})["nox"].forecast is None


@pytest.mark.parametrize("minutes_past", [0, 10])
def test_live_evaluation_does_not_count_the_rest_of_today_as_missing(minutes_past: int) -> None:
    """With ``now_ns`` the half-hours still ahead (and the one in progress) are not data loss:
    at 16:00 (or 16:10) today has 32 valid half-hours and is not an invalid day."""
    config = wi_config("nox", {"daily": 250})
    now_ns = day_start() + 16 * HOUR_NS + minutes_past * 60 * NS_PER_S
    series = per_slot([290.0] * 33, 1800)
    inside = series.ts_ns < now_ns
    data = {"nox": SensorSeries(series.ts_ns[inside], series.values[inside], series.status[inside])}
    report = evaluate(config, data, now_ns=now_ns)["nox"]
    day = only_day(report)
    assert (day.n_valid_sta, day.n_invalid_sta, day.invalid_day) == (32, 0, False)
    assert (report.invalid_days, report.sta_invalid) == (0, 0)
    # offline (no "now"), the same readings leave the rest of the day missing: invalid day
    offline = only_day(evaluate(config, data)["nox"])
    assert offline.invalid_day and offline.n_invalid_sta == 16


def test_half_hour_offset_time_zone_is_evaluated() -> None:
    """Local midnight in Asia/Kolkata (UTC+05:30) is not on an hour boundary: the engine still
    puts every reading into an epoch-aligned hourly STA (it used to raise)."""
    config = plant(NOX_ONLY | {"limits": {"nox": {"daily": 250}}}, tz="Asia/Kolkata")
    start = int(datetime(2026, 6, 1, tzinfo=ZoneInfo("UTC")).timestamp()) * NS_PER_S
    report = evaluate(config, {"nox": hourly(100.0, start_ns=start)})["nox"]
    assert report.sta_valid == 24
    assert all(d.measured_mean in (None, pytest.approx(100.0)) for d in report.daily)
    assert sum(d.n_valid_sta for d in report.daily) == 24


# --- independence from batching and order ----------------------------------------------------

IND_DAYS = [date(2026, 3, 28), date(2026, 3, 29), date(2026, 3, 30)]  # 29 March: 23 h (DST)
IND_INTERVAL_S = 300


def independence_config() -> PlantConfig:
    return plant(
        {
            "reference_o2": 6,
            "sensors": {
                "nox": sensor("nox", "mg/Nm3", interval_s=IND_INTERVAL_S),
                "o2": sensor("o2", "%", hi=25, interval_s=IND_INTERVAL_S),
                "mode": sensor("mode", "-", hi=3, interval_s=IND_INTERVAL_S),
            },
            "limits": {"nox": {"daily": 200}},
        }
    )


def random_recording(seed: int, p_bad: float) -> dict[str, SensorSeries]:
    rng = np.random.default_rng(seed)
    start, end = day_start(IND_DAYS[0]), local_day_bounds_ns(IND_DAYS[-1], TZ)[1]
    ts = np.arange(start, end, IND_INTERVAL_S * NS_PER_S, dtype=np.int64)
    n = ts.size

    def status() -> npt.NDArray[np.int8]:
        codes = rng.integers(1, 4, n).astype(np.int8)
        return np.where(rng.random(n) < p_bad, codes, 0).astype(np.int8)

    mode = np.zeros(n)
    block = int(rng.integers(0, n - 36))
    mode[block : block + int(rng.integers(0, 36))] = rng.integers(1, 4)
    return {
        "nox": SensorSeries(ts, rng.uniform(50, 400, n), status()),
        "o2": SensorSeries(ts, rng.uniform(4, 12, n), status()),
        "mode": SensorSeries(ts, mode, np.zeros(n, np.int8)),
    }


def daily(config: PlantConfig, data: dict[str, SensorSeries]) -> list[DailyRecord]:
    return list(evaluate(config, data)["nox"].daily)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), p_bad=st.sampled_from([0.0, 0.1, 0.4]))
def test_daily_records_do_not_depend_on_order_or_batching(seed: int, p_bad: float) -> None:
    """The same readings shuffled, or evaluated day by day, give identical daily records."""
    config = independence_config()
    data = random_recording(seed, p_bad)
    whole = daily(config, data)
    assert [d.date for d in whole] == IND_DAYS

    rng = np.random.default_rng(seed + 1)
    shuffled = {}
    for sid, s in data.items():
        order = rng.permutation(len(s))
        shuffled[sid] = SensorSeries(s.ts_ns[order], s.values[order], s.status[order])
    assert daily(config, shuffled) == whole

    by_day: list[DailyRecord] = []
    for d in IND_DAYS:
        lo, hi = local_day_bounds_ns(d, TZ)
        chunk = {}
        for sid, s in data.items():
            inside = (s.ts_ns >= lo) & (s.ts_ns < hi)
            chunk[sid] = SensorSeries(s.ts_ns[inside], s.values[inside], s.status[inside])
        by_day += daily(config, chunk)
    assert by_day == whole
