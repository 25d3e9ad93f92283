"""Session-wide real servers; one database (or topic prefix) per test keeps tests independent."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import InfluxServer, MosquittoServer, influxdb, mosquitto


@pytest.fixture(scope="session")
def mosquitto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoServer]:
    with mosquitto(tmp_path_factory.mktemp("mosquitto")) as server:
        yield server


@pytest.fixture(scope="session")
def influx_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxServer]:
    with influxdb(tmp_path_factory.mktemp("influxdb")) as server:
        yield server


@pytest.fixture
def influx_db(influx_server: InfluxServer) -> str:
    """A fresh, empty database name on the session InfluxDB (created)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    influx_server.create_database(name)
    return name


@pytest.fixture
def topic_prefix() -> str:
    """A unique MQTT topic prefix so tests sharing the broker never see each other's data."""
    return f"sw{uuid.uuid4().hex[:10]}"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d
