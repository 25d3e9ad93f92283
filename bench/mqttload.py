"""MQTT load for the end-to-end benchmarks: payloads, the broker limits, publishers.

* :func:`sensor_messages` builds the ``(topic, payload)`` stream of a generated plant (one
  reading per message, or ``per_message`` consecutive readings of a sensor as a JSON array);
  :func:`write_messages` stores it as ``topic<TAB>payload`` lines (and the payloads alone, one
  per line, for ``mosquitto_pub -l``).
* :func:`c_limit` times the C clients (``mosquitto_pub -l`` → ``mosquitto_sub -C N``, QoS 1):
  the broker's limit on this machine. :func:`paho_limit` times a bare paho-mqtt subscriber
  that decodes each payload with orjson: the Python limit.
* ``python -m bench.mqttload PORT FILE`` publishes a message file with paho at QoS 1 as
  fast as it can (a separate process, so it does not share a core's GIL with what it feeds)
  and prints ``{"messages": n, "seconds": s}``.
* :class:`PacedPublisher` publishes at a given rate, stack by stack, with ``ts`` = the wall
  clock at publication (so latency is ``observed - ts``), and can inject a NOx jump that trips
  the rate-of-change rule; :class:`AlertListener` records the alert notifications.

The rates are measured from the publisher's start to the last message received, so a slow
start of either side counts against it.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.plantgen import FAULT_VALUE, GeneratedPlant, Sensor

Message = tuple[str, bytes]
_CONNECT_TIMEOUT_S = 10.0


def _payload(ts_ms: float, value: float) -> dict[str, Any]:
    return {"ts": ts_ms, "value": value, "status": "valid"}


def sensor_messages(
    plant: GeneratedPlant,
    prefix: str,
    *,
    readings: int,
    start_ms: int,
    step_ms: int = 1000,
    per_message: int = 1,
    seed: int = 0,
) -> list[Message]:
    """About ``readings`` readings of every sensor in turn, time step by time step (one
    message per sensor and step, or per sensor and ``per_message`` steps as a JSON array).

    >>> from bench.plantgen import generate_plant
    >>> msgs = sensor_messages(generate_plant(3), "b", readings=6, start_ms=0, per_message=2)
    >>> [(t, len(orjson.loads(p))) for t, p in msgs]
    [('b/p0000/s0000/o2', 2), ('b/p0000/s0000/nox', 2), ('b/p0000/s0000/so2', 2)]
    """
    rng = random.Random(seed)
    n = len(plant.sensors)
    steps = max(per_message, -(-readings // n))
    steps -= steps % per_message
    topics = [s.topic(prefix) for s in plant.sensors]
    out: list[Message] = []
    for first in range(0, steps, per_message):
        for sensor, topic in zip(plant.sensors, topics, strict=True):
            docs = [
                _payload(
                    start_ms + (first + k) * step_ms,
                    round(sensor.level + rng.gauss(0, sensor.noise), 4),
                )
                for k in range(per_message)
            ]
            out.append((topic, orjson.dumps(docs if per_message > 1 else docs[0])))
    return out


def write_messages(messages: Sequence[Message], path: Path) -> Path:
    """``path`` with ``topic<TAB>payload`` lines; ``path.payloads`` with the payloads alone
    (returned), for ``mosquitto_pub -l``."""
    path.write_bytes(b"".join(t.encode() + b"\t" + p + b"\n" for t, p in messages))
    payloads = path.with_suffix(".payloads")
    payloads.write_bytes(b"".join(p + b"\n" for _, p in messages))
    return payloads


def _c(cmd: str, port: int, *args: str) -> list[str]:
    return [cmd, "-h", "127.0.0.1", "-p", str(port), "-q", "1", *args]


class CPublisher:
    """``mosquitto_pub -l``, fed the payload lines through a pipe by a thread.

    The pipe stays open until :meth:`close`: on end of input ``mosquitto_pub`` 2.0 disconnects
    at once and drops what it has not sent yet, so closing it before the subscriber has
    everything would lose messages. ``-M 1000`` widens its window of unacknowledged messages
    (default 20) so the round trip is not the limit.
    """

    def __init__(self, port: int, topic: str, payloads: Path) -> None:
        self.proc = subprocess.Popen(
            _c("mosquitto_pub", port, "-t", topic, "-l", "-M", "1000"), stdin=subprocess.PIPE
        )
        self._data = payloads.read_bytes()
        self._feeder = threading.Thread(target=self._feed, daemon=True)
        self._feeder.start()

    def _feed(self) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self.proc.stdin.write(self._data)
            self.proc.stdin.flush()

    def close(self, timeout_s: float = 30) -> None:
        """End the input (everything has arrived) and wait for the process."""
        self._feeder.join(timeout_s)
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def c_limit(port: int, prefix: str, payloads: Path, n: int, timeout_s: float = 120) -> float:
    """Messages/s from ``mosquitto_pub -l`` to ``mosquitto_sub -C n`` (QoS 1, persistent
    session made beforehand, so nothing published before the subscriber connects is lost)."""
    client_id = f"bench-csub-{uuid.uuid4().hex[:8]}"
    sub_args = ("-c", "-i", client_id, "-t", f"{prefix}/#")
    subprocess.run(_c("mosquitto_sub", port, *sub_args, "-E"), check=True, timeout=10)
    sub = subprocess.Popen(
        _c("mosquitto_sub", port, *sub_args, "-C", str(n)), stdout=subprocess.DEVNULL
    )
    start = time.perf_counter()
    pub = CPublisher(port, f"{prefix}/c/c/c", payloads)
    try:
        sub.wait(timeout_s)
        elapsed = time.perf_counter() - start
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"mosquitto_sub did not get {n} messages in {timeout_s} s") from None
    finally:
        pub.close()
        if sub.poll() is None:
            sub.kill()
            sub.wait()
    if sub.returncode != 0:
        raise RuntimeError(f"mosquitto_sub exited {sub.returncode}")
    return n / elapsed


def _connected_client(port: int, client_id: str, *, inflight: int = 20) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    # A window of unacknowledged QoS 1 messages wide enough that the round trip is not the
    # limit (paho's default is 20); nothing is dropped when its queue grows.
    client.max_inflight_messages_set(inflight)
    client.max_queued_messages_set(0)
    ready = threading.Event()
    client.on_connect = lambda c, u, f, rc, p: ready.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    if not ready.wait(_CONNECT_TIMEOUT_S):
        client.loop_stop()
        raise TimeoutError(f"paho client {client_id} did not connect")
    return client


def _subscribe(client: mqtt.Client, topic: str) -> None:
    subscribed = threading.Event()
    client.on_subscribe = lambda c, u, mid, codes, p: subscribed.set()
    client.subscribe(topic, qos=1)
    if not subscribed.wait(_CONNECT_TIMEOUT_S):
        raise TimeoutError(f"no SUBACK for {topic}")


def paho_limit(port: int, prefix: str, payloads: Path, n: int, timeout_s: float = 120) -> float:
    """Messages/s into a bare paho-mqtt subscriber (callback API v2, QoS 1, automatic acks)
    that decodes every payload with orjson."""
    received = 0
    done = threading.Event()

    def on_message(client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        nonlocal received
        orjson.loads(message.payload)
        received += 1
        if received >= n:
            done.set()

    client = _connected_client(port, f"bench-paho-{uuid.uuid4().hex[:8]}")
    try:
        client.on_message = on_message
        _subscribe(client, f"{prefix}/#")
        start = time.perf_counter()
        pub = CPublisher(port, f"{prefix}/py/py/py", payloads)
        finished = done.wait(timeout_s)
        elapsed = time.perf_counter() - start
        pub.close()
    finally:
        client.disconnect()
        client.loop_stop()
    if not finished:
        raise TimeoutError(f"the paho subscriber got {received} of {n} messages")
    return n / elapsed


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def publish_packet(topic: str, payload: bytes, packet_id: int) -> bytes:
    """An MQTT 3.1.1 PUBLISH packet at QoS 1.

    >>> publish_packet("a/b", b"{}", 1).hex(" ")
    '32 09 00 03 61 2f 62 00 01 7b 7d'
    """
    t = topic.encode()
    body = len(t).to_bytes(2, "big") + t + packet_id.to_bytes(2, "big") + payload
    return b"\x32" + _varint(len(body)) + body


class RawPublisher:
    """A minimal MQTT 3.1.1 QoS 1 publisher on a plain socket.

    paho-mqtt publishes a few thousand messages/s from Python, less than the pipeline under
    test takes, so it cannot feed it at full speed; this client writes pre-encoded PUBLISH
    packets and counts the PUBACKs in a thread, keeping at most ``window`` unacknowledged
    (packet ids cycle through 1..65535; a window below that keeps them unique).
    """

    def __init__(self, port: int, client_id: str, window: int = 20_000) -> None:
        if not 0 < window < 65_535:
            raise ValueError("window must be in 1..65534")
        self._window = window
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=_CONNECT_TIMEOUT_S)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        cid = client_id.encode()
        body = b"\x00\x04MQTT\x04\x02\x00\x3c" + len(cid).to_bytes(2, "big") + cid
        self._sock.sendall(b"\x10" + _varint(len(body)) + body)
        connack = self._recv_exactly(4)
        if connack[0] != 0x20 or connack[3] != 0:
            raise ConnectionError(f"broker refused the connection: {connack.hex()}")
        self._sock.settimeout(None)
        self.sent = 0
        self.acked = 0
        self._next_id = 1
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _recv_exactly(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self._sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("broker closed the connection")
            data += chunk
        return data

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = self._sock.recv(65_536)
            except OSError:
                chunk = b""
            if not chunk:
                with self._cond:
                    self.acked = -1  # closed: wake the waiters
                    self._cond.notify_all()
                return
            buf += chunk
            pubacks = 0
            pos = 0
            while len(buf) - pos >= 2:
                length, used, shift = 0, 1, 0
                while True:  # remaining length (a PUBACK's is 2; be general anyway)
                    if pos + used >= len(buf):
                        break
                    byte = buf[pos + used]
                    length |= (byte & 0x7F) << shift
                    used += 1
                    shift += 7
                    if not byte & 0x80:
                        break
                if pos + used + length > len(buf) or buf[pos + used - 1] & 0x80:
                    break
                if buf[pos] >> 4 == 4:
                    pubacks += 1
                pos += used + length
            buf = buf[pos:]
            if pubacks:
                with self._cond:
                    self.acked += pubacks
                    self._cond.notify_all()

    def publish(self, messages: Sequence[Message], chunk: int = 1000) -> None:
        """Send ``messages`` (waiting whenever ``window`` are unacknowledged)."""
        for i in range(0, len(messages), chunk):
            part = messages[i : i + chunk]
            with self._cond:
                while self.sent + len(part) - self.acked > self._window and self.acked >= 0:
                    self._cond.wait()
                if self.acked < 0:
                    raise ConnectionError("broker closed the connection")
            packets = []
            for topic, payload in part:
                packets.append(publish_packet(topic, payload, self._next_id))
                self._next_id = self._next_id % 65_535 + 1
            self._sock.sendall(b"".join(packets))
            self.sent += len(part)

    def wait_acked(self, timeout_s: float) -> None:
        """Return once every message sent is acknowledged."""
        with self._cond:
            if not self._cond.wait_for(
                lambda: self.acked >= self.sent or self.acked < 0, timeout_s
            ):
                raise TimeoutError(f"{self.acked} of {self.sent} messages acknowledged")
            if self.acked < 0:
                raise ConnectionError("broker closed the connection")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.sendall(b"\xe0\x00")  # DISCONNECT
        self._sock.close()
        self._reader.join(5)


def publish_file(port: int, path: Path, timeout_s: float = 600) -> tuple[int, float]:
    """Publish every ``topic<TAB>payload`` line of ``path`` at QoS 1 with
    :class:`RawPublisher`; returns (messages, seconds until the last PUBACK)."""
    messages = [line.split(b"\t", 1) for line in path.read_bytes().splitlines()]
    decoded = [(t.decode(), p) for t, p in messages]
    publisher = RawPublisher(port, f"bench-pub-{uuid.uuid4().hex[:8]}")
    try:
        start = time.perf_counter()
        publisher.publish(decoded)
        publisher.wait_acked(timeout_s)
        return len(decoded), time.perf_counter() - start
    finally:
        publisher.close()


def start_publisher(port: int, path: Path, log: Path) -> subprocess.Popen[bytes]:
    """``python -m bench.mqttload`` on ``path`` in its own process (stdout: the JSON result)."""
    with log.open("ab") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "bench.mqttload", str(port), str(path)],
            stdout=subprocess.PIPE,
            stderr=err,
            cwd=Path(__file__).resolve().parent.parent,
        )


def publisher_result(proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 600) -> float:
    """Messages/s reported by a :func:`start_publisher` process (``log``: its stderr)."""
    out, _ = proc.communicate(timeout=timeout_s)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"the publisher exited {proc.returncode}:\n{tail}")
    doc = json.loads(out)
    return float(doc["messages"]) / float(doc["seconds"])


@dataclass
class Injection:
    """A NOx fault on ``sensor`` whose first jump was published at ``published_ns`` (wall
    clock)."""

    sensor: Sensor
    published_ns: int


@dataclass
class PacedPublisher:
    """Publishes the plant's readings at ``rate`` readings/s, one stack's time step at a time,
    with ``ts`` = the wall clock (float epoch ms) at the start of the step, less
    ``data_offset_ns`` (so the readings can continue a time line that ended earlier, e.g.
    that of pre-warmed models; the publish time of a reading is its ``ts`` plus the offset).

    A fault is a NOx analyser jumping between :data:`FAULT_VALUE` and its level at every step
    for ``fault_s`` seconds. It must outlast the alert flush interval: the detector clears a
    fault after a count of clean readings (a fraction of a second at high rates), and an
    alert that fires and resolves between two flushes is never announced (as in
    Alertmanager), so a one-reading jump went unnoticed at 90 % of the service's rate."""

    port: int
    plant: GeneratedPlant
    prefix: str
    seed: int = 0
    fault_s: float = 2.0
    data_offset_ns: int = 0
    injections: list[Injection] = field(default_factory=list)
    published: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._stacks = self.plant.stacks()
        self._next_stack = 0
        # Faults go to stacks taken from the end, each once: the first firing notification
        # of a sensor is what an injection is timed against, so a sensor must not carry two.
        candidates = [
            i
            for i in range(len(self._stacks) - 1, -1, -1)
            if any(sensor.sensor == "nox" for sensor in self._stacks[i])
        ]
        self._fault_stacks = iter(candidates)
        self._faults_left = len(candidates)
        self._faulty: dict[int, tuple[float, int]] = {}  # stack -> (perf_counter end, steps)
        self._client = RawPublisher(self.port, f"bench-paced-{uuid.uuid4().hex[:8]}")

    def _stack_order(self) -> Iterator[int]:
        while True:
            yield self._next_stack
            self._next_stack = (self._next_stack + 1) % len(self._stacks)

    def run(
        self, rate: float, seconds: float, faults: int = 0, limit: int | None = None
    ) -> tuple[int, int]:
        """Publish for ``seconds`` (or until ``limit`` readings) at ``rate``; start ``faults``
        NOx faults spread over the phase, each on a stack not used for one before (at that
        stack's first time step once the fault is due; it may run on into the next phase).
        Returns the phase's (first, last) ``ts`` in ns (data time: less the offset)."""
        if faults > self._faults_left:
            raise ValueError(
                f"{faults} faults asked for, but only {self._faults_left} of the plant's "
                f"{len(self._stacks)} stacks have a NOx sensor without one: use more sensors"
            )
        self._faults_left -= faults
        start = time.perf_counter()
        fault_at = [seconds * (k + 1) / (faults + 1) for k in range(faults)]
        target: int | None = None  # the stack of the fault that is due
        sent = 0
        offset = self.data_offset_ns
        first_ns = last_ns = time.time_ns() - offset
        for index in self._stack_order():
            elapsed = time.perf_counter() - start
            if elapsed >= seconds or (limit is not None and sent >= limit):
                break
            due = sent / rate
            if due > elapsed:
                time.sleep(due - elapsed)  # pacing the load, not synchronisation
            if target is None and fault_at and time.perf_counter() - start >= fault_at[0]:
                target = next(self._fault_stacks)
            now_ns = time.time_ns()
            last_ns = now_ns - offset
            ts_ms = last_ns / 1e6
            burst: list[Message] = []
            stack = self._stacks[index]
            if index == target:
                self._faulty[index] = (time.perf_counter() + self.fault_s, 0)
                fault_at.pop(0)
                target = None
            faulty = self._faulty.get(index)
            if faulty is not None and time.perf_counter() >= faulty[0]:
                del self._faulty[index]
                faulty = None
            for sensor in stack:
                value = round(sensor.level + self._rng.gauss(0, sensor.noise), 4)
                if faulty is not None and sensor.sensor == "nox":
                    if faulty[1] == 0:
                        self.injections.append(Injection(sensor, now_ns))
                    if faulty[1] % 2 == 0:
                        value = FAULT_VALUE
                    self._faulty[index] = (faulty[0], faulty[1] + 1)
                burst.append((sensor.topic(self.prefix), orjson.dumps(_payload(ts_ms, value))))
            self._client.publish(burst)
            sent += len(stack)
        self.published += sent
        return first_ns, last_ns

    def close(self) -> None:
        self._client.wait_acked(30)
        self._client.close()


class AlertListener:
    """Records every alert notification on ``<prefix>/alerts/#`` with its arrival time."""

    def __init__(self, port: int, prefix: str) -> None:
        self.received: list[tuple[int, dict[str, Any]]] = []
        self._client = _connected_client(port, f"bench-alerts-{uuid.uuid4().hex[:8]}")
        self._client.on_message = lambda c, u, m: self.received.append(
            (time.time_ns(), orjson.loads(m.payload))
        )
        _subscribe(self._client, f"{prefix}/alerts/#")

    def first_firing(self) -> dict[tuple[str, str, str], int]:
        """Arrival time of the first firing ``sensor_fault`` notification per sensor."""
        out: dict[tuple[str, str, str], int] = {}
        for at, doc in list(self.received):
            if doc.get("status") != "firing":
                continue
            for alert in doc.get("alerts", []):
                labels = alert.get("labels", {})
                if alert.get("rule") == "sensor_fault" and "sensor" in labels:
                    key = (labels["plant"], labels["stack"], labels["sensor"])
                    out.setdefault(key, at)
        return out

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def _main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m bench.mqttload PORT FILE (a broker on 127.0.0.1)", file=sys.stderr)
        return 2
    port, path = argv
    messages, seconds = publish_file(int(port), Path(path))
    print(json.dumps({"messages": messages, "seconds": seconds}))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
