"""The live hub: fans readings, derived points and alert transitions out to live subscribers.

Publishers (the writer's derive hook, the alerts pipeline) call the synchronous ``publish_*``
methods on the event loop; they never wait: each subscriber has its own bounded queue, and a
full queue drops its **oldest** event and counts it, so a slow client loses data instead of
slowing ingestion. The next thing that subscriber receives is a :class:`Dropped` notice
(events dropped since the previous notice, and in total), then the oldest event still queued.
Events are serialised to JSON once per event, only when some subscriber wants them, and the
same :class:`LiveEvent` is shared by every queue (memory per client: ``queue_size`` references).

The hub is transport-agnostic (``api.routes.live`` serves it as Server-Sent Events and logs
the clients coming and going). It is live data only: there is no replay and no resume after a
reconnect (no event ids).

Event types (``data`` is a JSON object; times as RFC 3339 UTC ``time`` plus exact ``time_ns``):

==============  ===========================================================================
``reading``     every accepted reading: plant, stack, sensor, quantity, unit, value, status
``average``     compliance results: ``period`` ``short_term`` (``compliance_sta``), ``day``
                (``compliance_daily``, re-sent as the day progresses, final with
                ``complete=true``), ``month``/``year`` (``compliance_period``, running);
                tags and fields of the stored point
``score``       anomaly scores (``anomaly_scores``) that are flagged only: ``is_anomaly`` or
                ``drift`` true. Normal scores (one per reading) are not streamed: they would
                double the volume and show nothing; the REST API has the full series
``detection``   detection events (``detection_events``): a fault, anomaly or drift starts/ends
``pems``        soft-sensor predictions (``pems``), including substitute values
``alert``       alert state transitions, as ``/alerts/history`` returns them
==============  ===========================================================================

Filtering: an event matches a :class:`LiveFilter` when its type is selected and its plant
(stack) equals the filter's. An event without a plant (stack) — e.g. a service-health alert
(broker or store unreachable) — concerns every plant (stack) and matches any such filter.

>>> from stream.model import Reading
>>> hub = LiveHub(queue_size=2)
>>> sub = hub.subscribe(LiveFilter(plant="demo", types=frozenset({EventType.READING})))
>>> hub.publish_readings(
...     [Reading("demo", "b1", "nox", i, float(i), "nox", "mg/Nm3") for i in range(3)]
... )
>>> sub.get_nowait()
Dropped(count=1, total=1)
>>> event = sub.get_nowait()
>>> event.type, orjson.loads(event.data)["value"]
(<EventType.READING: 'reading'>, 1.0)
>>> sub.close()
>>> hub.clients
0
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import TracebackType
from typing import Any, Self, TypeVar

import orjson

from alerts.model import Transition
from api.alert_schemas import TransitionOut
from stream.compliance.points import DAILY, PERIOD, STA
from stream.detect.events import EVENTS
from stream.model import Reading, datetime_from_ns
from stream.storage.base import Point

SCORES = "anomaly_scores"
"""``stream.detect.live.SCORES`` (not imported: that module pulls in the detectors)."""
PEMS = "pems"
"""``stream.pems.live.PEMS`` (not imported: that module pulls in river)."""

DEFAULT_QUEUE_SIZE = 1000
DEFAULT_HEARTBEAT_S = 15.0
DEFAULT_MAX_CLIENTS = 100

_T = TypeVar("_T")


class EventType(StrEnum):
    """What a live event carries (the SSE ``event:`` name)."""

    READING = "reading"
    AVERAGE = "average"
    SCORE = "score"
    DETECTION = "detection"
    PEMS = "pems"
    ALERT = "alert"


ALL_TYPES = frozenset(EventType)

_AVERAGE_PERIOD = {STA: "short_term", DAILY: "day"}


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """One event as every matching subscriber receives it; ``data`` is its JSON text."""

    type: EventType
    plant: str | None
    stack: str | None
    data: str


@dataclass(frozen=True, slots=True)
class Dropped:
    """``count`` events were dropped just before the next event (``total`` since subscribing)."""

    count: int
    total: int


@dataclass(frozen=True, slots=True)
class LiveFilter:
    """Which events a subscriber wants (None: any plant / any stack)."""

    plant: str | None = None
    stack: str | None = None
    types: frozenset[EventType] = field(default=ALL_TYPES)

    def matches(self, type_: EventType, plant: str | None, stack: str | None) -> bool:
        return (
            type_ in self.types
            and (self.plant is None or plant is None or plant == self.plant)
            and (self.stack is None or stack is None or stack == self.stack)
        )


class LiveUnavailableError(Exception):
    """A subscription was refused: the hub is closed or has ``max_clients`` subscribers."""


class SubscriptionClosedError(Exception):
    """The subscription was closed (by its owner, or by :meth:`LiveHub.close`)."""


class Subscription:
    """One subscriber's bounded queue. Use it as a (async) context manager or call
    :meth:`close`: closing unsubscribes, discards what is queued and ends the iteration.

    Iterating (``async for``) yields :class:`LiveEvent` and :class:`Dropped` items until the
    subscription is closed. Must be used on the hub's event loop.
    """

    def __init__(self, hub: LiveHub, live_filter: LiveFilter, queue_size: int) -> None:
        self.filter = live_filter
        self._hub = hub
        self._queue: deque[LiveEvent] = deque(maxlen=queue_size)
        self._ready = asyncio.Event()
        self._unreported = 0
        self.dropped = 0
        """Events dropped since subscribing (the queue was full)."""
        self.closed = False

    def offer(self, event: LiveEvent) -> None:
        """Queue ``event`` without waiting; a full queue drops its oldest event."""
        if self.closed:
            return
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
            self._unreported += 1
            self._hub.dropped_total += 1
        self._queue.append(event)  # a full deque(maxlen) discards from the left
        self._ready.set()

    def get_nowait(self) -> LiveEvent | Dropped | None:
        """The next item, or None when nothing is queued (or the subscription is closed)."""
        if self._unreported:
            notice = Dropped(self._unreported, self.dropped)
            self._unreported = 0
            return notice
        if self._queue:
            return self._queue.popleft()
        return None

    async def next(self, timeout_s: float | None = None) -> LiveEvent | Dropped | None:
        """Wait for the next item; None when ``timeout_s`` passed without one.

        Raises :class:`SubscriptionClosedError` once the subscription is closed.
        """
        while True:
            if self.closed:
                raise SubscriptionClosedError
            item = self.get_nowait()
            if item is not None:
                return item
            self._ready.clear()
            try:
                async with asyncio.timeout(timeout_s):
                    await self._ready.wait()
            except TimeoutError:
                return None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> LiveEvent | Dropped:
        try:
            item = await self.next()
        except SubscriptionClosedError:
            raise StopAsyncIteration from None
        assert item is not None  # no timeout
        return item

    def close(self) -> None:
        """Unsubscribe (idempotent); a waiting :meth:`next` then raises
        :class:`SubscriptionClosedError`."""
        if self.closed:
            return
        self.closed = True
        self._queue.clear()
        self._ready.set()
        self._hub._forget(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class LiveHub:
    """Lifecycle: create once, ``publish_*`` and ``subscribe`` on the event loop, ``close()``
    at shutdown (ends every subscription, so streaming responses finish and the HTTP server
    can stop; later subscriptions are refused).

    ``queue_size`` bounds each subscriber's queue; ``heartbeat_s`` is how long a transport
    stays silent before it sends a keep-alive; ``max_clients`` caps concurrent subscribers.
    """

    def __init__(
        self,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        heartbeat_s: float = DEFAULT_HEARTBEAT_S,
        max_clients: int = DEFAULT_MAX_CLIENTS,
    ) -> None:
        if queue_size < 1 or max_clients < 1 or not heartbeat_s > 0:
            raise ValueError("queue_size, max_clients and heartbeat_s must be positive")
        self.queue_size = queue_size
        self.heartbeat_s = heartbeat_s
        self.max_clients = max_clients
        self.dropped_total = 0
        """Events dropped for slow subscribers since start (all subscribers)."""
        self.closed = False
        self._subs: list[Subscription] = []
        self._changed = asyncio.Event()

    @property
    def clients(self) -> int:
        """Current number of subscribers."""
        return len(self._subs)

    def _pulse(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` holds; re-checked whenever a subscriber comes or goes."""
        while not predicate():
            await self._changed.wait()

    def subscribe(self, live_filter: LiveFilter | None = None) -> Subscription:
        """A new subscription; raises :class:`LiveUnavailableError` when closed or full."""
        if self.closed:
            raise LiveUnavailableError("the live stream is shutting down")
        if len(self._subs) >= self.max_clients:
            raise LiveUnavailableError(f"too many live clients (at most {self.max_clients})")
        sub = Subscription(self, live_filter or LiveFilter(), self.queue_size)
        self._subs.append(sub)
        self._pulse()
        return sub

    def _forget(self, sub: Subscription) -> None:
        """Called by :meth:`Subscription.close`."""
        if sub in self._subs:
            self._subs.remove(sub)
            self._pulse()

    def close(self) -> None:
        """End every subscription and refuse new ones (idempotent)."""
        self.closed = True
        for sub in list(self._subs):
            sub.close()

    # ------------------------------------------------------------------------------ publish

    def publish_readings(self, readings: Sequence[Reading]) -> None:
        """Offer every reading (any status) as a ``reading`` event."""
        if not self._subs:
            return
        for r in readings:
            self._fanout(EventType.READING, r.plant, r.stack, _reading_data, r)

    def publish_points(self, points: Sequence[Point]) -> None:
        """Offer the derived points the stream carries (see the module docstring); points of
        other measurements, and unflagged anomaly scores, are ignored."""
        if not self._subs:
            return
        for p in points:
            type_ = _point_type(p)
            if type_ is not None:
                self._fanout(type_, p.tags.get("plant"), p.tags.get("stack"), _point_data, p)

    def publish_alert(self, transition: Transition) -> None:
        """Offer one alert state change as an ``alert`` event."""
        if not self._subs:
            return
        labels = transition.alert.labels
        self._fanout(
            EventType.ALERT, labels.get("plant"), labels.get("stack"), _alert_data, transition
        )

    def _fanout(
        self,
        type_: EventType,
        plant: str | None,
        stack: str | None,
        build: Callable[[_T], Mapping[str, Any]],
        item: _T,
    ) -> None:
        targets = [s for s in self._subs if s.filter.matches(type_, plant, stack)]
        if not targets:
            return  # nobody wants it: not even serialised
        data = orjson.dumps(build(item), option=orjson.OPT_UTC_Z).decode()
        event = LiveEvent(type_, plant, stack, data)
        for sub in targets:
            sub.offer(event)


def _point_type(p: Point) -> EventType | None:
    m = p.measurement
    if m in (STA, DAILY, PERIOD):
        return EventType.AVERAGE
    if m == SCORES:
        flagged = p.fields.get("is_anomaly") is True or p.fields.get("drift") is True
        return EventType.SCORE if flagged else None
    if m == EVENTS:
        return EventType.DETECTION
    if m == PEMS:
        return EventType.PEMS
    return None


def _reading_data(r: Reading) -> dict[str, Any]:
    return {
        "plant": r.plant,
        "stack": r.stack,
        "sensor": r.sensor,
        "quantity": r.quantity,
        "unit": r.unit,
        "time": datetime_from_ns(r.ts_ns),
        "time_ns": r.ts_ns,
        "value": r.value,
        "status": r.status.value,
    }


def _point_data(p: Point) -> dict[str, Any]:
    # Fields first, then tags and times, so an identifying key is never overwritten.
    data: dict[str, Any] = {**p.fields, **p.tags}
    if p.measurement in _AVERAGE_PERIOD:
        data["period"] = _AVERAGE_PERIOD[p.measurement]
    data["time"] = datetime_from_ns(p.ts_ns)
    data["time_ns"] = p.ts_ns
    return data


def _alert_data(t: Transition) -> dict[str, Any]:
    return TransitionOut.of(t).model_dump(mode="json")
