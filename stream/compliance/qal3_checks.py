"""QAL3 on recorded check readings: run an analyser's zero and span checks through its control
charts (EN 14181; :mod:`stream.compliance.qal3`) and report when a chart goes out of control.

Check readings come from sensors marked ``check: {analyser, point, reference, s_ams}`` in the
plant configuration. Every reading of such a sensor is a check result, whatever its status
(checks are taken in calibration mode), so live and offline evaluation see the same checks.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from stream.compliance.qal3 import Qal3Chart, Qal3Event
from stream.model import Status
from stream.plant import StackConfig
from stream.series import STATUS_CODE, SensorSeries

_MALFUNCTION = STATUS_CODE[Status.MALFUNCTION]


def qal3_events(
    stack: StackConfig, analyser: str, data: Mapping[str, SensorSeries]
) -> list[Qal3Event]:
    """Out-of-control events of ``analyser``'s charts over all its check readings in ``data``
    (keyed by sensor id), in time order. Empty when the analyser has no check channels."""
    channels = stack.check_channels(analyser)
    if not channels:
        return []
    by_point = {c.point: c for c in channels.values()}
    zero, span = by_point.get("zero"), by_point.get("span")
    chart = Qal3Chart(
        (zero or span).s_ams,  # type: ignore[union-attr]
        span.s_ams if span is not None else None,
    )
    checks: list[tuple[int, str, float, float]] = []
    for sensor_id, channel in channels.items():
        series = data.get(sensor_id)
        if series is None:
            continue
        usable = series.status != _MALFUNCTION
        for ts, value in zip(
            series.ts_ns[usable].tolist(), series.values[usable].tolist(), strict=True
        ):
            checks.append((ts, channel.point, value, channel.reference))
    checks.sort()
    events: list[Qal3Event] = []
    for ts, point, value, reference in checks:
        if np.isfinite(value):
            events += chart.check(point, value, reference, ts)  # type: ignore[arg-type]
    return events
