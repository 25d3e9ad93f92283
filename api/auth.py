"""Bearer-token authentication, and the startup check that refuses weak tokens.

Outside demo mode every endpoint except health requires ``Authorization: Bearer <token>``
equal to ``STACKWATCH_API_TOKEN``. One shared token is the foundation; per-user roles build on
:func:`require_token` later (it is the single place a request's identity is established).
"""

from __future__ import annotations

import hmac
import re
from typing import Annotated

from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.deps import ContextDep
from api.settings import ApiSettings

MIN_TOKEN_LENGTH = 24
DEFAULT_TOKENS = frozenset({"changeme", "changethis", "secret", "stackwatch", "token"})

_bearer = HTTPBearer(
    auto_error=False,
    description="`STACKWATCH_API_TOKEN`; not required in demo mode.",
)
_SEPARATORS = re.compile(r"[\s._\-]+")


def _is_default(token: str) -> bool:
    """A well-known placeholder, possibly repeated or separated (``changeme-changeme``)."""
    t = _SEPARATORS.sub("", token.lower())
    if len(set(t)) <= 1:
        return True
    return any(len(t) % len(w) == 0 and t == w * (len(t) // len(w)) for w in DEFAULT_TOKENS)


def validate_api_settings(settings: ApiSettings, demo: bool) -> None:
    """Raise ``ValueError`` when the API settings are unsafe for production.

    Demo mode is open and accepts anything. Otherwise the token must be set, must not be an
    obvious placeholder and must have at least :data:`MIN_TOKEN_LENGTH` characters.
    """
    if demo:
        return
    if settings.token is None:
        raise ValueError(
            "STACKWATCH_API_TOKEN is required outside demo mode "
            f"(at least {MIN_TOKEN_LENGTH} random characters)"
        )
    token = settings.token.get_secret_value()
    if _is_default(token):
        raise ValueError("STACKWATCH_API_TOKEN is a placeholder value; set a random token")
    if len(token) < MIN_TOKEN_LENGTH:
        raise ValueError(
            f"STACKWATCH_API_TOKEN is too short ({len(token)} characters, "
            f"at least {MIN_TOKEN_LENGTH} required)"
        )


async def require_token(
    ctx: ContextDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Let the request through in demo mode or with the right bearer token; 401 otherwise."""
    if ctx.demo:
        return
    expected = ctx.settings.token
    if (
        expected is None
        or credentials is None
        or not hmac.compare_digest(
            credentials.credentials.encode(), expected.get_secret_value().encode()
        )
    ):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or invalid bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
