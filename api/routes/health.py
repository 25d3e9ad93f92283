"""Liveness and readiness, open without a token so orchestrators and load balancers can probe.

``/health/live`` only says the process serves HTTP. ``/health`` (and its alias
``/health/ready``) pings the store and reports the components the service registered; any
component not ok makes the answer ``degraded`` with HTTP 503, so a probe needs no body parsing.
"""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from api.context import AppContext
from api.deps import ContextDep
from api.schemas import ComponentOut, HealthOut, LiveOut

router = APIRouter(prefix="/health", tags=["health"])

_READY_RESPONSES: dict[int | str, dict[str, object]] = {
    503: {"model": HealthOut, "description": "At least one component is not ok."}
}


async def _readiness(ctx: AppContext, response: Response) -> HealthOut:
    store_ok = await ctx.store.ping()
    name = ctx.store.name
    components = {
        "store": ComponentOut(ok=store_ok, detail=name if store_ok else f"{name}: not answering")
    }
    for key, c in ctx.components().items():
        components.setdefault(key, ComponentOut(ok=c.ok, detail=c.detail))
    ok = all(c.ok for c in components.values())
    if not ok:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return HealthOut(status="ok" if ok else "degraded", components=components)


@router.get("", responses=_READY_RESPONSES, summary="Readiness of every component")
async def health(ctx: ContextDep, response: Response) -> HealthOut:
    return await _readiness(ctx, response)


@router.get("/ready", responses=_READY_RESPONSES, summary="Readiness (same as /health)")
async def ready(ctx: ContextDep, response: Response) -> HealthOut:
    return await _readiness(ctx, response)


@router.get("/live", summary="Liveness: the process answers HTTP")
async def live() -> LiveOut:
    return LiveOut()
