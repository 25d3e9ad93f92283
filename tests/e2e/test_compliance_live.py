"""The same recording evaluated offline (``stackwatch compliance``'s engine) and replayed live
through MQTT into ``stackwatch run`` gives the same daily validated averages in InfluxDB."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import aiomqtt
import yaml

from simulators.plant import PlantSimulator
from stream.compliance.engine import ComplianceEngine
from stream.model import NS_PER_S, Reading, Status
from stream.plant import PlantConfig
from stream.series import series_from_readings
from tests.e2e.service import ServiceProcess, service_env, wait_until
from tests.servers import InfluxServer, MosquittoServer

DEMO = Path(__file__).parents[2] / "simulators" / "demo_plant.yaml"
VIENNA = ZoneInfo("Europe/Vienna")
DAY1 = datetime(2026, 2, 28, 23, tzinfo=UTC)  # 2026-03-01 00:00 in Europe/Vienna
DAYS = 31  # March 2026, with the 23-hour DST day on the 29th
INTERVAL_S = 300


def recording(config: PlantConfig) -> list[Reading]:
    """A month of plant days and five minutes of the next, with 4 h of NOx maintenance on
    day 1 (an invalid day under the LCP rule) and 2 h of O2 malfunction on day 2."""
    start = int(DAY1.timestamp()) * NS_PER_S
    end = start + (DAYS * 86_400 - 3600 + 300) * NS_PER_S  # DST: the month is 1 h short
    out = []
    for reading in PlantSimulator(config, seed=7, start_ns=start).stream(until_ns=end):
        hour = (reading.ts_ns - start) // (3600 * NS_PER_S)
        if reading.stack == "boiler1" and reading.sensor == "nox" and 2 <= hour < 6:
            reading = replace(reading, status=Status.MAINTENANCE)  # noqa: PLW2901
        elif reading.stack == "boiler1" and reading.sensor == "o2" and 30 <= hour < 32:
            reading = replace(reading, status=Status.MALFUNCTION)  # noqa: PLW2901
        out.append(reading)
    return out


async def publish(port: int, prefix: str, readings: list[Reading]) -> None:
    """One JSON array per sensor and hour, hour by hour (what a gateway would send)."""
    chunks: dict[tuple[int, str, str], list[Reading]] = {}
    for r in readings:
        chunks.setdefault((r.ts_ns // (3600 * NS_PER_S), r.stack, r.sensor), []).append(r)
    async with aiomqtt.Client("127.0.0.1", port) as client:
        for (_, stack, sensor), rs in sorted(chunks.items()):
            payload = [
                {"ts": r.ts_ns // 1_000_000, "value": r.value, "status": r.status.value} for r in rs
            ]
            await client.publish(f"{prefix}/demo/{stack}/{sensor}", json.dumps(payload), qos=1)


def test_live_daily_validated_averages_equal_offline(
    tmp_path: Path,
    mosquitto_server: MosquittoServer,
    influx_server: InfluxServer,
    influx_db: str,
    topic_prefix: str,
) -> None:
    raw = yaml.safe_load(DEMO.read_text())
    for stack in raw["plants"]["demo"]["stacks"].values():
        for sensor in stack["sensors"].values():
            sensor["interval_s"] = INTERVAL_S
    (tmp_path / "plant.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True))
    config = PlantConfig.model_validate(raw)
    readings = recording(config)

    reports = ComplianceEngine(config).evaluate(series_from_readings(readings))
    offline = {(r.stack, r.pollutant, d.date.isoformat()): d for r in reports for d in r.daily}
    march = {(r.stack, r.pollutant): r.monthly[0] for r in reports}
    days = [f"2026-03-{d:02d}" for d in range(1, DAYS + 1)]
    assert offline[("boiler1", "nox", days[0])].invalid_day  # the test data is not trivial
    assert len({k for k in offline if k[2] in days}) == DAYS * 6

    svc = ServiceProcess(
        tmp_path,
        service_env(
            tmp_path / "plant.yaml",
            mosquitto_server.url,
            influx_server.url,
            influx_db,
            topic_prefix,
            STACKWATCH_MQTT_MAX_FUTURE_S=str(10 * 365 * 86_400),
            STACKWATCH_COMPLIANCE_LATENESS_S="0",
        ),
    )
    svc.start().wait_healthy()
    try:
        asyncio.run(publish(mosquitto_server.port, topic_prefix, readings))
        expected = {k for k in offline if k[2] in days}

        def live_days() -> dict[tuple[str, str, str], dict[str, object]] | None:
            result = (
                influx_server.query(
                    "SELECT * FROM compliance_daily WHERE complete = true GROUP BY *", db=influx_db
                )["results"][0].get("series")
                or []
            )
            rows = {}
            for s in result:
                cols = s["columns"]
                for row in s["values"]:
                    fields = dict(zip(cols, row, strict=True))
                    day = (
                        datetime.fromtimestamp(row[0] / NS_PER_S, UTC)
                        .astimezone(__import__("zoneinfo").ZoneInfo("Europe/Vienna"))
                        .date()
                        .isoformat()
                    )
                    rows[(s["tags"]["stack"], s["tags"]["pollutant"], day)] = fields
            return rows if expected <= rows.keys() else None

        live = wait_until(live_days, 60, "complete live daily records")
        months = influx_server.query(
            "SELECT * FROM compliance_period WHERE period = 'month' GROUP BY *", db=influx_db
        )["results"][0]["series"]
    finally:
        assert svc.stop() == 0, svc.logs()

    for key in sorted(expected):
        want, got = offline[key], live[key]
        assert got["valid"] == want.valid, key
        assert got["invalid_day"] == want.invalid_day, key
        for name, value in (
            ("validated_mean", want.validated_mean),
            ("measured_mean", want.measured_mean),
        ):
            if value is None:
                assert got.get(name) is None, key
            else:
                assert abs(float(got[name]) - value) <= 1e-9 * max(1.0, abs(value)), (key, name)

    # The monthly validated average (the whole of March, invalid day excluded) agrees too.
    assert len(months) == 6
    for series in months:
        march_start = [v for v in series["values"] if v[0] == int(DAY1.timestamp()) * NS_PER_S]
        fields = dict(zip(series["columns"], march_start[0], strict=True))
        month = march[(series["tags"]["stack"], series["tags"]["pollutant"])]
        assert fields["n_sta"] == month.n_sta
        assert month.validated_mean is not None
        assert abs(fields["validated_mean"] - month.validated_mean) <= 1e-9 * abs(
            month.validated_mean
        )
