"""The store's limit: readings/s InfluxDB takes when nothing else is in the way.

One client posts pre-encoded write batches back to back: per reading the two points the
service writes for it, its ``readings`` point (:func:`stream.schema.reading_to_point`) and its
``anomaly_scores`` point (:class:`stream.detect.scorepoints.ScoreFields`, as detection writes
it: the state fields once a minute per sensor), in
batches of the writer's size, the sensors of the generated plant stepping through time. This
is the storage counterpart of the C-client limit: no service can store faster than this on
the same machine, and the service shares the machine's cores with InfluxDB.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import httpx

from bench.plantgen import UNITS, Sensor
from stream.detect.live import SCORES
from stream.detect.protocol import Score
from stream.detect.scorepoints import ScoreFields
from stream.model import NS_PER_S, Reading
from stream.schema import reading_to_point
from stream.storage.base import Point
from stream.storage.lineprotocol import encode_points

_START_NS = 1_765_000_000 * NS_PER_S


def write_bodies(sensors: Sequence[Sensor], batch: int, batches: int) -> list[bytes]:
    """``batches`` line-protocol bodies of ``batch`` readings each (two points a reading)."""
    bodies = []
    fields = ScoreFields()
    for b in range(batches):
        points: list[Point] = []
        for k in range(b * batch, (b + 1) * batch):
            s = sensors[k % len(sensors)]
            ts = _START_NS + (k // len(sensors)) * NS_PER_S
            value = s.level + (k % 7) * s.noise
            reading = Reading(s.plant, s.stack, s.sensor, ts, value, s.sensor, UNITS[s.sensor])
            points.append(reading_to_point(reading))
            tags = {"plant": s.plant, "stack": s.stack, "sensor": s.sensor}
            score = Score(0.05 + (k % 13) * 0.01, is_anomaly=False)
            key = (s.plant, s.stack, s.sensor)
            score_fields = fields(key, score, True, "det1-0123456789", ts)
            points.append(Point(SCORES, tags, score_fields, ts))
        bodies.append(encode_points(points))
    return bodies


def influx_limit(url: str, database: str, bodies: Sequence[bytes], batch: int) -> float:
    """Readings/s of posting ``bodies`` (``batch`` readings each) one after another to
    ``/write`` on ``database`` (which must exist); the first body is a warm-up, not timed."""
    if len(bodies) < 2:
        raise ValueError("need at least two bodies: one to warm up, one to time")
    with httpx.Client(base_url=url, timeout=60) as client:

        def post(body: bytes) -> None:
            resp = client.post("/write", params={"db": database, "precision": "ns"}, content=body)
            if resp.status_code != 204:
                raise RuntimeError(
                    f"InfluxDB refused a bench write: {resp.status_code} {resp.text}"
                )

        post(bodies[0])
        started = time.perf_counter()
        for body in bodies[1:]:
            post(body)
        return (len(bodies) - 1) * batch / (time.perf_counter() - started)
