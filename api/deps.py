"""Dependency aliases, so route signatures read as plain types (``store: StoreDep``).

The context lives on ``app.state`` (set once by ``create_app``); these functions only unpack it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from alerts.runtime import AlertRuntime
from api.context import AppContext
from api.settings import ApiSettings
from stream.plant import PlantConfig
from stream.storage.base import Store


def get_context(request: Request) -> AppContext:
    ctx = request.app.state.ctx
    if not isinstance(ctx, AppContext):  # pragma: no cover - create_app always sets it
        raise RuntimeError("the app was not built by api.main.create_app")
    return ctx


ContextDep = Annotated[AppContext, Depends(get_context)]


def get_store(ctx: ContextDep) -> Store:
    return ctx.store


def get_config(ctx: ContextDep) -> PlantConfig:
    return ctx.config


def get_settings(ctx: ContextDep) -> ApiSettings:
    return ctx.settings


StoreDep = Annotated[Store, Depends(get_store)]
ConfigDep = Annotated[PlantConfig, Depends(get_config)]
SettingsDep = Annotated[ApiSettings, Depends(get_settings)]


def get_alerts(ctx: ContextDep) -> AlertRuntime:
    """The running alerts pipeline; 503 (error shape) when the service runs without one."""
    if ctx.alerts is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "alerting is not running on this service"
        )
    return ctx.alerts


AlertsDep = Annotated[AlertRuntime, Depends(get_alerts)]
