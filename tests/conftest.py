"""Session-wide real servers; one database (or topic prefix) per test keeps tests independent."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import InfluxServer, MosquittoServer, influxdb, mosquitto
from tests.tls import Pki, TlsBroker, make_pki, tls_mosquitto


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


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A private CA, a broker certificate it signed, and an unrelated CA (tests.tls)."""
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def tls_broker(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[TlsBroker]:
    """A Mosquitto with a plain listener and a TLS one (certificate signed by ``pki``)."""
    with tls_mosquitto(tmp_path_factory.mktemp("mosquitto-tls"), pki) as server:
        yield server
