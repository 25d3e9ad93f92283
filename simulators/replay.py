"""Replay a recorded stream over MQTT, paced like the original or faster, timestamps kept.

A replay publishes every reading to ``<prefix>/<plant>/<stack>/<sensor>`` (QoS 1) in file
order, through :func:`simulators.publisher.publish_readings`, so pacing, reconnection and
ordering are the simulator's: readings leave ``(t - t_first) / speed`` seconds after the
start (``speed=math.inf``: as fast as the broker acknowledges them), and a reading is
published only after every reading before it was acknowledged (same-time readings of
different sensors go out together, still in order).

Timestamps are either the recorded ones or all shifted to "now" by one constant
(``shift_to_now``, :func:`replay_shift_ns`): in real time the first reading is now; faster,
the last one is now when it is sent, so no reading ever lies ahead of the wall clock (a
collector refuses those more than ``max_future_s`` ahead). The payload keeps them exactly:
epoch milliseconds when the time is a whole millisecond, else an RFC 3339 string with the
nanoseconds (the collector accepts both).
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
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


def shifted_to_now(
    readings: Iterable[Reading], *, speed: float, now_ns: int, last_ns: int | None = None
) -> tuple[Iterator[Reading], int]:
    """``readings`` moved by the :func:`replay_shift_ns` constant, and that constant.

    Faster than real time the shift depends on where the recording ends: ``last_ns`` (e.g.
    :func:`simulators.recording.last_record_ns`), else the last item of a sequence; a plain
    iterator without ``last_ns`` is refused rather than read twice.

    >>> S = 1_000_000_000
    >>> rs = [Reading("p", "s", "x", t * S, 1.0, "o2", "%") for t in (0, 60, 120)]
    >>> out, shift = shifted_to_now(rs, speed=2.0, now_ns=1000 * S)
    >>> shift // S, [r.ts_ns // S for r in out]  # the last is sent 60 s after the start
    (940, [940, 1000, 1060])
    >>> shifted_to_now(iter(rs), speed=2.0, now_ns=0)
    Traceback (most recent call last):
    ValueError: shifting to now faster than real time needs the last reading's time (last_ns)
    """
    if last_ns is None and isinstance(readings, Sequence) and readings:
        last_ns = readings[-1].ts_ns
    items = iter(readings)
    first = next(items, None)
    if first is None:
        return iter(()), 0
    if last_ns is None and speed > 1:
        raise ValueError(
            "shifting to now faster than real time needs the last reading's time (last_ns)"
        )
    span_ns = max(0, (last_ns if last_ns is not None else first.ts_ns) - first.ts_ns)
    shift_ns = replay_shift_ns(first.ts_ns, span_ns, speed, now_ns)
    return shifted(itertools.chain([first], items), shift_ns), shift_ns


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
    last_ns: int | None = None,
    ca_file: str | None = None,
    password: str | None = None,
) -> ReplayStats:
    """Publish ``readings`` (in recorded order) over MQTT; see the module docstring.

    ``speed``: 1 real time, N times faster, ``math.inf`` as fast as possible. ``progress``:
    draw a bar (``None``: only on a terminal) with ``total`` readings (e.g.
    :func:`simulators.recording.count_records`). ``stop`` ends the replay early; ``now_ns`` is
    the clock ``shift_to_now`` reads, ``last_ns`` the recording's last time it needs faster
    than real time when ``readings`` is not a sequence (:func:`shifted_to_now`).
    ``on_published(n)`` is told of every acknowledged batch. ``ca_file``: the CA bundle of an
    ``mqtts://`` broker (default: the system's CAs); ``password`` replaces the URL's.
    """
    if not (speed > 0 and not math.isnan(speed)):
        raise ValueError(f"speed must be positive, got {speed}")
    started = time.monotonic()
    shift_ns = 0
    if shift_to_now:
        readings, shift_ns = shifted_to_now(readings, speed=speed, now_ns=now_ns(), last_ns=last_ns)
    items = iter(readings)
    first = next(items, None)
    if first is None:
        return ReplayStats(0, None, None, 0, time.monotonic() - started)
    # Times of readings handed to the publisher and not yet acknowledged (it reads one ahead).
    pending: deque[int] = deque()
    sent_last_ns: int | None = None

    def tracked(stream: Iterator[Reading]) -> Iterator[Reading]:
        for r in stream:
            pending.append(r.ts_ns)
            yield r

    with replay_progress(total, progress, description="replay") as advance:

        def published(n: int) -> None:
            nonlocal sent_last_ns
            for _ in range(n):
                sent_last_ns = pending.popleft()
            advance(n)
            if on_published is not None:
                on_published(n)

        count = await publish_readings(
            tracked(itertools.chain([first], items)),
            mqtt_url=mqtt_url,
            origin_ns=first.ts_ns,
            topic_prefix=topic_prefix,
            rate=speed,
            stop=stop,
            client_id=client_id,
            protocol=protocol,
            payload=replay_payload,
            on_published=published,
            ca_file=ca_file,
            password=password,
        )
    first_ns = first.ts_ns if count else None
    return ReplayStats(count, first_ns, sent_last_ns, shift_ns, time.monotonic() - started)
