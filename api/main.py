"""Builds the FastAPI application around an :class:`~api.context.AppContext`.

No lifespan opens anything here: the service starts the store before serving and closes it
after, so the app is a pure function of its context. Health is mounted open; every other
router sits behind :func:`api.auth.require_role` with the least role any of its endpoints
needs (:data:`ROUTER_ROLES`); endpoints that need more ask for it themselves (acknowledging,
silencing). The OpenAPI document at ``/openapi.json`` and ``/docs`` stay open: they describe
the API, not the data. All errors share one JSON shape (:class:`api.schemas.ErrorOut`).
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import structlog
from fastapi import APIRouter, Depends, FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.auth import Keyring, require_role
from api.context import AppContext
from api.routes import (
    alerts,
    audit,
    compliance,
    config,
    health,
    live,
    metrics,
    notifications,
    plants,
    readings,
    reports,
    sensors,
    series,
    silences,
    ui,
)
from api.schemas import ErrorBody, ErrorDetail, ErrorOut
from api.settings import Role
from stream.storage.base import StoreError

log = structlog.get_logger(__name__)

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    422: "validation_error",
    429: "too_many_requests",
    502: "bad_gateway",
    503: "unavailable",
}

_PROTECTED_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing or invalid bearer token."},
    403: {
        "model": ErrorOut,
        "description": "The key's role does not allow this (operator < officer < admin), or "
        "the acting user named in the request is not the key's holder.",
    },
    502: {"model": ErrorOut, "description": "The store refused the query."},
    503: {"model": ErrorOut, "description": "The store is unavailable; retry later."},
}


ROUTER_ROLES: tuple[tuple[APIRouter, Role], ...] = (
    (plants.router, Role.OPERATOR),
    (live.router, Role.OPERATOR),
    (readings.router, Role.OPERATOR),
    (series.router, Role.OPERATOR),
    (compliance.router, Role.OPERATOR),
    (sensors.router, Role.OPERATOR),
    (metrics.router, Role.OPERATOR),
    (alerts.router, Role.OPERATOR),  # acknowledging: officer
    (silences.router, Role.OPERATOR),  # creating and expiring: officer
    (notifications.router, Role.OPERATOR),
    (audit.router, Role.OFFICER),
    (reports.router, Role.OFFICER),
    (config.router, Role.ADMIN),
)
"""Each protected router with the least role its endpoints need."""


def _package_version() -> str:
    try:
        return version("stackwatch")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0+unknown"


def error_response(
    status_code: int,
    code: str,
    message: str,
    details: list[ErrorDetail] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = ErrorOut(error=ErrorBody(code=code, message=message, details=details or []))
    return JSONResponse(body.model_dump(mode="json"), status_code=status_code, headers=headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _CODES.get(exc.status_code, "server_error" if exc.status_code >= 500 else "error")
    return error_response(exc.status_code, code, str(exc.detail), headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    details = [
        ErrorDetail(loc=".".join(str(p) for p in e.get("loc", ())), message=str(e.get("msg")))
        for e in exc.errors()
    ]
    message = "; ".join(f"{d.loc}: {d.message}" for d in details) or "invalid request"
    return error_response(
        status.HTTP_422_UNPROCESSABLE_CONTENT, "validation_error", message, details
    )


async def _store_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StoreError)
    log.warning("api_store_error", path=request.url.path, error=str(exc), retryable=exc.retryable)
    if exc.retryable:
        return error_response(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "store_unavailable",
            "the store is unavailable; retry later",
            headers={"Retry-After": "5"},
        )
    return error_response(status.HTTP_502_BAD_GATEWAY, "store_error", "the store refused the query")


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    # Starlette re-raises after this response is sent, so the server still logs the traceback.
    return error_response(
        status.HTTP_500_INTERNAL_SERVER_ERROR, "internal_error", "internal server error"
    )


_ERROR_REF = {"$ref": "#/components/schemas/ErrorOut"}
_FASTAPI_ERROR_SCHEMAS = ("HTTPValidationError", "ValidationError")


def error_responses_as_error_out(document: dict[str, Any]) -> dict[str, Any]:
    """Document every error response as what the handlers above send: ErrorOut in JSON.

    FastAPI documents its own 422 body (``HTTPValidationError``), which ``_validation_error``
    replaces, and files a route's extra responses under the route's media type (the
    ``text/event-stream`` of ``/live``), where the error handlers always answer JSON. Other
    bodies of error codes (the readiness report of ``/health``'s 503) are left alone.

    >>> doc = {"paths": {"/x": {"get": {"responses": {"422": {"content": {"application/json":
    ...     {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}}}}}}},
    ...     "components": {"schemas": {"HTTPValidationError": {}, "ValidationError": {}}}}
    >>> error_responses_as_error_out(doc)["paths"]["/x"]["get"]["responses"]["422"]["content"]
    {'application/json': {'schema': {'$ref': '#/components/schemas/ErrorOut'}}}
    >>> doc["components"]["schemas"]
    {}
    """
    fastapi_refs = [{"$ref": f"#/components/schemas/{name}"} for name in _FASTAPI_ERROR_SCHEMAS]
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            for code, response in operation.get("responses", {}).items():
                if not str(code).startswith(("4", "5")):
                    continue
                schemas = [c.get("schema") for c in response.get("content", {}).values()]
                if any(s == _ERROR_REF or s in fastapi_refs for s in schemas):
                    response["content"] = {"application/json": {"schema": _ERROR_REF}}
    schemas = document.get("components", {}).get("schemas", {})
    for name in _FASTAPI_ERROR_SCHEMAS:
        schemas.pop(name, None)
    return document


def create_app(ctx: AppContext) -> FastAPI:
    """The API application for one running service (or one test)."""
    app = FastAPI(
        title="StackWatch",
        version=_package_version(),
        summary="Real-time emission monitoring: plant configuration, readings, health.",
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.state.ctx = ctx
    app.state.keyring = keys = Keyring.of(ctx.settings)
    if not ctx.demo:  # demo mode: the service itself warns that the API is open
        # Bound now, not at import: a cached module logger would miss a later configuration.
        startup_log = structlog.get_logger(__name__)
        startup_log.info("api keys loaded", **keys.roles())
        if not keys.principals():
            startup_log.warning("no API keys configured: every protected request is refused")
    if ctx.settings.cors_origins:
        # No credentials mode: the bearer token travels in a header, not in cookies.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=ctx.settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["Authorization", "Content-Type"],
            expose_headers=["Content-Disposition", "Retry-After", "WWW-Authenticate"],
        )
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StoreError, _store_error)
    app.add_exception_handler(Exception, _unexpected_error)
    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = error_responses_as_error_out(default_openapi())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    app.include_router(health.router)
    app.include_router(ui.router)  # the built-in page: static files, no data, open
    for router, role in ROUTER_ROLES:
        app.include_router(
            router, dependencies=[Depends(require_role(role))], responses=_PROTECTED_RESPONSES
        )
    return app
