"""Alerts: the current alerts, their transition history, and acknowledging one.

Reads go to the alert store, whose SQLite connection sits behind a lock, so those endpoints
are plain functions FastAPI runs in its thread pool. The runtime's alert book and dispatcher
belong to the event loop (not thread-safe): reading one alert from the book and acknowledging
are ``async`` endpoints that call the runtime on the loop (fast, local operations).

Reading needs the operator role (set where ``api.main`` mounts the router); acknowledging
needs the officer role and is recorded under the key's name (:func:`api.auth.acting_user`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, status

from alerts.audit import AuditError
from alerts.lifecycle import InvalidTransitionError, UnknownAlertError
from alerts.model import Severity, State
from alerts.store import AlertStoreError
from api.alert_schemas import AckIn, AlertOut, Rfc3339, TransitionOut, clamp_ns
from api.auth import OfficerDep, acting_user
from api.deps import AlertsDep
from api.schemas import ErrorOut
from stream.storage.base import StoreError

MAX_LIMIT = 1000
MAX_OFFSET = 1_000_000
"""Deeper pages are refused: narrow the time range (``since``/``until``) instead."""
MAX_FILTER = 200

ALERTS_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorOut, "description": "A parameter or the body is invalid."},
    503: {
        "model": ErrorOut,
        "description": "Alerting is not running on this service, or its storage is "
        "unavailable; retry later.",
    },
}
"""The error responses every alert, silence, notification and audit endpoint may give."""

BODY_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "The body is not valid JSON."},
}

TIME_DOC = "RFC 3339 with a UTC offset, e.g. `2024-01-01T12:00:00Z` (encode `+` as `%2B`)."

router = APIRouter(prefix="/alerts", tags=["alerts"], responses=ALERTS_RESPONSES)

Fingerprint = Annotated[
    str, Path(max_length=64, description="The alert's fingerprint (16 hex digits).")
]
Filter = Annotated[str | None, Query(max_length=MAX_FILTER)]
Since = Annotated[Rfc3339 | None, Query(description=f"Inclusive. {TIME_DOC}")]
Until = Annotated[Rfc3339 | None, Query(description=f"Exclusive. {TIME_DOC}")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Matches to skip.")]
Limit = Annotated[
    int, Query(ge=1, le=MAX_LIMIT, description=f"At most this many (1 to {MAX_LIMIT}).")
]


@contextmanager
def storage_errors() -> Iterator[None]:
    """Failures of the alert storage as the API's store errors (503 retry later, or 502)."""
    try:
        yield
    except (AlertStoreError, AuditError) as err:
        raise StoreError(str(err), retryable=err.retryable) from err
    except sqlite3.Error as err:
        raise StoreError(str(err), retryable=isinstance(err, sqlite3.OperationalError)) from err
    except OSError as err:  # reading the audit log file
        raise StoreError(str(err), retryable=False) from err


@router.get("", summary="Current alerts, most severe first, then newest")
def list_alerts(
    *,
    runtime: AlertsDep,
    state: Annotated[State | None, Query(description="Only alerts in this state.")] = None,
    active_only: Annotated[bool, Query(description="Only firing and acknowledged alerts.")] = False,
    plant: Filter = None,
    stack: Filter = None,
    rule: Filter = None,
    severity: Annotated[Severity | None, Query(description="Only this severity.")] = None,
    limit: Limit = MAX_LIMIT,
    offset: Offset = 0,
) -> list[AlertOut]:
    """Every alert the service knows, one per fingerprint (resolved ones too, unless
    filtered out), ordered by severity (critical first), then by start (newest first)."""
    with storage_errors():
        alerts = runtime.store.current(
            state=state, plant=plant, stack=stack, rule=rule, active_only=active_only
        )
    if severity is not None:
        alerts = [a for a in alerts if a.severity is severity]
    return [AlertOut.of(a) for a in alerts[offset : offset + limit]]


@router.get("/history", summary="Recorded alert transitions, newest first")
def history(
    *,
    runtime: AlertsDep,
    fingerprint: Annotated[str | None, Query(max_length=64)] = None,
    state: Annotated[State | None, Query(description="The state transitioned to.")] = None,
    rule: Filter = None,
    plant: Filter = None,
    stack: Filter = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[TransitionOut]:
    """Every state change (new, fired, acknowledged, resolved, severity raised) with the
    alert as it was after it. ``since``/``until`` apply to the time of the change."""
    with storage_errors():
        transitions = runtime.store.history(
            state=state,
            rule=rule,
            plant=plant,
            stack=stack,
            fingerprint=fingerprint,
            since_ns=clamp_ns(since),
            until_ns=clamp_ns(until),
            limit=limit,
            offset=offset,
        )
    return [TransitionOut.of(t) for t in transitions]


@router.get(
    "/{fingerprint}",
    summary="One alert",
    responses={404: {"model": ErrorOut, "description": "No alert has this fingerprint."}},
)
async def get_alert(fingerprint: Fingerprint, runtime: AlertsDep) -> AlertOut:
    alert = runtime.book.get(fingerprint)
    if alert is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no alert with fingerprint {fingerprint!r}")
    return AlertOut.of(alert)


@router.post(
    "/{fingerprint}/acknowledge",
    summary="Acknowledge a firing alert",
    responses={
        **BODY_RESPONSES,
        404: {"model": ErrorOut, "description": "No alert has this fingerprint."},
        409: {
            "model": ErrorOut,
            "description": "The alert is not firing (pending, already acknowledged, resolved).",
        },
    },
)
async def acknowledge(
    fingerprint: Fingerprint, body: AckIn, runtime: AlertsDep, principal: OfficerDep
) -> AlertOut:
    """An officer takes the alert: its reminders and escalations stop, and who and why are
    recorded in the alert, its history and the audit log. It stays acknowledged until it
    resolves; a new episode starts unacknowledged. Needs the officer role; the officer is the
    key's holder (`by` may be left out, or must be that name). In demo mode `by` is
    required."""
    by = acting_user(principal, body.by, ("body", "by"))
    try:
        with storage_errors():
            alert = runtime.acknowledge(fingerprint, by, body.comment)
    except UnknownAlertError as err:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(err)) from None
    except InvalidTransitionError as err:
        raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from None
    except ValueError as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from None
    return AlertOut.of(alert)
