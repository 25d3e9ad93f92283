"""``GET /live``: the live hub (:mod:`api.live`) as a Server-Sent Events stream.

The response is a plain ASGI response rather than a generator behind ``StreamingResponse``:
it watches for the client's disconnect itself and closes the subscription in a ``finally``,
so a departed client is unsubscribed at once and deterministically (not whenever a suspended
generator happens to be collected).
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio
import orjson
import structlog
from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.responses import Response
from starlette.types import Receive, Scope, Send

from api.deps import ContextDep
from api.live import (
    ALL_TYPES,
    Dropped,
    EventType,
    LiveEvent,
    LiveFilter,
    LiveHub,
    LiveUnavailableError,
    Subscription,
    SubscriptionClosedError,
)
from api.schemas import ErrorOut

log = structlog.get_logger(__name__)

RETRY_MS = 5000
"""Reconnection delay suggested to ``EventSource`` clients."""
MAX_BATCH = 200
"""Queued events written in one chunk (fewer, larger writes for a busy stream)."""
HEARTBEAT = b": heartbeat\n\n"

router = APIRouter(prefix="/live", tags=["live"])


def get_live(ctx: ContextDep) -> LiveHub:
    """The service's live hub; 503 (error shape) when it runs without one."""
    hub = ctx.live
    if hub is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "the live stream is not running on this service"
        )
    return hub


LiveDep = Annotated[LiveHub, Depends(get_live)]


def sse_frame(item: LiveEvent | Dropped) -> bytes:
    """One SSE event: ``event:`` line, one ``data:`` line of JSON, blank line.

    >>> sse_frame(Dropped(count=3, total=5))
    b'event: dropped\\ndata: {"dropped":3,"dropped_total":5}\\n\\n'
    """
    if isinstance(item, Dropped):
        data = orjson.dumps({"dropped": item.count, "dropped_total": item.total}).decode()
        return f"event: dropped\ndata: {data}\n\n".encode()
    return f"event: {item.type.value}\ndata: {item.data}\n\n".encode()


class EventStreamResponse(Response):
    """Streams one :class:`Subscription` as ``text/event-stream`` until the client leaves or
    the hub closes; the subscription is closed when the response ends, whatever the cause."""

    media_type = "text/event-stream"

    def __init__(self, hub: LiveHub, subscription: Subscription) -> None:
        # No Response.__init__: it would set a body and with it a Content-Length.
        self.status_code = status.HTTP_200_OK
        self.background = None
        self._hub = hub
        self._sub = subscription
        self._peer = "?"
        self.init_headers({"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        self._peer = peer = f"{client[0]}:{client[1]}" if client else "?"
        f = self._sub.filter
        log.info(
            "live client connected",
            client=peer,
            plant=f.plant,
            stack=f.stack,
            types=sorted(t.value for t in f.types),
            clients=self._hub.clients,
        )
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(_until_disconnect, receive, tg.cancel_scope)
                await self._stream(send)
                tg.cancel_scope.cancel()
        finally:
            self._sub.close()
            log.info(
                "live client disconnected",
                client=peer,
                dropped=self._sub.dropped,
                clients=self._hub.clients,
            )

    async def _stream(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        try:
            await _body(send, f"retry: {RETRY_MS}\n: stackwatch live stream\n\n".encode())
            while True:
                try:
                    item = await self._sub.next(self._hub.heartbeat_s)
                except SubscriptionClosedError:
                    break
                if item is None:
                    await _body(send, HEARTBEAT)
                    continue
                frames = [self._frame(item)]
                while len(frames) < MAX_BATCH and (more := self._sub.get_nowait()) is not None:
                    frames.append(self._frame(more))
                await _body(send, b"".join(frames))
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:  # the client went away mid-write (how ASGI 2.4 servers report it)
            return

    def _frame(self, item: LiveEvent | Dropped) -> bytes:
        if isinstance(item, Dropped) and item.count == item.total:  # the first loss only
            log.warning("live client too slow: its oldest events are dropped", client=self._peer)
        return sse_frame(item)


async def _body(send: Send, chunk: bytes) -> None:
    await send({"type": "http.response.body", "body": chunk, "more_body": True})


async def _until_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()


def parse_types(types: str | None) -> frozenset[EventType]:
    """The event types of a comma-separated list (None: all); 422 for an unknown one.

    >>> sorted(parse_types(" reading,alert "))
    [<EventType.ALERT: 'alert'>, <EventType.READING: 'reading'>]
    """
    if types is None:
        return ALL_TYPES
    names = [n.strip() for n in types.split(",") if n.strip()]
    known = {t.value: t for t in EventType}
    unknown = sorted({n for n in names if n not in known})
    if unknown or not names:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"unknown event type(s) {', '.join(unknown) or '(none given)'}; "
            f"expected a comma-separated list of {', '.join(known)}",
        )
    return frozenset(known[n] for n in names)


_TYPES = ", ".join(f"`{t.value}`" for t in EventType)
_STREAM_EXAMPLE = (
    "retry: 5000\n: stackwatch live stream\n\n"
    'event: reading\ndata: {"plant":"demo","stack":"boiler1","sensor":"nox","quantity":"nox",'
    '"unit":"mg/Nm3","time":"2024-01-01T12:00:00Z","time_ns":1704110400000000000,'
    '"value":87.5,"status":"valid"}\n\n'
    ": heartbeat\n\n"
    'event: dropped\ndata: {"dropped":12,"dropped_total":12}\n\n'
)
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            "text/event-stream": {"schema": {"type": "string"}, "example": _STREAM_EXAMPLE}
        },
    },
    404: {"model": ErrorOut, "description": "Unknown plant or stack."},
    422: {"model": ErrorOut, "description": "Unknown event type."},
    503: {
        "model": ErrorOut,
        "description": "The live stream is not running, is shutting down, or has too many "
        "clients; retry later.",
    },
}


@router.get(
    "",
    summary="Live readings, averages, scores and alerts (Server-Sent Events)",
    status_code=status.HTTP_200_OK,
    response_class=EventStreamResponse,
    response_description="A `text/event-stream` that stays open.",
    responses=_RESPONSES,
)
async def live(
    ctx: ContextDep,
    hub: LiveDep,
    plant: Annotated[str | None, Query(description="Only this plant.", examples=["demo"])] = None,
    stack: Annotated[
        str | None,
        Query(description="Only this stack (of `plant`, or of any plant).", examples=["boiler1"]),
    ] = None,
    types: Annotated[
        str | None,
        Query(
            description=f"Comma-separated event types, default all: {_TYPES}.",
            examples=["reading,average,alert"],
        ),
    ] = None,
) -> EventStreamResponse:
    """A stream of what the service processes, as it happens. Each event is an `event:` line
    (the type), one `data:` line (a JSON object) and a blank line:

    * `reading`: every accepted reading (`plant`, `stack`, `sensor`, `quantity`, `unit`,
      `value`, `status`, `time`, `time_ns`);
    * `average`: compliance averages, `period` `short_term` (fields `normalised`, `validated`,
      `state`, `n_valid`, `mass_kg`), `day` (`validated_mean`, `valid`, `complete`, ...; re-sent
      as the day progresses, final with `complete=true`), `month` or `year` (running);
    * `score`: flagged anomaly scores only (`is_anomaly` or `drift` true; normal scores are
      not streamed, read them from the store);
    * `detection`: a sensor fault, anomaly or drift starting or ending (`event`, `active`,
      `kind`, `message`);
    * `pems`: soft-sensor predictions (`prediction`, `lower`, `upper`, `substitute`, ...);
    * `alert`: an alert state transition, shaped as in `GET /alerts/history`.

    Events without a plant or stack (service-health alerts) reach every filter.

    **Slow clients**: each client has a bounded queue; when it is full the oldest events are
    dropped and the client is told with an `event: dropped` (`dropped` since the previous
    notice, `dropped_total`) just before the next event. Ingestion is never slowed.

    **Keep-alive**: a comment line `: heartbeat` after 15 s (configurable) without an event
    (ignored by `EventSource`; proxies see traffic). No line for much longer: the connection
    is dead.

    **Live only**: events have no `id` and `Last-Event-ID` is ignored: after a reconnect the
    stream continues from the present; fill the gap from the REST endpoints if needed.
    Outside demo mode send the bearer token (`EventSource` cannot set headers: use
    `fetch()` with a streaming body reader).
    """
    if plant is not None and plant not in ctx.config.plants:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"plant {plant!r} is not configured")
    if stack is not None:
        plants = [plant] if plant is not None else list(ctx.config.plants)
        if not any(stack in ctx.config.plants[p].stacks for p in plants):
            where = f"{plant}/{stack}" if plant is not None else repr(stack)
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"stack {where} is not configured")
    live_filter = LiveFilter(plant, stack, parse_types(types))
    try:
        subscription = hub.subscribe(live_filter)
    except LiveUnavailableError as err:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, str(err), headers={"Retry-After": "5"}
        ) from None
    return EventStreamResponse(hub, subscription)
