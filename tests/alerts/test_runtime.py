"""The alerts runtime with a fake clock: sources → lifecycle → dispatch → audit, and restarts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from alerts.audit import read, verify
from alerts.model import State
from alerts.runtime import AlertRuntime
from alerts.settings import AlertsSettings, load_alerts_config
from stream.compliance.points import STA
from stream.detect.events import DetectionEvent, EventType
from stream.model import NS_PER_S, Reading, Status
from stream.plant import PlantConfig, parse_plant_config
from stream.storage.base import FieldValue, Point

T0 = 1_767_225_600 * NS_PER_S
PLANT = """
plants:
  p1:
    stacks:
      s1:
        reference_o2: 6
        sensors:
          nox: {quantity: nox, unit: mg/Nm3, valid_range: [0, 2000], interval_s: 1}
          o2: {quantity: o2, unit: "%", valid_range: [0, 25], interval_s: 1}
        limits:
          nox: {daily: 200, half_hour: 400}
"""
ALERTS = {
    "route": {"receivers": ["officers"], "group_wait_s": 0, "group_interval_s": 10},
    "receivers": [{"name": "officers"}],
}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += round(seconds * NS_PER_S)


@pytest.fixture
def plant() -> PlantConfig:
    return parse_plant_config(yaml.safe_load(PLANT), Path("plant.yaml"))


@pytest.fixture
def clock() -> Clock:
    return Clock()


def runtime(tmp_path: Path, plant: PlantConfig, clock: Clock) -> AlertRuntime:
    path = tmp_path / "alerts.yaml"
    path.write_text(yaml.safe_dump(ALERTS))
    config = load_alerts_config(path, topic_prefix="t")
    return AlertRuntime(
        config,
        plant,
        data_dir=tmp_path / "data",
        fanouts=config.receivers.build(None),
        settings=AlertsSettings(flush_interval_s=1),
        clock=clock,
    )


@pytest.fixture
def rt(tmp_path: Path, plant: PlantConfig, clock: Clock) -> Iterator[AlertRuntime]:
    r = runtime(tmp_path, plant, clock)
    yield r


def sta(minute: int, validated: float) -> Point:
    fields: dict[str, FieldValue] = {
        "state": "valid",
        "n_valid": 1800,
        "normalised": validated,
        "validated": validated,
    }
    return Point(
        STA, {"plant": "p1", "stack": "s1", "pollutant": "nox"}, fields, T0 + minute * 60 * NS_PER_S
    )


def reading(sensor: str, seconds: int, status: Status = Status.VALID) -> Reading:
    unit = "%" if sensor == "o2" else "mg/Nm3"
    return Reading("p1", "s1", sensor, T0 + seconds * NS_PER_S, 6.0, sensor, unit, status)


async def test_a_breach_fires_notifies_once_and_resolves_with_hysteresis(
    rt: AlertRuntime, clock: Clock
) -> None:
    rt.observe([], [sta(0, 300.0), sta(30, 450.0)])
    [alert] = rt.store.current(rule="limit_breach")
    assert alert.state is State.FIRING and alert.value == 450.0
    sent = await rt.tick()
    assert [(n.receiver, n.reason.value) for n in sent] == [("officers", "first")]
    # Re-evaluations repeat older averages: they are not signalled again.
    rt.observe([], [sta(0, 300.0), sta(30, 450.0), sta(60, 390.0)])
    assert rt.store.current(rule="limit_breach")[0].state is State.FIRING  # 390 > 0.95 × 400
    clock.advance(1)
    assert await rt.tick() == []
    rt.observe([], [sta(90, 370.0)])
    assert rt.store.current(rule="limit_breach")[0].state is State.RESOLVED
    clock.advance(1)
    sent = await rt.tick()
    assert [(n.reason.value, n.status) for n in sent] == [("resolved", "resolved")]
    await rt.close()
    report = verify(rt.audit.path)
    assert report.ok and report.entries >= 5
    kinds = [e.kind for e in read(rt.audit.path, newest_first=False, limit=100)]
    assert kinds.count("notification_sent") == 2


async def test_state_survives_a_restart(tmp_path: Path, plant: PlantConfig, clock: Clock) -> None:
    first = runtime(tmp_path, plant, clock)
    first.observe([], [sta(30, 450.0)])
    assert len(await first.tick()) == 1
    fp = first.store.current(rule="limit_breach")[0].fingerprint
    first.acknowledge(fp, "officer.k", "urea pump restarted")
    await first.close()

    second = runtime(tmp_path, plant, clock)
    clock.advance(20)
    assert await second.tick() == []  # already notified before the restart
    [alert] = second.store.current(rule="limit_breach")
    assert alert.state is State.ACKNOWLEDGED and alert.acknowledged_by == "officer.k"
    await second.close()
    assert verify(second.audit.path).ok


async def test_calibration_opens_a_maintenance_window_that_mutes_the_sensor(
    rt: AlertRuntime, clock: Clock
) -> None:
    rt.observe([reading("nox", 0, Status.CALIBRATION)])
    [silence] = rt.silences.list(now_ns=clock())
    assert silence.source == "plant_status"
    event = DetectionEvent(
        EventType.ANOMALY, "p1", "s1", "nox", clock(), True, "residual", 1.0, "v"
    )
    rt.on_detection_event(event)
    assert await rt.tick() == []
    suppressed = [e for e in read(rt.audit.path) if e.kind == "notification_suppressed"]
    assert len(suppressed) == 1 and suppressed[0].data["reason"] == "silenced"
    # Back to valid: the window closes; what still fires is notified now, with the new anomaly.
    clock.advance(60)
    rt.observe([reading("nox", 60)])
    assert rt.silences.list(now_ns=clock()) == []
    rt.on_detection_event(
        DetectionEvent(EventType.ANOMALY, "p1", "s1", "o2", clock(), True, "residual", 1.0, "v")
    )
    clock.advance(1)
    [notification] = await rt.tick()
    assert sorted(a.labels["sensor"] for a in notification.firing) == ["nox", "o2"]
    await rt.close()


async def test_a_silent_sensor_raises_no_data_after_its_grace(
    rt: AlertRuntime, clock: Clock
) -> None:
    rt.observe([reading("nox", 0), reading("o2", 0)])
    clock.advance(9)  # silence counts from 10 s (3 intervals, at least 10 s)
    await rt.tick()
    assert rt.store.current(rule="no_data") == []
    clock.advance(1)
    rt.observe([reading("o2", 10)])
    await rt.tick()
    [alert] = rt.store.current(rule="no_data")
    assert alert.state is State.PENDING and alert.labels["sensor"] == "nox"
    clock.advance(60)  # the rule's grace (for_s)
    rt.observe([reading("o2", 70)])
    await rt.tick()
    assert rt.store.current(rule="no_data")[0].state is State.FIRING
    rt.observe([reading("nox", 71)])
    assert rt.store.current(rule="no_data")[0].state is State.RESOLVED
    await rt.close()


async def test_service_health_changes_become_alerts(rt: AlertRuntime, clock: Clock) -> None:
    rt.health("store", True, "ok")
    assert rt.store.current(rule="service_health") == []
    rt.health("store", False, "connection refused")
    rt.health("store", False, "connection refused")  # unchanged: nothing new
    [alert] = rt.store.current(rule="service_health")
    assert alert.state is State.PENDING
    clock.advance(30)
    await rt.tick()
    assert rt.store.current(rule="service_health")[0].state is State.FIRING
    rt.health("store", True, "writes recovered")
    assert rt.store.current(rule="service_health")[0].state is State.RESOLVED
    await rt.close()
