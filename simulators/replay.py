"""Replay a recorded stream over MQTT, paced like the original or faster, timestamps kept.

A replay publishes every reading to ``<prefix>/<plant>/<stack>/<sensor>`` (QoS 1) in file
order, through :func:`simulators.publisher.publish_readings`, so pacing, reconnection and
ordering are the simulator's: readings leave ``(t - t_first) / speed`` seconds after the
start (``speed=math.inf``: as fast as the broker acknowledges them), and a reading is
published only after every reading before it was acknowledged (same-time readings of
different sensors go out together, still in order).

Timestamps are either the recorded ones or all shifted by one constant so the first reading
is "now" (``shift_to_now``). The payload keeps them exactly: epoch milliseconds when the
time is a whole millisecond, else an RFC 3339 string with the nanoseconds (the collector
accepts both). With a shift and ``speed > 1`` later readings lie ahead of the wall clock; the
collector refuses those more than ``max_future_s`` (default 300 s) ahead.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import orjson

from collector.settings import MqttProtocol
from simulators.progress import replay_progress
from simulators.publisher import publish_readings
from stream.model import NS_PER_MS, Reading
from stream.timeparse import format_iso_ns


@dataclass(frozen=True, slots=True)
class ReplayStats:
    """What a replay did: readings published, their first and last (published, i.e. shifted)
    times, the shift applied, and the wall-clock seconds it took."""

    published: int
    first_ns: int | None
    last_ns: int | None
    shift_ns: int
    elapsed_s: float


def replay_payload(reading: Reading) -> bytes:
    """The collector's payload with the time kept to the nanosecond.

    >>> replay_payload(Reading("p", "s", "x", 1_700_000_000_123_000_000, 6.25, "o2", "%"))
    b'{"ts":1700000000123,"value":6.25,"status":"valid"}'
    >>> replay_payload(Reading("p", "s", "x", 1_700_000_000_123_456_789, 6.25, "o2", "%"))
    b'{"ts":"2023-11-14T22:13:20.123456789Z","value":6.25,"status":"valid"}'
    """
    ms, sub_ms = divmod(reading.ts_ns, NS_PER_MS)
    ts: int | str = ms if sub_ms == 0 else format_iso_ns(reading.ts_ns)
    return orjson.dumps({"ts": ts, "value": reading.value, "status": reading.status.value})


def replay_shift_ns(first_ns: int, span_ns: int, speed: float, now_ns: int) -> int:
    """The constant that moves a recording to "now" without any reading lying ahead of the
    wall clock when it is sent (a collector refuses future readings): in real time the first
    reading is now; N times faster, the readings at ``first + Δ`` go out ``Δ / N`` after the
    start, so the shift makes the *last* one now when it is sent; as fast as possible, the
    last one is now.

    >>> S = 1_000_000_000
    >>> replay_shift_ns(0, 3600 * S, 1.0, 10_000 * S) // S  # first reading = now
    10000
    >>> replay_shift_ns(0, 3600 * S, 4.0, 10_000 * S) // S  # last = now + 900 s, when sent
    7300
    >>> replay_shift_ns(0, 3600 * S, math.inf, 10_000 * S) // S  # last reading = now
    6400
    """
    lag = span_ns if math.isinf(speed) else span_ns * max(0.0, 1.0 - 1.0 / speed)
    return now_ns - first_ns - round(lag)


def shifted(readings: Iterable[Reading], shift_ns: int) -> Iterator[Reading]:
    """``readings`` with ``shift_ns`` added to every timestamp.

    >>> [r.ts_ns for r in shifted([Reading("p", "s", "x", 5, 1.0, "o2", "%")], 10)]
    [15]
    """
    if shift_ns == 0:
        yield from readings
        return
    for r in readings:
        yield Reading(
            r.plant, r.stack, r.sensor, r.ts_ns + shift_ns, r.value, r.quantity, r.unit, r.status
        )


async def replay_over_mqtt(
    readings: Iterable[Reading],
    *,
    mqtt_url: str,
    topic_prefix: str = "stackwatch",
    speed: float = 1.0,
    shift_to_now: bool = False,
    progress: bool | None = False,
    total: int | None = None,
    stop: asyncio.Event | None = None,
    protocol: MqttProtocol | str = MqttProtocol.V311,
    client_id: str | None = None,
    now_ns: Callable[[], int] = time.time_ns,
    on_published: Callable[[int], None] | None = None,
) -> ReplayStats:
    """Publish ``readings`` (in recorded order) over MQTT; see the module docstring.

    ``speed``: 1 real time, N times faster, ``math.inf`` as fast as possible. ``progress``:
    draw a bar (``None``: only on a terminal) with ``total`` readings (e.g.
    :func:`simulators.recording.count_records`). ``stop`` ends the replay early; ``now_ns`` is
    the clock ``shift_to_now`` reads. ``on_published(n)`` is told of every acknowledged batch.
    """
    if not (speed > 0 and not math.isnan(speed)):
        raise ValueError(f"speed must be positive, got {speed}")
    started = time.monotonic()
    items = iter(readings)
    first = next(items, None)
    if first is None:
        return ReplayStats(0, None, None, 0, time.monotonic() - started)
    shift_ns = now_ns() - first.ts_ns if shift_to_now else 0
    # Times of readings handed to the publisher and not yet acknowledged (it reads one ahead).
    pending: deque[int] = deque()
    last_ns: int | None = None

    def tracked(stream: Iterator[Reading]) -> Iterator[Reading]:
        for r in stream:
            pending.append(r.ts_ns)
            yield r

    with replay_progress(total, progress, description="replay") as advance:

        def published(n: int) -> None:
            nonlocal last_ns
            for _ in range(n):
                last_ns = pending.popleft()
            advance(n)
            if on_published is not None:
                on_published(n)

        count = await publish_readings(
            tracked(shifted(itertools.chain([first], items), shift_ns)),
            mqtt_url=mqtt_url,
            origin_ns=first.ts_ns + shift_ns,
            topic_prefix=topic_prefix,
            rate=speed,
            stop=stop,
            client_id=client_id,
            protocol=protocol,
            payload=replay_payload,
            on_published=published,
        )
    first_ns = first.ts_ns + shift_ns if count else None
    return ReplayStats(count, first_ns, last_ns, shift_ns, time.monotonic() - started)
