"""The latency benchmark's paced publisher: each fault on its own sensor, over a real broker.

Alert latency is the first firing notification of a sensor minus its injection, so a second
fault on the same sensor would be timed against the first one's notification. A fault keeps
jumping for ``fault_s``, so that it outlasts the alert flush interval at any rate.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from bench.mqttload import PacedPublisher
from bench.plantgen import FAULT_VALUE, generate_plant
from tests.servers import MosquittoServer

OnMessage = Callable[[mqtt.Client, object, mqtt.MQTTMessage], None]


@contextmanager
def subscribed(port: int, prefix: str, on_message: OnMessage) -> Iterator[None]:
    """A QoS 1 subscriber to ``prefix/#`` calling ``on_message``, subscribed on entry."""
    done = threading.Event()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{prefix}")
    sub.on_message = on_message
    sub.on_subscribe = lambda *_: done.set()
    sub.connect("127.0.0.1", port)
    sub.subscribe(f"{prefix}/#", qos=1)
    sub.loop_start()
    try:
        assert done.wait(10)
        yield
    finally:
        sub.loop_stop()
        sub.disconnect()


def test_faults_land_on_distinct_sensors_across_phases(mosquitto_server: MosquittoServer) -> None:
    prefix = f"sw{uuid.uuid4().hex[:10]}"
    plant = generate_plant(8 * 3 + 1)  # three full stacks and one with only O2 (no NOx)
    jumps: dict[str, int] = {}
    got_all = threading.Event()

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        if orjson.loads(msg.payload)["value"] == FAULT_VALUE:
            jumps[msg.topic] = jumps.get(msg.topic, 0) + 1
            if len(jumps) == 3 and min(jumps.values()) >= 2:
                got_all.set()

    with subscribed(mosquitto_server.port, prefix, on_message):
        publisher = PacedPublisher(mosquitto_server.port, plant, prefix, fault_s=0.2)
        try:
            # Identical phases: the faults fall at the same point of the stack rotation each time.
            publisher.run(2_000, 0.3, faults=1)
            publisher.run(2_000, 0.3, faults=1)
            publisher.run(2_000, 0.3, faults=1)
            publisher.run(2_000, 0.3)  # the last fault jumps on into this phase
            with pytest.raises(ValueError, match="only 0 of the plant's 4 stacks"):
                publisher.run(2_000, 0.3, faults=1)
        finally:
            publisher.close()
        assert got_all.wait(10)

    injected = [(i.sensor.plant, i.sensor.stack, i.sensor.sensor) for i in publisher.injections]
    assert len(injected) == 3
    assert len(set(injected)) == 3
    assert all(sensor == "nox" for _, _, sensor in injected)
    assert sorted(jumps) == sorted(i.sensor.topic(prefix) for i in publisher.injections)
    assert min(jumps.values()) >= 2  # jumping on after the first: one fault, not one reading


def test_data_offset_moves_the_readings_time_line(mosquitto_server: MosquittoServer) -> None:
    """With an offset, ``ts`` is the publish time less the offset (so live readings can
    continue the time line of pre-warmed models), and the phase bounds are in data time."""
    prefix = f"sw{uuid.uuid4().hex[:10]}"
    plant = generate_plant(8)
    stamps: list[float] = []
    got = threading.Event()

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        stamps.append(orjson.loads(msg.payload)["ts"])
        if len(stamps) == 40:
            got.set()

    offset = 3_600 * 10**9
    with subscribed(mosquitto_server.port, prefix, on_message):
        publisher = PacedPublisher(mosquitto_server.port, plant, prefix, data_offset_ns=offset)
        try:
            before = time.time_ns()
            first, last = publisher.run(1_000, float("inf"), limit=40)
            after = time.time_ns()
        finally:
            publisher.close()
        assert got.wait(10)
    assert before - offset <= first <= last <= after - offset
    assert all(first <= ts * 1e6 <= last + 1e3 for ts in stamps)  # float ms: within a µs
