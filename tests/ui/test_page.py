"""The built-in page in headless Chromium against the real service (``stackwatch run`` as a
subprocess on the real Mosquitto and InfluxDB): readings published over MQTT move the live
chart, an alert raised by a NOx excursion is acknowledged through the page, and outside demo
mode the page asks for an API key and streams with it.

The screenshot of the demo-mode page is kept in the artefacts directory (``ui-page.png``; see
``tests/ui/conftest.py``).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
from paho.mqtt import publish
from playwright.sync_api import Page, expect

from tests.e2e.service import ServiceProcess, service_env
from tests.servers import InfluxServer, MosquittoServer
from tests.ui.conftest import PageLog, artifacts_dir

T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: the excursion is replayed history
PLANT = """
plants:
  p1:
    name: UI test plant
    timezone: UTC
    stacks:
      s1:
        name: Live boiler
        reference_o2: 6
        sensors:
          nox: {quantity: nox, unit: mg/Nm3, valid_range: [0, 2000], interval_s: 1}
          o2: {quantity: o2, unit: "%", valid_range: [0, 25], interval_s: 1}
        limits:
          nox: {daily: 200, half_hour: 400}
      s2:
        name: Replayed boiler
        reference_o2: 6
        sensors:
          nox: {quantity: nox, unit: mg/Nm3, valid_range: [0, 2000], interval_s: 60}
          o2: {quantity: o2, unit: "%", valid_range: [0, 25], interval_s: 60}
        limits:
          nox: {daily: 200, half_hour: 400}
"""
TIMEOUT_MS = 20_000
ALERT_TIMEOUT_MS = 60_000


def start_service(tmp_path: Path, env: dict[str, str]) -> ServiceProcess:
    svc = ServiceProcess(tmp_path, {"STACKWATCH_ALERTS_FLUSH_INTERVAL_S": "0.2", **env})
    svc.start().wait_healthy()
    # Clear failures for the two pieces of wiring the page needs (rather than a timeout).
    served = httpx.get(f"{svc.url}/ui/", timeout=10)
    assert served.status_code == 200, "api.main.create_app must include api.routes.ui.router"
    token = env.get("STACKWATCH_API_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.stream("GET", f"{svc.url}/live", headers=headers, timeout=10) as live:
        assert live.status_code == 200, f"GET /live: {live.status_code} {live.read()!r}"
    return svc


def demo_env(
    tmp_path: Path,
    mosquitto_server: MosquittoServer,
    influx_server: InfluxServer,
    influx_db: str,
    topic_prefix: str,
) -> dict[str, str]:
    (tmp_path / "plant.yaml").write_text(PLANT)
    return service_env(
        tmp_path / "plant.yaml", mosquitto_server.url, influx_server.url, influx_db, topic_prefix
    )


def send(port: int, prefix: str, stack: str, rows: list[tuple[int, float, float]]) -> None:
    """Publish ``(ts_ms, nox, o2)`` rows of one stack over MQTT (NOx first, as analysers do)."""
    msgs: list[Any] = []
    for ts, nox, o2 in rows:
        msgs.append((f"{prefix}/p1/{stack}/nox", json.dumps({"ts": ts, "value": nox}), 1, False))
        msgs.append((f"{prefix}/p1/{stack}/o2", json.dumps({"ts": ts, "value": o2}), 1, False))
    publish.multiple(msgs, hostname="127.0.0.1", port=port)


def test_live_chart_and_acknowledging_an_alert_in_demo_mode(
    tmp_path: Path,
    mosquitto_server: MosquittoServer,
    influx_server: InfluxServer,
    influx_db: str,
    topic_prefix: str,
    page: tuple[Page, PageLog],
) -> None:
    p, log = page
    env = demo_env(tmp_path, mosquitto_server, influx_server, influx_db, topic_prefix)
    svc = start_service(tmp_path, env)
    try:
        p.goto(f"{svc.url}/")
        expect(p).to_have_url(re.compile(r"/ui/#plant=p1$"))
        expect(p.locator("#live-status")).to_have_attribute(
            "data-state", "connected", timeout=TIMEOUT_MS
        )
        expect(p.locator("#health-badge")).to_have_attribute("data-status", "ok")
        chart = p.locator('canvas[data-stack="s1"][data-pollutant="nox"]')
        expect(chart).to_be_visible()
        expect(chart).to_have_attribute("data-points", "0")
        expect(chart).to_have_attribute("aria-label", re.compile(r"in mg/Nm3 @ 6 % O2"))

        # Five seconds of NOx 100 mg/Nm3 at 11 % O2: normalised to 6 % O2 that is
        # 100 × (21 − 6) / (21 − 11) = 150.
        now_ms = int(time.time() * 1000)
        send(
            mosquitto_server.port,
            topic_prefix,
            "s1",
            [(now_ms - (10 - i) * 1000, 100.0, 11.0) for i in range(5)],
        )
        expect(chart).to_have_attribute("data-points", "5", timeout=TIMEOUT_MS)
        expect(chart).to_have_attribute("data-last-value", "150")
        panel = p.locator("figure.chart", has=chart)
        expect(panel.locator(".last-value")).to_contain_text("150 mg/Nm3")
        # The chart keeps moving: five more seconds at 120 mg/Nm3 → 180.
        send(
            mosquitto_server.port,
            topic_prefix,
            "s1",
            [(now_ms - (5 - i) * 1000, 120.0, 11.0) for i in range(5)],
        )
        expect(chart).to_have_attribute("data-points", "10", timeout=TIMEOUT_MS)
        expect(chart).to_have_attribute("data-last-value", "180")
        expect(chart).to_have_attribute("aria-label", re.compile(r"180 mg/Nm3"))
        sensor_row = p.locator('#sensors-body tr[data-stack="s1"][data-sensor="nox"]')
        expect(sensor_row).to_contain_text("120 mg/Nm3")
        expect(sensor_row).to_have_attribute("data-health", "ok")

        # History replayed on the other stack: an hour at 100, then an hour at 600 mg/Nm3;
        # the closed hour's validated average breaches the ELV and the alert fires.
        rows = [(T0_MS + m * 60_000, 600.0 if 60 <= m < 120 else 100.0, 6.0) for m in range(122)]
        send(mosquitto_server.port, topic_prefix, "s2", rows)
        alert_row = p.locator('#alerts-body tr[data-rule="limit_breach"]')
        expect(alert_row).to_have_attribute("data-state", "firing", timeout=ALERT_TIMEOUT_MS)
        expect(alert_row).to_contain_text("s2")
        fingerprint = alert_row.get_attribute("data-fingerprint")
        # The compliance results of that day reached the page too (its running daily average).
        replayed = p.locator('canvas[data-stack="s2"][data-pollutant="nox"]')
        expect(replayed).to_have_attribute("data-daily-average", re.compile(r"^\d+(\.\d+)?$"))
        daily = p.locator("figure.chart", has=replayed).locator(".daily")
        expect(daily).to_contain_text(re.compile(r"Running daily average: [\d.,]+ mg/Nm3 \("))

        alert_row.get_by_role("button", name=re.compile("^Acknowledge")).click()
        dialog = p.get_by_role("dialog", name="Acknowledge alert")
        expect(dialog).to_be_visible()
        dialog.get_by_label("Your name").fill("officer.k")
        dialog.get_by_label("Comment").fill("SNCR urea pump restarted")
        dialog.get_by_role("button", name="Acknowledge").click()
        expect(dialog).to_be_hidden()
        expect(alert_row).to_have_attribute("data-state", "acknowledged")
        expect(alert_row).to_contain_text("acknowledged by officer.k")
        expect(alert_row.get_by_role("button")).to_have_count(0)

        # The acknowledgement reached the service.
        alerts = httpx.get(f"{svc.url}/alerts", params={"active_only": "true"}, timeout=10)
        acked = next(a for a in alerts.json() if a["fingerprint"] == fingerprint)
        assert acked["state"] == "acknowledged"
        assert acked["acknowledged_by"] == "officer.k"
        assert acked["ack_comment"] == "SNCR urea pump restarted"

        shot = artifacts_dir() / "ui-page.png"
        p.evaluate("window.scrollTo(0, 0)")  # the sticky header back on top
        p.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        assert log.unexpected() == []
    finally:
        assert svc.stop() == 0


def test_outside_demo_mode_the_page_asks_for_an_api_key(
    tmp_path: Path,
    mosquitto_server: MosquittoServer,
    influx_server: InfluxServer,
    influx_db: str,
    topic_prefix: str,
    page: tuple[Page, PageLog],
) -> None:
    p, log = page
    token = "pQ7vZ2kR9sLx4Tn8WcYe3HdJ6mBf"
    env = demo_env(tmp_path, mosquitto_server, influx_server, influx_db, topic_prefix)
    env |= {
        "STACKWATCH_MODE": "production",
        "STACKWATCH_API_TOKEN": token,
        # The test broker and store allow anonymous access; production mode wants credentials.
        "STACKWATCH_MQTT_URL": mosquitto_server.url.replace("://", "://sw:mqtt-pw-7Hq2@"),
        "STACKWATCH_INFLUX_TOKEN": "influx-token-8Kd3",
    }
    svc = start_service(tmp_path, env)
    try:
        p.goto(f"{svc.url}/ui/")
        form = p.get_by_role("region", name="API key required")
        expect(form).to_be_visible(timeout=TIMEOUT_MS)
        expect(p.locator("#dashboard")).to_be_hidden()

        # A wrong key is refused and the form says so.
        form.get_by_label("API key").fill("not-the-key-0123456789abcdef")
        form.get_by_role("button", name="Connect").click()
        expect(form.get_by_role("alert")).to_contain_text("refused")

        form.get_by_label("API key").fill(token)
        form.get_by_role("button", name="Connect").click()
        expect(p.locator("#dashboard")).to_be_visible(timeout=TIMEOUT_MS)
        expect(p.locator("#live-status")).to_have_attribute(
            "data-state", "connected", timeout=TIMEOUT_MS
        )
        # The live stream carries the key too: published readings reach the chart.
        chart = p.locator('canvas[data-stack="s1"][data-pollutant="nox"]')
        now_ms = int(time.time() * 1000)
        send(mosquitto_server.port, topic_prefix, "s1", [(now_ms - 2000, 80.0, 6.0)])
        expect(chart).to_have_attribute("data-last-value", "80", timeout=TIMEOUT_MS)
        assert p.evaluate("sessionStorage.getItem('stackwatch.apiKey')") == token

        # Forgetting the key brings the form back.
        p.get_by_role("button", name="Forget API key").click()
        expect(form).to_be_visible()
        assert p.evaluate("sessionStorage.getItem('stackwatch.apiKey')") is None
        log.allowed.append("status of 401")  # Chromium logs each refused request
        assert log.unexpected() == []
    finally:
        assert svc.stop() == 0
