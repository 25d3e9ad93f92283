"""The store's limit writes what it claims: two points per reading, every one stored."""

from __future__ import annotations

from bench.plantgen import generate_plant
from bench.storelimit import influx_limit, write_bodies
from stream.detect.live import SCORES
from stream.schema import READINGS
from tests.servers import InfluxServer


def test_every_reading_and_its_score_land_in_influxdb(
    influx_server: InfluxServer, influx_db: str
) -> None:
    sensors = generate_plant(20).sensors
    bodies = write_bodies(sensors, batch=30, batches=3)  # 90 readings: 4.5 time steps of 20
    assert [body.count(b"\n") for body in bodies] == [60, 60, 60]

    rate = influx_limit(influx_server.url, influx_db, bodies, batch=30)

    assert rate > 0
    for measurement, field in ((READINGS, "value"), (SCORES, "score")):
        result = influx_server.query(f'SELECT count("{field}") FROM "{measurement}"', influx_db)
        assert result["results"][0]["series"][0]["values"][0][1] == 90
