"""``stackwatch run --demo`` (what ``make run`` starts): embedded broker, embedded store and a
simulated plant; the API serves live readings with no other service running."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.e2e.service import ServiceProcess, wait_until


def test_demo_mode_serves_live_simulated_readings(tmp_path: Path) -> None:
    svc = ServiceProcess(
        tmp_path,
        {
            "STACKWATCH_MQTT_EMBEDDED_PORT": "0",
            "STACKWATCH_MODE": "production",  # --demo must override it
        },
        args=("--demo",),
    )
    env = svc.env
    for key in ("STACKWATCH_MQTT_URL", "STACKWATCH_INFLUX_URL", "STACKWATCH_CONFIG"):
        env.pop(key, None)
    svc.start()
    try:
        svc.wait_healthy()
        plants = svc.get("/plants").json()
        assert [p["id"] for p in plants] == ["demo"]
        configured = {(st["id"], se["id"]) for st in plants[0]["stacks"] for se in st["sensors"]}

        def all_sensors_live() -> bool:
            latest = svc.get("/readings/latest", plant="demo").json()
            return {(r["stack"], r["sensor"]) for r in latest} == configured

        wait_until(all_sensors_live, 10, "every demo sensor has a reading")
        latest = svc.get("/readings/latest", plant="demo").json()
        now = datetime.now(UTC)
        for r in latest:
            assert now - datetime.fromisoformat(r["time"]) < timedelta(seconds=30)
        # The embedded broker accepts real clients such as mosquitto_pub.
        mqtt_url = next(
            e["url"] for e in svc.log_events() if e.get("event", "").startswith("embedded MQTT")
        )
        port = mqtt_url.rsplit(":", 1)[1]
        # A minute ahead, so the simulator's next reading does not replace it as "latest".
        ts_ms = int((now + timedelta(seconds=60)).timestamp() * 1000)
        subprocess.run(
            [
                "mosquitto_pub",
                "-h",
                "127.0.0.1",
                "-p",
                port,
                "-q",
                "1",
                "-t",
                "stackwatch/demo/boiler1/nox",
                "-m",
                f'{{"ts": {ts_ms}, "value": 1999.5}}',
            ],
            check=True,
            timeout=30,
        )
        wait_until(
            lambda: any(
                r["value"] == 1999.5
                for r in svc.get(
                    "/readings/latest", plant="demo", stack="boiler1", sensor="nox"
                ).json()
            ),
            10,
            "mosquitto_pub reading visible",
        )
        assert (tmp_path / "data" / "stackwatch.db").exists()
    finally:
        assert svc.stop() == 0, svc.logs()
