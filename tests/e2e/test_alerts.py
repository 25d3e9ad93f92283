"""Alerts end to end: a NOx excursion published over MQTT → validated half-hour averages above
the ELV → one firing notification per route (a signed webhook and the MQTT alert topic),
escalation until an officer acknowledges through the API, one resolved notification per route
after recovery, and an audit trail that verifies and catches tampering."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt import publish
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from alerts.notify.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
from stackwatch.cli import app
from tests.e2e.service import ServiceProcess, service_env, wait_until
from tests.servers import InfluxServer, MosquittoServer

T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
SECRET = "e2e-webhook-secret-0123456789abcdef"
PLANT = """
plants:
  p1:
    stacks:
      s1:
        reference_o2: 6
        sensors:
          nox: {quantity: nox, unit: mg/Nm3, valid_range: [0, 2000], interval_s: 60}
          o2: {quantity: o2, unit: "%", valid_range: [0, 25], interval_s: 60}
        limits:
          nox: {daily: 200, half_hour: 400}
"""
ESCALATE_1_S, ESCALATE_2_S = 2.0, 6.0


class Receiver:
    """A local HTTP receiver that checks every webhook signature."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.bad_signatures = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                ok = verify_signature(
                    SECRET.encode(),
                    self.headers[TIMESTAMP_HEADER],
                    body,
                    self.headers[SIGNATURE_HEADER],
                    now_s=time.time(),
                )
                if ok:
                    outer.received.append((self.path, json.loads(body)))
                else:
                    outer.bad_signatures += 1
                self.send_response(204 if ok else 401)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def at(self, path: str) -> list[dict[str, Any]]:
        return [doc for p, doc in list(self.received) if p == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


def minutes(first: int, last: int, nox: dict[range, float]) -> list[tuple[str, str, int, bool]]:
    out = []
    for m in range(first, last):
        value = next((v for span, v in nox.items() if m in span), 100.0)
        ts = T0_MS + m * 60_000
        out.append(("nox", json.dumps({"ts": ts, "value": value}), 1, False))
        out.append(("o2", json.dumps({"ts": ts, "value": 6.0}), 1, False))
    return out


def send(port: int, prefix: str, messages: list[tuple[str, str, int, bool]]) -> None:
    msgs: list[Any] = [(f"{prefix}/p1/s1/{s}", p, q, r) for s, p, q, r in messages]
    publish.multiple(msgs, hostname="127.0.0.1", port=port)


def alerts_yaml(receiver: Receiver, mqtt_url: str, prefix: str) -> str:
    return f"""
route:
  receivers: [sink]
  group_wait_s: 0
  group_interval_s: 1
  repeat_interval_s: 3600
  routes:
    - matchers: ["rule=limit_breach"]
      receivers: [officers]
      continue: true
      escalation:
        - {{after_s: {ESCALATE_1_S}, receivers: [manager]}}
        - {{after_s: {ESCALATE_2_S}, receivers: [director]}}
    - matchers: ["rule=limit_breach"]
      receivers: [control-room]
receivers:
  - name: sink
  - name: officers
    webhooks: [{{url: "{receiver.url}/officers", secret: "{SECRET}"}}]
  - name: manager
    webhooks: [{{url: "{receiver.url}/manager", secret: "{SECRET}"}}]
  - name: director
    webhooks: [{{url: "{receiver.url}/director", secret: "{SECRET}"}}]
  - name: control-room
    mqtt: {{url: "{mqtt_url}", topic_template: "{prefix}/alerts/{{plant}}/{{stack}}/{{status}}"}}
"""


def test_nox_excursion_notifies_escalates_until_acknowledged_and_resolves(
    tmp_path: Path,
    mosquitto_server: MosquittoServer,
    influx_server: InfluxServer,
    influx_db: str,
    topic_prefix: str,
    receiver: Receiver,
) -> None:
    (tmp_path / "plant.yaml").write_text(PLANT)
    (tmp_path / "alerts.yaml").write_text(alerts_yaml(receiver, mosquitto_server.url, topic_prefix))
    control_room: list[dict[str, Any]] = []
    subscriber = mqtt.Client(CallbackAPIVersion.VERSION2)
    subscriber.on_message = lambda c, u, m: control_room.append(json.loads(m.payload))
    subscriber.connect("127.0.0.1", mosquitto_server.port)
    subscriber.subscribe(f"{topic_prefix}/alerts/#", qos=1)
    subscriber.loop_start()
    svc = ServiceProcess(
        tmp_path,
        service_env(
            tmp_path / "plant.yaml",
            mosquitto_server.url,
            influx_server.url,
            influx_db,
            topic_prefix,
            STACKWATCH_ALERTS_CONFIG=str(tmp_path / "alerts.yaml"),
            STACKWATCH_ALERTS_FLUSH_INTERVAL_S="0.2",
        ),
    )
    svc.start().wait_healthy()
    try:
        # An hour of normal operation, then an hour of NOx far above the ELV: the validated
        # hourly average (LCP regime) of the second hour breaches it once that hour is closed.
        send(mosquitto_server.port, topic_prefix, minutes(0, 122, {range(60, 120): 600.0}))
        firing = wait_until(lambda: receiver.at("/officers"), 60, "firing notification")
        assert len(firing) == 1 and firing[0]["status"] == "firing"
        alert = firing[0]["alerts"][0]
        assert alert["rule"] == "limit_breach" and alert["labels"]["pollutant"] == "nox"
        wait_until(lambda: control_room, 30, "MQTT alert")
        assert [m["status"] for m in control_room] == ["firing"]

        # Not acknowledged: the first escalation level is told, then the officer acknowledges.
        escalated = wait_until(lambda: receiver.at("/manager"), 30, "escalation")
        assert escalated[0]["reason"] == "escalation" and escalated[0]["escalation_level"] == 1
        ack = httpx.post(
            f"{svc.url}/alerts/{alert['fingerprint']}/acknowledge",
            json={"by": "officer.k", "comment": "SNCR urea pump restarted"},
            timeout=10,
        )
        assert ack.status_code == 200, ack.text
        assert ack.json()["state"] == "acknowledged"
        fired_at = time.monotonic()

        # Recovery: the normal third hour resolves the alert (hysteresis: well below the ELV).
        send(mosquitto_server.port, topic_prefix, minutes(122, 183, {range(60, 120): 600.0}))
        resolved = wait_until(
            lambda: [d for d in receiver.at("/officers") if d["status"] == "resolved"],
            60,
            "resolved notification",
        )
        assert len(resolved) == 1
        wait_until(lambda: len(control_room) == 2, 30, "MQTT resolved")
        assert [m["status"] for m in control_room] == ["firing", "resolved"]
        # The second escalation level was due 6 s after firing: acknowledged, it never came.
        wait_until(lambda: time.monotonic() > fired_at + ESCALATE_2_S + 1, 30, "level 2 due")
        assert receiver.at("/director") == []
        assert [d["status"] for d in receiver.at("/officers")] == ["firing", "resolved"]
        assert receiver.bad_signatures == 0
    finally:
        assert svc.stop() == 0
        subscriber.loop_stop()
        subscriber.disconnect()

    audit = tmp_path / "data" / "audit.jsonl"
    runner = CliRunner()
    result = runner.invoke(app, ["audit", "verify", "--file", str(audit)])
    assert result.exit_code == 0, result.output
    lines = audit.read_text().splitlines()
    acks = [i for i, line in enumerate(lines) if "SNCR urea pump restarted" in line]
    assert len(acks) == 1 and '"actor":"officer.k"' in lines[acks[0]]
    lines[acks[0]] = lines[acks[0]].replace("SNCR urea pump restarted", "nothing happened")
    audit.write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["audit", "verify", "--file", str(audit)])
    assert result.exit_code == 1
    assert f"seq {json.loads(lines[acks[0]])['seq']}" in result.output
