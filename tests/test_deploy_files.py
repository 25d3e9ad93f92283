"""The production stack files: compose.yaml, Dockerfile, Mosquitto, Grafana and .env.example.

Docker cannot run here, so compose.yaml is checked for its structure and for agreement with
the other files (settings classes, .env.example, provisioning paths). The broker configuration
is checked for real: our mosquitto.conf, ACL and entrypoint.sh start the installed Mosquitto,
changed only in paths and port, and mosquitto_pub/mosquitto_sub prove who may publish and
receive what.
"""

from __future__ import annotations

import importlib
import json
import os
import pwd
import queue
import re
import secrets
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from tests.servers import free_port

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "compose.yaml"
ENV_EXAMPLE = REPO / ".env.example"
MOSQUITTO_DIR = REPO / "deploy" / "mosquitto"
ENTRYPOINT = MOSQUITTO_DIR / "entrypoint.sh"
DATASOURCE = REPO / "dashboards" / "provisioning" / "datasources" / "influxdb.yaml"
DASHBOARD_PROVIDER = REPO / "dashboards" / "provisioning" / "dashboards" / "stackwatch.yaml"
DOCKERFILE = REPO / "Dockerfile"

SERVICES = {"mosquitto", "influxdb", "grafana", "stackwatch"}
SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRET(?!S_DIR)")  # the secrets directory is a path
# ${VAR}, ${VAR:-default}, ${VAR:?message} (and the forms without ':'); "$$" is an escaped "$".
COMPOSE_VARIABLE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}")
REQUIRED_REFERENCE = re.compile(r"^\$\{[A-Z][A-Z0-9_]*:\?[^}]+\}$")
# An .env.example entry: NAME=value, or "# NAME=value" for a documented default.
ENV_ENTRY = re.compile(r"^(# )?([A-Z][A-Z0-9_]*)=(.*)$")


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), f"{path} is not a YAML mapping"
    return data


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _load_yaml(COMPOSE)


def _service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    service: dict[str, Any] = compose["services"][name]
    return service


def _environment(compose: dict[str, Any], name: str) -> dict[str, str]:
    env = _service(compose, name).get("environment", {})
    assert isinstance(env, dict), f"{name}: write environment as a mapping"
    return {str(k): str(v) for k, v in env.items()}


def _without_comments(path: Path) -> str:
    """The file's YAML without its comment lines, whose prose may show ``${VAR}`` syntax."""
    lines = path.read_text().splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith("#"))


def _compose_variables(operator: str | None = None) -> dict[str, str]:
    """Variables compose.yaml interpolates (with ``operator``, e.g. ":-", only those), each with
    the text after its operator: the default of ``${VAR:-default}``."""
    return {
        m.group(1): m.group(3) or ""
        for m in COMPOSE_VARIABLE.finditer(_without_comments(COMPOSE))
        if operator is None or m.group(2) == operator
    }


def _interpolated(value: str) -> str:
    """``value`` as compose sees it without a .env: defaults filled in (``:-`` only)."""
    return COMPOSE_VARIABLE.sub(lambda m: m.group(3) if m.group(2) == ":-" else m.group(0), value)


def _bind_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container target → host source of the service's bind mounts (short and long syntax)."""
    mounts: dict[str, str] = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            if volume["type"] == "bind":
                mounts[volume["target"]] = volume["source"]
        elif volume.startswith((".", "/", "$")):
            source, target = volume.split(":")[:2]
            mounts[target] = source
    return mounts


@dataclass(frozen=True)
class EnvEntry:
    name: str
    value: str
    commented: bool
    comment: str  # the prose comment lines just above the entry


def _env_example() -> dict[str, EnvEntry]:
    entries: dict[str, EnvEntry] = {}
    prose: list[str] = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = ENV_ENTRY.match(line)
        if match:
            commented, name, value = match.groups()
            assert name not in entries, f".env.example lists {name} twice"
            entries[name] = EnvEntry(name, value, bool(commented), " ".join(prose))
            prose = []
        elif line.startswith("#"):
            prose.append(line.lstrip("# ").strip())
        else:
            prose = []
    return entries


SETTINGS_ELSEWHERE = ("alerts.notify.config", "alerts.audit")
"""Modules with settings classes next to the code they configure (not in a settings.py)."""


def _settings_classes() -> list[type[BaseSettings]]:
    """Every settings class of our packages: ``settings.py`` in a package or sub-package, and
    the modules of :data:`SETTINGS_ELSEWHERE`."""
    found: list[type[BaseSettings]] = []
    names = list(SETTINGS_ELSEWHERE)
    for path in sorted([*REPO.glob("*/settings.py"), *REPO.glob("*/*/settings.py")]):
        rel = path.relative_to(REPO)
        packages = [REPO.joinpath(*rel.parts[: i + 1]) for i in range(len(rel.parts) - 1)]
        if rel.parts[0] in {"tests", "bench"} or not all(
            (p / "__init__.py").exists() for p in packages
        ):
            continue
        names.append(".".join(rel.with_suffix("").parts))
    for name in names:
        module = importlib.import_module(name)
        for obj in vars(module).values():
            if (
                isinstance(obj, type)
                and issubclass(obj, BaseSettings)
                and obj.__module__ == module.__name__
            ):
                found.append(obj)
    return found


def _setting_env_names(cls: type[BaseSettings]) -> dict[str, FieldInfo]:
    prefix = str(cls.model_config.get("env_prefix", ""))
    names = {}
    for name, field in cls.model_fields.items():
        assert field.validation_alias is None and field.alias is None, (
            f"{cls.__name__}.{name}: an alias changes the variable name; teach this test"
        )
        names[f"{prefix}{name}".upper()] = field
    return names


def _all_settings() -> dict[str, FieldInfo]:
    merged: dict[str, FieldInfo] = {}
    for cls in _settings_classes():
        merged.update(_setting_env_names(cls))
    return merged


def _env_text(value: object) -> str:
    """How a default is written in .env.example."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


# --------------------------------------------------------------------------------------------
# compose.yaml
# --------------------------------------------------------------------------------------------


def test_compose_has_the_four_services_and_no_version_key(compose: dict[str, Any]) -> None:
    assert "version" not in compose  # obsolete in the Compose specification
    assert set(compose["services"]) == SERVICES


def test_images_are_the_supported_ones(compose: dict[str, Any]) -> None:
    assert _service(compose, "mosquitto")["image"] == "eclipse-mosquitto:2"
    assert _service(compose, "influxdb")["image"] == "influxdb:2.7"
    grafana_tag = _service(compose, "grafana")["image"].removeprefix("grafana/grafana:")
    assert re.fullmatch(r"1[12]\.\d+\.\d+", grafana_tag), "pin a Grafana 11/12 release"
    assert _service(compose, "stackwatch")["build"]["dockerfile"] == "Dockerfile"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_service_has_a_healthcheck_restart_policy_and_log_rotation(
    compose: dict[str, Any], name: str
) -> None:
    service = _service(compose, name)
    test = service["healthcheck"]["test"]
    assert test[0] in {"CMD", "CMD-SHELL"} and len(test) > 1
    assert service["restart"] == "unless-stopped"
    assert service["logging"]["options"]["max-size"]


def test_stackwatch_starts_after_broker_and_database_are_healthy(
    compose: dict[str, Any],
) -> None:
    depends = _service(compose, "stackwatch")["depends_on"]
    assert depends == {
        "mosquitto": {"condition": "service_healthy"},
        "influxdb": {"condition": "service_healthy"},
    }
    grafana_depends = _service(compose, "grafana")["depends_on"]
    assert grafana_depends["influxdb"] == {"condition": "service_healthy"}


def test_stackwatch_healthcheck_probes_liveness_with_python(compose: dict[str, Any]) -> None:
    test = _service(compose, "stackwatch")["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]  # the slim image has no curl
    assert "http://localhost:8000/health/live" in test[3]


def test_compose_holds_no_literal_secrets(compose: dict[str, Any]) -> None:
    for name in SERVICES:
        for key, value in _environment(compose, name).items():
            if SECRET_NAME.search(key):
                assert REQUIRED_REFERENCE.match(value), f"{name}.{key} must be ${{VAR:?...}}"
    url = _interpolated(_environment(compose, "stackwatch")["STACKWATCH_MQTT_URL"])
    assert urlsplit(url).password is None, "the broker password goes in STACKWATCH_MQTT_PASSWORD"
    healthcheck = " ".join(_service(compose, "mosquitto")["healthcheck"]["test"])
    for password in re.findall(r"-P\s+(\S+)", healthcheck):
        assert password.startswith('"$$'), "healthcheck passwords come from the environment"


def test_stackwatch_container_is_configured_for_production(compose: dict[str, Any]) -> None:
    service = _service(compose, "stackwatch")
    env = _environment(compose, "stackwatch")
    assert env["STACKWATCH_MODE"] == "production"
    assert env["STACKWATCH_API_HOST"] == "0.0.0.0"
    assert env["STACKWATCH_API_PORT"] == "8000"
    assert any(str(p).endswith(":8000") for p in service["ports"])
    assert urlsplit(_interpolated(env["STACKWATCH_MQTT_URL"])).hostname == "mosquitto"
    assert urlsplit(env["STACKWATCH_INFLUX_URL"]).hostname == "influxdb"
    # The plant file is mounted where STACKWATCH_CONFIG points, from PLANT_CONFIG.
    mounts = _bind_mounts(service)
    assert mounts[env["STACKWATCH_CONFIG"]] == "${PLANT_CONFIG:-./simulators/demo_plant.yaml}"
    long_form = next(v for v in service["volumes"] if isinstance(v, dict))
    assert long_form["read_only"] is True
    assert long_form["bind"]["create_host_path"] is False  # a missing file fails, not a dir
    data_volume = next(v for v in service["volumes"] if isinstance(v, str))
    assert data_volume.split(":")[1] == env["STACKWATCH_DATA_DIR"]


def test_every_setting_reaches_the_stackwatch_container(compose: dict[str, Any]) -> None:
    """A setting missing here could be put in .env and silently never arrive."""
    env = _environment(compose, "stackwatch")
    assert set(_all_settings()) <= set(env)


def test_one_database_name_for_influxdb_stackwatch_and_grafana(compose: dict[str, Any]) -> None:
    reference = "${STACKWATCH_INFLUX_DATABASE:-emissions}"
    assert _environment(compose, "influxdb")["DOCKER_INFLUXDB_INIT_BUCKET"] == reference
    assert _environment(compose, "stackwatch")["STACKWATCH_INFLUX_DATABASE"] == reference
    assert _environment(compose, "grafana")["INFLUX_DATABASE"] == reference
    assert _environment(compose, "influxdb")["DOCKER_INFLUXDB_INIT_MODE"] == "setup"


def test_named_volumes_are_declared(compose: dict[str, Any]) -> None:
    used = {
        v.split(":")[0]
        for service in compose["services"].values()
        for v in service.get("volumes", [])
        if isinstance(v, str) and not v.startswith((".", "/", "$"))
    }
    assert used and used <= set(compose["volumes"])


def test_bind_mount_sources_exist(compose: dict[str, Any]) -> None:
    for name in SERVICES:
        for source in _bind_mounts(_service(compose, name)).values():
            if not source.startswith("$"):  # ${PLANT_CONFIG:-...} is the operator's file
                assert (REPO / source).exists(), f"{name}: {source} does not exist"


def test_mosquitto_runs_our_entrypoint_and_configuration(compose: dict[str, Any]) -> None:
    service = _service(compose, "mosquitto")
    mounts = _bind_mounts(service)
    assert (REPO / mounts["/mosquitto/config"]).resolve() == MOSQUITTO_DIR
    assert service["entrypoint"] == ["/bin/sh", "/mosquitto/config/entrypoint.sh"]
    assert service["command"][-1] == "/mosquitto/config/mosquitto.conf"
    data = "/mosquitto/data"
    assert any(isinstance(v, str) and v.endswith(f":{data}") for v in service["volumes"])


def test_grafana_provisioning_and_dashboards_are_mounted(compose: dict[str, Any]) -> None:
    mounts = _bind_mounts(_service(compose, "grafana"))
    provisioning = "/etc/grafana/provisioning"
    assert mounts[f"{provisioning}/datasources"] == "./dashboards/provisioning/datasources"
    assert mounts[f"{provisioning}/dashboards"] == "./dashboards/provisioning/dashboards"
    provider = _load_yaml(DASHBOARD_PROVIDER)["providers"][0]
    assert provider["type"] == "file"
    assert mounts[provider["options"]["path"]] == "./dashboards/generated"
    assert sorted(p.name for p in (REPO / "dashboards" / "generated").glob("*.json"))


# --------------------------------------------------------------------------------------------
# .env.example
# --------------------------------------------------------------------------------------------


def test_settings_discovery_finds_the_known_classes() -> None:
    names = {f"{c.__module__}.{c.__name__}" for c in _settings_classes()}
    assert {
        "stackwatch.settings.ServiceSettings",
        "collector.settings.MqttSettings",
        "stream.storage.settings.InfluxSettings",
        "api.settings.ApiSettings",
    } <= names


def test_every_setting_is_documented_with_its_default() -> None:
    entries = _env_example()
    for env_name, field in _all_settings().items():
        assert env_name in entries, f"{env_name} is missing from .env.example"
        default = _env_text(field.get_default(call_default_factory=True))
        assert entries[env_name].value == default, f"{env_name}: default is {default!r}"


def test_env_example_names_only_existing_settings() -> None:
    settings = _all_settings()
    stray = {n for n in _env_example() if n.startswith("STACKWATCH_") and n not in settings}
    assert not stray, f"no settings field reads {sorted(stray)}"


def test_every_compose_variable_is_documented() -> None:
    assert set(_compose_variables()) - set(_env_example()) == set()


def test_compose_defaults_match_env_example() -> None:
    entries = _env_example()
    for name, default in _compose_variables(":-").items():
        if not name.startswith("STACKWATCH_") and default:
            assert entries[name].value == default, f"{name}: compose default is {default!r}"


def test_every_entry_is_explained() -> None:
    for entry in _env_example().values():
        assert len(entry.comment) > 10, f"{entry.name} needs a comment line above it"


def test_env_example_holds_no_secrets_and_marks_required_ones() -> None:
    entries = _env_example()
    for entry in entries.values():
        if SECRET_NAME.search(entry.name):
            assert entry.value == "", f"{entry.name}: no secret values in .env.example"
    required = set(_compose_variables(":?"))
    assert required
    for name in required:
        assert not entries[name].commented and entries[name].value == ""
        assert "REQUIRED" in entries[name].comment, f"{name}: say it is REQUIRED"


# --------------------------------------------------------------------------------------------
# Grafana provisioning
# --------------------------------------------------------------------------------------------


def test_datasource_queries_influxdb_with_influxql_and_token_header(
    compose: dict[str, Any],
) -> None:
    config = _load_yaml(DATASOURCE)
    assert config["apiVersion"] == 1
    (source,) = config["datasources"]
    assert source["type"] == "influxdb"
    assert urlsplit(source["url"]).netloc == "influxdb:8086"
    assert source["jsonData"]["version"] == "InfluxQL"
    assert source["jsonData"]["httpHeaderName1"] == "Authorization"
    assert source["secureJsonData"]["httpHeaderValue1"] == "Token ${INFLUX_TOKEN}"
    assert source["jsonData"]["dbName"] == "${INFLUX_DATABASE}"
    # Every variable Grafana expands is set on the grafana container.
    grafana_env = _environment(compose, "grafana")
    for variable in re.findall(r"\$\{?([A-Z_][A-Z0-9_]*)", _without_comments(DATASOURCE)):
        assert variable in grafana_env, f"grafana lacks {variable}"
    assert (
        grafana_env["INFLUX_TOKEN"]
        == _environment(compose, "stackwatch")["STACKWATCH_INFLUX_TOKEN"]
    )


# --------------------------------------------------------------------------------------------
# Dockerfile
# --------------------------------------------------------------------------------------------


def test_dockerfile_builds_a_non_root_image_running_the_service() -> None:
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    assert instructions[0] == "FROM python:3.11-slim"
    assert "RUN pip install --no-cache-dir ." in instructions
    users = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert users and users[-1] not in {"root", "0"}
    (cmd,) = [line for line in instructions if line.startswith("CMD ")]
    assert json.loads(cmd.removeprefix("CMD ")) == ["stackwatch", "run"]
    assert "EXPOSE 8000" in instructions


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_image() -> None:
    ignored = set((REPO / ".dockerignore").read_text().splitlines())
    assert {".env", ".git", ".venv", "var"} <= ignored


# --------------------------------------------------------------------------------------------
# Mosquitto: the real broker with our configuration
# --------------------------------------------------------------------------------------------

SERVICE_USER = "stackwatch"
SENSOR_USER = "sensor-gateway"
PLANT = "demo"


@dataclass(frozen=True)
class Credentials:
    service_password: str
    sensor_password: str


@dataclass(frozen=True)
class Account:
    user: str
    password: str


@dataclass
class Broker:
    port: int
    data_dir: Path
    credentials: Credentials
    proc: subprocess.Popen[bytes]


def _entrypoint_env(base: Path, credentials: Credentials, **overrides: str) -> dict[str, str]:
    env = {
        "PATH": f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin",
        "MQTT_SERVICE_USER": SERVICE_USER,
        "MQTT_SERVICE_PASSWORD": credentials.service_password,
        "MQTT_SENSOR_USER": SENSOR_USER,
        "MQTT_SENSOR_PASSWORD": credentials.sensor_password,
        "MQTT_SENSOR_PLANT": PLANT,
        "MOSQUITTO_ACL_TEMPLATE": str(MOSQUITTO_DIR / "acl"),
        "MOSQUITTO_AUTH_DIR": str(base / "auth"),
        "MOSQUITTO_DATA_DIR": str(base / "data"),
    }
    return env | overrides


def _adapted_conf(port: int, base: Path) -> str:
    """Our mosquitto.conf, changed only in the listener port and the file paths."""
    text = (MOSQUITTO_DIR / "mosquitto.conf").read_text()
    for old, new in {
        "listener 1883\n": f"listener {port} 127.0.0.1\n",
        "/mosquitto/auth/": f"{base}/auth/",
        "/mosquitto/data/": f"{base}/data/",
    }.items():
        assert old in text, f"mosquitto.conf no longer contains {old!r}; update this test"
        text = text.replace(old, new)
    return text


@contextmanager
def _base_dir() -> Iterator[Path]:
    # Not pytest's tmp_path: run as root, Mosquitto drops to the mosquitto user before reading
    # the auth files, and tmp_path's parents are private to root.
    base = Path(tempfile.mkdtemp(prefix="stackwatch-mosquitto-"))
    try:
        base.chmod(0o755)
        (base / "data").mkdir()
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@contextmanager
def _broker() -> Iterator[Broker]:
    credentials = Credentials(secrets.token_hex(16), secrets.token_hex(16))
    with _base_dir() as base:
        port = free_port()
        conf = base / "mosquitto.conf"
        conf.write_text(_adapted_conf(port, base))
        log_path = base / "mosquitto.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                ["sh", str(ENTRYPOINT), "mosquitto", "-c", str(conf)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_entrypoint_env(base, credentials),
            )
            try:
                deadline = time.monotonic() + 10
                while not _port_open(port):
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"mosquitto did not start: {log_path.read_text()}")
                    time.sleep(0.02)
                yield Broker(port, base / "data", credentials, proc)
            finally:
                proc.terminate()
                proc.wait(10)


def _pub(
    broker: Broker, topic: str, message: str, account: Account | None
) -> subprocess.CompletedProcess[str]:
    cmd = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1"]
    if account is not None:
        cmd += ["-u", account.user, "-P", account.password]
    return subprocess.run(
        [*cmd, "-t", topic, "-m", message], capture_output=True, text=True, timeout=10, check=False
    )


def _published(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stderr


class Subscriber:
    """mosquitto_sub in debug mode: its "Subscribed" line tells when the subscription is live.

    stdbuf makes it flush every line: on a pipe, debug output would wait for the exit.
    """

    def __init__(self, broker: Broker, account: Account, topics: list[str], count: int):
        cmd = ["stdbuf", "-oL", "mosquitto_sub", "-d", "-v", "-h", "127.0.0.1"]
        cmd += ["-p", str(broker.port)]
        cmd += ["-u", account.user, "-P", account.password]
        cmd += ["-q", "1", "-C", str(count), "-W", "20"]
        for topic in topics:
            cmd += ["-t", topic]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_subscribed(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no SUBACK within {timeout} s") from None
            if line is None:
                assert self.proc.stderr is not None
                raise AssertionError(f"mosquitto_sub exited: {self.proc.stderr.read()}")
            if line.startswith("Subscribed"):
                return

    def messages(self, timeout: float = 25) -> list[str]:
        """The "topic payload" lines received until mosquitto_sub exits."""
        self.proc.wait(timeout)
        self.reader.join(timeout)
        received = []
        while (line := self.lines.get_nowait()) is not None:
            if not line.startswith(("Client ", "Subscribed")):
                received.append(line)
        return received

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    with _broker() as running:
        yield running


def test_broker_enforces_logins_and_acl(broker: Broker) -> None:
    service = Account(SERVICE_USER, broker.credentials.service_password)
    sensor = Account(SENSOR_USER, broker.credentials.sensor_password)
    readings = f"stackwatch/{PLANT}/boiler1/nox"
    # StackWatch's view: the collector's subscription plus the dead-letter topic.
    sub = Subscriber(broker, service, ["stackwatch/+/+/+", "stackwatch/deadletter/#"], count=3)
    try:
        sub.wait_subscribed()

        anonymous = _pub(broker, readings, "anonymous", None)
        assert anonymous.returncode != 0
        assert "not authori" in anonymous.stderr.lower()
        wrong_password = _pub(broker, readings, "wrong", Account(SENSOR_USER, "nope"))
        assert wrong_password.returncode != 0

        _published(_pub(broker, readings, "allowed", sensor))
        # Accepted on the wire (MQTT 3.1.1 has no refusal for publishes) but dropped:
        _published(_pub(broker, "stackwatch/other/boiler1/nox", "other-plant", sensor))
        _published(_pub(broker, "stackwatch/deadletter/bad_topic", "sensor-dead", sensor))
        _published(_pub(broker, readings, "forged-by-service", service))
        # The service's own write grant: rejected payloads go to the dead-letter topic.
        _published(_pub(broker, "stackwatch/deadletter/malformed_json", "dead", service))
        # Positive control: delivered after everything above was handled by the broker.
        _published(_pub(broker, readings, "control", sensor))

        assert sub.messages() == [
            f"{readings} allowed",
            "stackwatch/deadletter/malformed_json dead",
            f"{readings} control",
        ]
    finally:
        sub.close()


def test_compose_healthcheck_command_passes_only_with_the_service_login(
    broker: Broker, compose: dict[str, Any]
) -> None:
    kind, command = _service(compose, "mosquitto")["healthcheck"]["test"]
    assert kind == "CMD-SHELL" and "-p 1883" in command
    # What the container's shell runs after compose turns "$$" into "$", on the test port.
    command = command.replace("$$", "$").replace("-p 1883", f"-p {broker.port}")

    def run(password: str) -> int:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "MQTT_SERVICE_USER": SERVICE_USER,
            "MQTT_SERVICE_PASSWORD": password,
        }
        return subprocess.run(
            ["sh", "-c", command], env=env, capture_output=True, timeout=10, check=False
        ).returncode

    assert run(broker.credentials.service_password) == 0
    assert run("wrong-password") != 0


def test_broker_persists_its_state_in_the_data_directory() -> None:
    with _broker() as running:
        data_dir = running.data_dir
        running.proc.terminate()
        assert running.proc.wait(10) == 0
        assert (data_dir / "mosquitto.db").is_file()


def test_entrypoint_writes_private_auth_files_without_placeholders() -> None:
    credentials = Credentials(secrets.token_hex(16), secrets.token_hex(16))
    with _base_dir() as base:
        result = subprocess.run(
            ["sh", str(ENTRYPOINT), "true"],
            env=_entrypoint_env(base, credentials),
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        auth = base / "auth"
        acl = (auth / "acl").read_text()
        assert "@MQTT_" not in acl
        assert f"user {SERVICE_USER}\n" in acl and f"user {SENSOR_USER}\n" in acl
        assert f"topic write stackwatch/{PLANT}/#" in acl
        users = [line.split(":")[0] for line in (auth / "passwd").read_text().splitlines()]
        assert users == [SERVICE_USER, SENSOR_USER]
        assert credentials.service_password not in (auth / "passwd").read_text()  # hashed
        assert stat.S_IMODE(auth.stat().st_mode) == 0o700
        for name in ("acl", "passwd"):
            path = auth / name
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            if os.geteuid() == 0:
                assert path.stat().st_uid == pwd.getpwnam("mosquitto").pw_uid


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        # a missing password would leave an account without a password
        ({"MQTT_SERVICE_PASSWORD": ""}, "MQTT_SERVICE_PASSWORD"),
        ({"MQTT_SENSOR_PASSWORD": ""}, "MQTT_SENSOR_PASSWORD"),
        # spaces and newlines would inject ACL lines
        ({"MQTT_SENSOR_USER": "gw\ntopic readwrite #"}, "MQTT_SENSOR_USER"),
        ({"MQTT_SERVICE_USER": "stack watch"}, "MQTT_SERVICE_USER"),
        # ':' separates user and hash in the password file
        ({"MQTT_SERVICE_USER": "stack:watch"}, "MQTT_SERVICE_USER"),
        # wildcards in the plant would widen the sensor's write grant
        ({"MQTT_SENSOR_PLANT": "+"}, "MQTT_SENSOR_PLANT"),
        ({"MQTT_SENSOR_PLANT": "demo/#"}, "MQTT_SENSOR_PLANT"),
        # plant ids are lower case and start with a letter or digit (stream/plant.py)
        ({"MQTT_SENSOR_PLANT": "Demo"}, "MQTT_SENSOR_PLANT"),
        ({"MQTT_SENSOR_PLANT": "-demo"}, "MQTT_SENSOR_PLANT"),
        # one account for both would give the sensor the service's grants
        ({"MQTT_SENSOR_USER": SERVICE_USER}, "must differ"),
    ],
)
def test_entrypoint_refuses_unsafe_settings(overrides: dict[str, str], complaint: str) -> None:
    credentials = Credentials(secrets.token_hex(16), secrets.token_hex(16))
    with _base_dir() as base:
        result = subprocess.run(
            ["sh", str(ENTRYPOINT), "true"],
            env=_entrypoint_env(base, credentials, **overrides),
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        assert result.returncode != 0
        assert complaint in result.stderr
        assert not (base / "auth").exists()  # refused before writing anything
