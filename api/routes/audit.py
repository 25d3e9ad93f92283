"""The audit trail of the alerts pipeline: its entries, and a check of its integrity.

Both read the append-only log file (``audit.jsonl`` in the data directory) from the start, so
they are plain functions run in FastAPI's thread pool; the writer only ever appends complete
lines, and a line being written is skipped by the reader.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import SecretStr

from alerts.audit import GENESIS, AuditKind, read, verify
from alerts.runtime import AlertRuntime
from api.alert_schemas import AuditEntryOut, ProblemOut, VerifyOut, clamp_ns
from api.deps import AlertsDep
from api.routes.alerts import (
    ALERTS_RESPONSES,
    MAX_FILTER,
    Limit,
    Offset,
    Since,
    Until,
    storage_errors,
)

MAX_PROBLEMS = 100

router = APIRouter(prefix="/audit", tags=["audit"], responses=ALERTS_RESPONSES)


def audit_key(runtime: AlertRuntime) -> SecretStr | None:
    """The HMAC key the runtime's audit log is written with (None: plain SHA-256)."""
    return runtime.audit.key


@router.get("", summary="Audit log entries")
def entries(
    *,
    runtime: AlertsDep,
    kind: Annotated[AuditKind | None, Query(description="Only entries of this kind.")] = None,
    subject: Annotated[
        str | None,
        Query(
            max_length=MAX_FILTER,
            description="Only entries about this alert fingerprint, silence id, notification "
            "id or file.",
        ),
    ] = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 100,
    offset: Offset = 0,
    newest_first: Annotated[bool, Query(description="Order by recording time.")] = True,
) -> list[AuditEntryOut]:
    """Entries as stored (acknowledgements name the officer in ``actor`` and carry the
    comment in ``data``). ``since``/``until`` apply to the time of recording. Does not
    verify: use ``/audit/verify``."""
    with storage_errors():
        found = read(
            runtime.audit.path,
            kind=kind.value if kind is not None else None,
            subject=subject,
            since_ns=clamp_ns(since),
            until_ns=clamp_ns(until),
            limit=limit,
            offset=offset,
            newest_first=newest_first,
        )
    return [AuditEntryOut.of(e) for e in found]


@router.get("/verify", summary="Verify the audit log's hash chain")
def verify_log(runtime: AlertsDep) -> VerifyOut:
    """Recompute every entry's hash (HMAC with the service's key, if it has one) and check
    the chain, and that the log still holds the last entry the service wrote (so entries cut
    off the end are found). ``ok`` is false on any problem; the first 100 are listed."""
    head = runtime.audit.head()
    key = audit_key(runtime)
    keyed = key is not None
    with storage_errors():
        try:
            report = verify(runtime.audit.path, key=key, expect_head=head)
        except FileNotFoundError:
            report = None
    if report is None:
        missing = ProblemOut(line=0, seq=None, reason="the audit log file is missing")
        return VerifyOut(
            ok=False,
            entries=0,
            keyed=keyed,
            head_seq=0,
            head_hash=GENESIS,
            hint="the audit log file was removed",
            problems_total=1,
            problems=[missing],
        )
    return VerifyOut(
        ok=report.ok,
        entries=report.entries,
        keyed=keyed,
        head_seq=report.head[0],
        head_hash=report.head[1],
        hint=report.hint,
        problems_total=len(report.problems),
        problems=[ProblemOut.of(p) for p in report.problems[:MAX_PROBLEMS]],
    )
