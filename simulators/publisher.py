"""Publish simulated readings over MQTT in (scaled) real time, like a plant's data logger would.

Each reading goes to ``<prefix>/<plant>/<stack>/<sensor>`` with QoS 1 as
``{"ts": <epoch ms>, "value": <float>, "status": "valid"}``. Readings leave at the pace of
their timestamps times ``1 / rate``. If the broker is unreachable the publisher reconnects
(a fresh client per attempt, capped exponential backoff) and resumes with the reading that
failed, so, like a logger with store-and-forward, nothing is skipped: readings whose time
passed during the outage are sent as fast as the broker takes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import ssl
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import aiomqtt
import orjson
import structlog

from collector.settings import MqttProtocol
from simulators.plant import PlantSimulator
from stream.model import NS_PER_MS, NS_PER_S, Reading

_MAX_CONCURRENT_PUBLISHES = 8
_PROTOCOLS = {MqttProtocol.V311: aiomqtt.ProtocolVersion.V311,
              MqttProtocol.V5: aiomqtt.ProtocolVersion.V5}  # fmt: skip


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where and how to connect, from ``mqtt[s]://[user[:password]@]host[:port]``.

    >>> BrokerAddress.parse("mqtt://sim:s%40cret@broker.local:1884")
    BrokerAddress(host='broker.local', port=1884, username='sim', password='s@cret', tls=False)
    >>> BrokerAddress.parse("mqtts://broker.local").port
    8883
    """

    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise ValueError(f"broker URL must start with mqtt:// or mqtts://: {url!r}")
        if not parts.hostname:
            raise ValueError(f"broker URL has no host: {url!r}")
        tls = parts.scheme == "mqtts"
        return cls(
            host=parts.hostname,
            port=parts.port or (8883 if tls else 1883),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=tls,
        )


def topic_for(prefix: str, reading: Reading) -> str:
    """``<prefix>/<plant>/<stack>/<sensor>``, the topic layout the collector subscribes to."""
    return f"{prefix}/{reading.plant}/{reading.stack}/{reading.sensor}"


def payload_for(reading: Reading) -> bytes:
    """The JSON payload the collector decodes: epoch milliseconds, value, status.

    >>> payload_for(Reading("p", "s", "x", 1_700_000_000_123_456_789, 6.25, "o2", "%"))
    b'{"ts":1700000000123,"value":6.25,"status":"valid"}'
    """
    return orjson.dumps(
        {"ts": reading.ts_ns // NS_PER_MS, "value": reading.value, "status": reading.status.value}
    )


def _batches(readings: Iterable[Reading]) -> Iterator[list[Reading]]:
    """Consecutive readings with the same timestamp, published together."""
    for _, batch in itertools.groupby(readings, key=lambda r: r.ts_ns):
        yield list(batch)


def _disconnection(client: aiomqtt.Client) -> asyncio.Future[None]:
    """The future aiomqtt 2.5 resolves when the connection ends (private: it has no public
    equivalent). Needed because aiomqtt does not fail publishes in flight when the connection
    drops; they would wait for a PUBACK until the client timeout (10 s) runs out."""
    future: asyncio.Future[None] = client._disconnected
    return future


async def _publish_batch(
    client: aiomqtt.Client,
    prefix: str,
    batch: list[Reading],
    payload: Callable[[Reading], bytes] = payload_for,
) -> None:
    """Publish concurrently (each QoS 1 publish waits for its PUBACK). On the first failure,
    or when the connection drops, the rest are cancelled and ``MqttError`` is raised, so the
    whole batch is sent again after reconnecting.

    Order is kept: the tasks start in batch order, each hands its packet to paho (which sends
    in call order) before its first ``await``, and aiomqtt's bound on concurrent publishes is
    an ``asyncio.Semaphore``, which wakes its waiters first in, first out. Batches are
    sequential (the next starts after every PUBACK of this one)."""
    lost = _disconnection(client)
    tasks = [
        asyncio.ensure_future(client.publish(topic_for(prefix, r), payload(r), qos=1))
        for r in batch
    ]
    try:
        remaining = set(tasks)
        while remaining:
            done, _ = await asyncio.wait(remaining | {lost}, return_when=asyncio.FIRST_COMPLETED)
            if lost in done:
                cause = None if lost.cancelled() else lost.exception()
                raise aiomqtt.MqttError("connection lost while publishing") from cause
            for task in done:
                task.result()  # the first publish error, if any
            remaining -= done
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _wait_unless_stopped(stop: asyncio.Event, seconds: float) -> bool:
    """Wait ``seconds`` (pacing, backoff) unless ``stop`` is set; ``False`` if it is."""
    if seconds > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
    return not stop.is_set()


class _Pacer:
    """Maps simulation time to wall-clock time: ``sim_ns`` is due ``(sim_ns - origin) / rate``
    seconds after the pacer was created. ``rate`` may be ``math.inf`` (no waiting)."""

    def __init__(self, origin_ns: int, rate: float, stop: asyncio.Event) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self._origin_ns = origin_ns
        self._rate = rate
        self._stop = stop
        self._wall0 = time.monotonic()

    async def wait_until(self, sim_ns: int) -> bool:
        """Wait until ``sim_ns`` is due; ``False`` if stopped first."""
        delay = self._wall0 + (sim_ns - self._origin_ns) / NS_PER_S / self._rate - time.monotonic()
        return await _wait_unless_stopped(self._stop, delay)


async def publish_readings(
    readings: Iterable[Reading],
    *,
    mqtt_url: str,
    origin_ns: int,
    topic_prefix: str = "stackwatch",
    rate: float = 1.0,
    stop: asyncio.Event | None = None,
    client_id: str | None = None,
    protocol: MqttProtocol | str = MqttProtocol.V311,
    reconnect_min_s: float = 0.5,
    reconnect_max_s: float = 30.0,
    payload: Callable[[Reading], bytes] = payload_for,
    on_published: Callable[[int], None] | None = None,
    ca_file: str | None = None,
    password: str | None = None,
) -> int:
    """Publish time-ordered ``readings`` paced against ``origin_ns``; the engine behind
    :func:`publish_simulation`, reusable for replayed or fault-injected streams.

    ``payload`` encodes a reading (default :func:`payload_for`); ``on_published(n)`` is called
    after each batch of ``n`` readings is acknowledged (progress reporting). ``ca_file`` is the
    CA bundle that signed an ``mqtts://`` broker's certificate (default: the system's CAs);
    ``password`` replaces the URL's (e.g. ``STACKWATCH_MQTT_PASSWORD``, kept out of URLs).
    Returns the number of readings published once the readings are exhausted or ``stop`` is
    set.
    """
    address = BrokerAddress.parse(mqtt_url)
    version = _PROTOCOLS[MqttProtocol(protocol)]
    stop = stop if stop is not None else asyncio.Event()
    identifier = client_id or f"stackwatch-sim-{uuid.uuid4().hex[:12]}"
    log = structlog.get_logger(__name__).bind(broker=f"{address.host}:{address.port}")
    pacer = _Pacer(origin_ns, rate, stop)
    batches = _batches(readings)
    pending: list[Reading] | None = None
    published = 0
    backoff = reconnect_min_s
    failing = False
    while not stop.is_set():
        client = aiomqtt.Client(
            address.host,
            address.port,
            username=address.username,
            password=password if password is not None else address.password,
            identifier=identifier,
            protocol=version,
            tls_context=ssl.create_default_context(cafile=ca_file) if address.tls else None,
            # Bounds concurrent QoS 1 publishes (each waits for its PUBACK); above 10, aiomqtt
            # warns about pending calls.
            max_concurrent_outgoing_calls=_MAX_CONCURRENT_PUBLISHES,
        )
        try:
            async with client:
                if failing:
                    log.info("simulator reconnected")
                    failing = False
                backoff = reconnect_min_s
                while True:
                    if pending is None:
                        pending = next(batches, None)
                        if pending is None:
                            return published
                    if not await pacer.wait_until(pending[0].ts_ns):
                        return published
                    await _publish_batch(client, topic_prefix, pending, payload)
                    published += len(pending)
                    if on_published is not None:
                        on_published(len(pending))
                    pending = None
        except aiomqtt.MqttError as err:
            if not failing:
                log.warning("simulator cannot publish; retrying", error=str(err))
                failing = True
            await _wait_unless_stopped(stop, backoff)
            backoff = min(reconnect_max_s, backoff * 2)
    return published


async def publish_simulation(
    sim: PlantSimulator,
    *,
    mqtt_url: str,
    topic_prefix: str = "stackwatch",
    rate: float = 1.0,
    stop: asyncio.Event | None = None,
    client_id: str | None = None,
    protocol: MqttProtocol | str = MqttProtocol.V311,
    reconnect_min_s: float = 0.5,
    reconnect_max_s: float = 30.0,
) -> int:
    """Publish ``sim``'s readings at wall-clock pace until ``stop`` is set.

    ``rate`` is the speed-up factor (``math.inf``: as fast as the broker takes them). Readings
    carry the simulation time, which starts at ``sim.now_ns`` (by default the moment the
    simulator was created); with ``rate > 1`` it runs ahead of the clock, and a collector
    refuses readings too far in the future. MQTT 3.1.1 by default, since the embedded demo
    broker speaks nothing else. Returns the number of readings published.
    """
    return await publish_readings(
        sim.stream(),
        mqtt_url=mqtt_url,
        origin_ns=sim.now_ns,
        topic_prefix=topic_prefix,
        rate=rate,
        stop=stop,
        client_id=client_id,
        protocol=protocol,
        reconnect_min_s=reconnect_min_s,
        reconnect_max_s=reconnect_max_s,
    )
