"""Prometheus exposition of the process-wide default registry.

Served through the API router (not a mounted ``make_asgi_app``) so it sits behind the same
bearer-token check as the data endpoints outside demo mode (operator role): give the scraper
an operator key, ``authorization: {credentials: <token>}``. The format follows the scraper's
``Accept`` header.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import REGISTRY
from prometheus_client.exposition import choose_encoder

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {
            "content": {
                "text/plain": {
                    "schema": {"type": "string"},
                    "example": "# HELP stackwatch_readings_accepted_total Readings that "
                    "passed validation.\n# TYPE stackwatch_readings_accepted_total counter\n"
                    "stackwatch_readings_accepted_total 86400.0\n",
                }
            },
            "description": "Text exposition format.",
        }
    },
)
def metrics(request: Request) -> Response:
    # Sync on purpose: collection reads /proc, FastAPI runs it in the thread pool.
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encoder(REGISTRY), media_type=content_type)
