"""Silences: mute the notifications of matching alerts for a while (Alertmanager semantics).

A silence matches alerts on their labels plus ``rule`` and ``severity``; muted alerts are
still evaluated, shown and recorded, and every notification held back is in
``/notifications/suppressed``. Creating and expiring are audited with the acting user; they
run on the event loop (``async``), where the runtime's dispatcher reads the silences.
States are computed with the service clock at the time of the request.

Reading needs the operator role (set where ``api.main`` mounts the router); creating and
expiring need the officer role and are recorded under the key's name
(:func:`api.auth.acting_user`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, status

from alerts.silences import SilenceError, SilenceNotFoundError
from api.alert_schemas import (
    MAX_NAME,
    MAX_NS,
    MAX_SILENCE_S,
    SilenceIn,
    SilenceOut,
    time_ns,
)
from api.auth import OfficerDep, acting_user
from api.deps import AlertsDep, ContextDep
from api.routes.alerts import ALERTS_RESPONSES, BODY_RESPONSES, Limit, Offset, storage_errors
from api.schemas import ErrorOut
from stream.model import NS_PER_S

router = APIRouter(prefix="/silences", tags=["silences"], responses=ALERTS_RESPONSES)

SilenceId = Annotated[str, Path(max_length=64, description="The silence id.")]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No silence has this id."}
}


def _unprocessable(message: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, message)


@router.get("", summary="Pending and active silences, newest start first")
def list_silences(
    runtime: AlertsDep,
    ctx: ContextDep,
    include_expired: Annotated[
        bool, Query(description="Also silences that ended (until they are purged).")
    ] = False,
    limit: Limit = 1000,
    offset: Offset = 0,
) -> list[SilenceOut]:
    now = ctx.now_ns()
    found = runtime.silences.list(now_ns=now, include_expired=include_expired)
    return [SilenceOut.of(s, now) for s in found[offset : offset + limit]]


@router.get("/{silence_id}", summary="One silence", responses=_NOT_FOUND)
def get_silence(silence_id: SilenceId, runtime: AlertsDep, ctx: ContextDep) -> SilenceOut:
    try:
        silence = runtime.silences.get(silence_id)
    except SilenceNotFoundError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no silence {silence_id!r}") from None
    return SilenceOut.of(silence, ctx.now_ns())


@router.post(
    "",
    summary="Create a silence",
    status_code=status.HTTP_201_CREATED,
    responses=BODY_RESPONSES,
)
async def create_silence(
    body: SilenceIn, runtime: AlertsDep, ctx: ContextDep, principal: OfficerDep
) -> SilenceOut:
    """Mute matching alerts from ``starts_at`` (default now) to ``ends_at`` or for
    ``duration_s``. Refused (422) when it would end before it starts or already ended, or
    last more than 366 days. Needs the officer role; the creator is the key's holder
    (``created_by`` may be left out, or must be that name). In demo mode ``created_by`` is
    required."""
    created_by = acting_user(principal, body.created_by, ("body", "created_by"))
    now = ctx.now_ns()
    starts = time_ns(body.starts_at) if body.starts_at is not None else None
    begin = now if starts is None else starts
    if body.ends_at is not None:
        ends = time_ns(body.ends_at)
    else:  # SilenceIn demands exactly one of ends_at and duration_s
        ends = begin + round((body.duration_s or 0.0) * NS_PER_S)
    if ends <= now:
        raise _unprocessable("the silence would already have ended: its end is in the past")
    if ends <= begin:
        raise _unprocessable("ends_at must be after starts_at")
    if ends - begin > MAX_SILENCE_S * NS_PER_S:
        raise _unprocessable(f"a silence lasts at most {MAX_SILENCE_S // 86_400} days")
    if ends > MAX_NS:
        raise _unprocessable("the silence ends too far in the future")
    try:
        with storage_errors():
            silence = runtime.add_silence(
                body.matcher_list(),
                starts_ns=starts,
                ends_ns=ends,
                created_by=created_by,
                comment=body.comment,
            )
    except SilenceError as err:  # already checked above; kept as the book's last word
        raise _unprocessable(str(err)) from None
    return SilenceOut.of(silence, now)


@router.delete(
    "/{silence_id}",
    summary="Expire a silence now",
    responses={
        **_NOT_FOUND,
        409: {"model": ErrorOut, "description": "The silence has already ended."},
    },
)
async def expire_silence(
    silence_id: SilenceId,
    runtime: AlertsDep,
    ctx: ContextDep,
    principal: OfficerDep,
    by: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=MAX_NAME,
            pattern=r"\S",
            description="Who ends it (recorded in the silence and the audit log): the key's "
            "holder, so leave it out or give that name; required in demo mode.",
        ),
    ] = None,
) -> SilenceOut:
    """End a pending or active silence now (a pending one never starts). The silence is
    kept, expired, and returned. Needs the officer role."""
    actor = acting_user(principal, by.strip() if by is not None else None, ("query", "by"))
    try:
        with storage_errors():
            silence = runtime.expire_silence(silence_id, actor)
    except SilenceNotFoundError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no silence {silence_id!r}") from None
    except SilenceError as err:
        raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from None
    return SilenceOut.of(silence, ctx.now_ns())
