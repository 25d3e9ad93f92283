"""The notification log: what each receiver was sent, and what was held back and why.

Both read the notify log's SQLite tables (behind its lock), so they are plain functions run
in FastAPI's thread pool. Oldest first: page forward with ``since`` = the last ``at`` seen.
Delivery outcomes per channel are in the audit log (``notification_sent``/``_failed``).
"""

from __future__ import annotations

from fastapi import APIRouter

from api.alert_schemas import SentOut, SuppressedOut, clamp_ns
from api.deps import AlertsDep
from api.routes.alerts import ALERTS_RESPONSES, Limit, Since, storage_errors

router = APIRouter(prefix="/notifications", tags=["alerts"], responses=ALERTS_RESPONSES)


@router.get("", summary="Notifications sent, oldest first")
def sent(runtime: AlertsDep, since: Since = None, limit: Limit = 100) -> list[SentOut]:
    with storage_errors():
        records = runtime.notifylog.sent(since_ns=_since_ns(since), limit=limit)
    return [SentOut.of(r) for r in records]


@router.get("/suppressed", summary="Notifications suppressed by silences or inhibition")
def suppressed(runtime: AlertsDep, since: Since = None, limit: Limit = 100) -> list[SuppressedOut]:
    """One row per alert and notification held back (reminders of muted alerts are not
    recorded one by one)."""
    with storage_errors():
        records = runtime.notifylog.suppressed(since_ns=_since_ns(since), limit=limit)
    return [SuppressedOut.of(s) for s in records]


def _since_ns(since: Since) -> int:
    ns = clamp_ns(since)
    return 0 if ns is None else max(ns, 0)
