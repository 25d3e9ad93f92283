"""Live models end to end: readings published over MQTT get anomaly scores and PEMS
predictions in InfluxDB, each with its model version; after a restart the score stream
continues warm (no new warm-up) with the same models."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from paho.mqtt import publish

from tests.e2e.service import ServiceProcess, service_env, wait_until
from tests.servers import InfluxServer, MosquittoServer

T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
PLANT = """
plants:
  p1:
    stacks:
      s1:
        sensors:
          nox: {quantity: nox, unit: mg/Nm3, valid_range: [0, 2000]}
          o2: {quantity: o2, unit: "%", valid_range: [0, 25]}
          load: {quantity: load, unit: "%", valid_range: [0, 120]}
        detection: {warmup_s: 60}
        pems:
          - {target: nox, features: [o2, load], training_rows: 200}
"""


def steps(first: int, last: int) -> list[tuple[str, str, int, int]]:
    """Messages of time steps ``first..last-1``, sensor by sensor within a step."""
    rng = random.Random(first)
    load = 70.0
    out = []
    for i in range(first, last):
        load = min(100.0, max(40.0, load + rng.gauss(0, 1.0)))
        o2 = 15.0 - 0.05 * load + rng.gauss(0, 0.1)
        nox = 20.0 + 0.5 * load + 2.0 * o2 + rng.gauss(0, 0.5)
        for sensor, value in (("nox", nox), ("o2", o2), ("load", load)):
            payload = json.dumps({"ts": T0_MS + i * 1000, "value": round(value, 3)})
            out.append((sensor, payload, 1, 0))
    return out


def send(port: int, prefix: str, messages: list[tuple[str, str, int, int]]) -> None:
    msgs: list[Any] = [(f"{prefix}/p1/s1/{s}", p, q, bool(r)) for s, p, q, r in messages]
    publish.multiple(msgs, hostname="127.0.0.1", port=port)


def rows(influx: InfluxServer, db: str, q: str) -> list[dict[str, Any]]:
    series = influx.query(q, db=db)["results"][0].get("series")
    if not series:
        return []
    columns = series[0]["columns"]
    return [dict(zip(columns, values, strict=True)) for values in series[0]["values"]]


def count(influx: InfluxServer, db: str, measurement: str, field: str) -> int:
    found = rows(influx, db, f'SELECT count("{field}") FROM "{measurement}" WHERE sensor = \'nox\'')
    return int(found[0]["count"]) if found else 0


def versions(rows: list[dict[str, Any]]) -> set[str]:
    return {r["model_version"] for r in rows if r["model_version"] is not None}


def test_scores_and_predictions_carry_versions_and_survive_a_restart(
    tmp_path: Path,
    mosquitto_server: MosquittoServer,
    influx_server: InfluxServer,
    influx_db: str,
    topic_prefix: str,
) -> None:
    (tmp_path / "plant.yaml").write_text(PLANT)
    env = service_env(
        tmp_path / "plant.yaml",
        mosquitto_server.url,
        influx_server.url,
        influx_db,
        topic_prefix,
    )
    svc = ServiceProcess(tmp_path, env)
    svc.start().wait_healthy()
    try:
        send(mosquitto_server.port, topic_prefix, steps(0, 300))
        wait_until(
            lambda: count(influx_server, influx_db, "anomaly_scores", "score") == 300,
            60,
            "300 scores",
        )
        first = rows(
            influx_server,
            influx_db,
            "SELECT score, warm, model_version FROM anomaly_scores WHERE sensor = 'nox'",
        )
        # The state fields are written where they change (and once a minute): the first
        # point has them, and the warm-up's end is a change.
        version = first[0]["model_version"]
        assert version.startswith("det") and versions(first) == {version}
        warm = [r["warm"] for r in first if r["warm"] is not None]
        assert warm[0] is False and warm[-1] is True and warm == sorted(warm)
        assert svc.stop() == 0
    finally:
        svc.stop()

    svc.start().wait_healthy()
    try:
        assert any(e.get("event") == "detection models restored" for e in svc.log_events())
        send(mosquitto_server.port, topic_prefix, steps(300, 420))
        wait_until(
            lambda: count(influx_server, influx_db, "anomaly_scores", "score") == 420,
            60,
            "420 scores",
        )
        after = rows(
            influx_server,
            influx_db,
            "SELECT score, warm, model_version FROM anomaly_scores "
            f"WHERE sensor = 'nox' AND time >= {(T0_MS + 300_000) * 1_000_000}",
        )
        assert len(after) == 120
        assert after[0]["warm"] is True  # the first point after the restart has the state
        assert all(r["warm"] in (True, None) for r in after)  # no new warm-up
        assert versions(after) == {version}
        predictions = wait_until(
            lambda: rows(
                influx_server,
                influx_db,
                "SELECT prediction, lower, upper, measured, model_version FROM pems "
                "WHERE sensor = 'nox'",
            ),
            30,
            "PEMS predictions",
        )
        for p in predictions:
            assert p["lower"] <= p["prediction"] <= p["upper"]
            assert p["model_version"]
        digests = {p["model_version"].rsplit("-", 1)[0] for p in predictions}
        assert len(digests) == 1  # one fit, carried over the restart
    finally:
        svc.stop()
