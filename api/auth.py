"""Bearer-token authentication with roles, and the startup check that refuses weak tokens.

Outside demo mode every endpoint except health (and the OpenAPI document) requires
``Authorization: Bearer <token>`` of a configured API key (:mod:`api.settings`). A key has a
name and a :class:`~api.settings.Role`; routes ask for the least role they need with
:func:`require_role` (``operator`` < ``officer`` < ``admin``) and get the caller as a
:class:`Principal`. A missing or unknown token is 401 (with ``WWW-Authenticate: Bearer``), a
known token whose role is too low is 403. In demo mode everything is open: every request is
the ``demo`` principal with the admin role.

Tokens are compared by SHA-256 digest with :func:`hmac.compare_digest` against every key (no
early exit), so neither the configuration nor the timing reveals a token.

There is deliberately no rate limiting: dashboards poll several endpoints every few seconds
and the live stream reconnects on its own; a limit tight enough to slow a guesser would break
them, and 256-bit tokens are not guessable anyway. Put a reverse proxy in front for that.

>>> ring = Keyring([ApiKey(name="grafana", role=Role.OPERATOR, token="k7Qp2xVb9LmZr4Tn8WcYe3Hd")])
>>> ring.identify("k7Qp2xVb9LmZr4Tn8WcYe3Hd"), ring.identify("guess")
(Principal(name='grafana', role=<Role.OPERATOR: 'operator'>, demo=False), None)
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.deps import ContextDep
from api.settings import ApiKey, ApiSettings, Role, token_sha256

MIN_TOKEN_LENGTH = 24
DEFAULT_TOKENS = frozenset({"changeme", "changethis", "secret", "stackwatch", "token"})
_WEAK_DIGESTS = frozenset(token_sha256(t) for t in {"", *DEFAULT_TOKENS})
"""Digests of an empty or placeholder token (``echo -n "" | sha256sum`` is an easy mistake)."""

_bearer = HTTPBearer(
    auto_error=False,
    description="An API key's token (`STACKWATCH_API_KEYS` or `STACKWATCH_API_TOKEN`); "
    "not required in demo mode.",
)
_SEPARATORS = re.compile(r"[\s._\-]+")


@dataclass(frozen=True)
class Principal:
    """Who makes a request: the API key's name and role (``demo``: demo mode, no identity)."""

    name: str
    role: Role
    demo: bool = False


DEMO_PRINCIPAL = Principal("demo", Role.ADMIN, demo=True)


class Keyring:
    """The configured keys by token digest; built once per app (plain tokens hashed once)."""

    def __init__(self, keys: Iterable[ApiKey]) -> None:
        self._keys = [(bytes.fromhex(k.sha256), Principal(k.name, k.role)) for k in keys]

    @classmethod
    def of(cls, settings: ApiSettings) -> Keyring:
        return cls(settings.api_keys())

    def identify(self, token: str) -> Principal | None:
        """The holder of ``token``, or None. Compares against every key in constant time."""
        digest = hashlib.sha256(token.encode()).digest()
        found = None
        for key_digest, principal in self._keys:
            if hmac.compare_digest(digest, key_digest):
                found = principal
        return found

    def roles(self) -> dict[str, int]:
        """How many keys have each role (for the start-up log: never names or tokens)."""
        return {r.value: sum(p.role is r for _, p in self._keys) for r in Role}

    def principals(self) -> list[Principal]:
        return [p for _, p in self._keys]


def _is_default(token: str) -> bool:
    """A well-known placeholder, possibly repeated or separated (``changeme-changeme``)."""
    t = _SEPARATORS.sub("", token.lower())
    if len(set(t)) <= 1:
        return True
    return any(len(t) % len(w) == 0 and t == w * (len(t) // len(w)) for w in DEFAULT_TOKENS)


def token_problem(token: str) -> str | None:
    """Why ``token`` is too weak for production (``"is too short (...)"``), or None."""
    if _is_default(token):
        return "is a placeholder value; set a random token"
    if len(token) < MIN_TOKEN_LENGTH:
        return f"is too short ({len(token)} characters, at least {MIN_TOKEN_LENGTH} required)"
    return None


def validate_api_settings(settings: ApiSettings, demo: bool) -> None:
    """Raise ``ValueError`` when the API settings are unsafe for production.

    Demo mode is open and accepts anything. Otherwise at least one key must be configured
    (``STACKWATCH_API_TOKEN`` or ``STACKWATCH_API_KEYS``); plain tokens must not be obvious
    placeholders and must have at least :data:`MIN_TOKEN_LENGTH` characters; a digest must not
    be that of an empty or placeholder token. Every problem is listed, one per line.
    """
    if demo:
        return
    labelled = settings.labelled_keys()
    if not labelled:
        raise ValueError(
            "STACKWATCH_API_TOKEN or STACKWATCH_API_KEYS is required outside demo mode "
            f"(mint keys with 'stackwatch api-key new'; tokens of at least {MIN_TOKEN_LENGTH} "
            "random characters)"
        )
    problems = []
    for where, key in labelled:
        label = where if where == "STACKWATCH_API_TOKEN" else f"{where} ({key.name!r})"
        if key.token is not None:
            problem = token_problem(key.token.get_secret_value())
            if problem is not None:
                problems.append(f"{label}: the token {problem}")
        elif key.sha256 in _WEAK_DIGESTS:
            problems.append(f"{label}: token_sha256 is the digest of an empty or placeholder token")
    if problems:
        raise ValueError("\n  - ".join(problems))


def keyring(request: Request) -> Keyring:
    """The app's keyring (``create_app`` builds it; built here once if the app has none)."""
    ring = getattr(request.app.state, "keyring", None)
    if not isinstance(ring, Keyring):
        ring = request.app.state.keyring = Keyring.of(request.app.state.ctx.settings)
    return ring


async def authenticate(
    request: Request,
    ctx: ContextDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller: the demo principal in demo mode, else the key of the bearer token; 401."""
    if ctx.demo:
        return DEMO_PRINCIPAL
    principal = None if credentials is None else keyring(request).identify(credentials.credentials)
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or invalid bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return principal


PrincipalDep = Annotated[Principal, Depends(authenticate)]

RoleCheck = Callable[[Principal], Coroutine[Any, Any, Principal]]


@cache
def require_role(role: Role) -> RoleCheck:
    """A dependency letting through callers with ``role`` or a higher one (403 otherwise).

    One function per role (cached), so FastAPI runs each check once per request even when a
    router and one of its endpoints both ask for it.
    """

    async def check(principal: PrincipalDep) -> Principal:
        if not principal.role.allows(role):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"this needs the {role.value} role; the key {principal.name!r} has the "
                f"{principal.role.value} role",
            )
        return principal

    check.__name__ = f"require_{role.value}"
    return check


OperatorDep = Annotated[Principal, Depends(require_role(Role.OPERATOR))]
OfficerDep = Annotated[Principal, Depends(require_role(Role.OFFICER))]
AdminDep = Annotated[Principal, Depends(require_role(Role.ADMIN))]

require_token = require_role(Role.OPERATOR)
"""Any valid key (the single-token check of earlier versions; prefer :func:`require_role`)."""


def acting_user(principal: Principal, claimed: str | None, loc: tuple[str, str]) -> str:
    """Who performs an action recorded in the audit trail (acknowledge, silence).

    With a key, the key's name: ``claimed`` (``by``, ``created_by``) may be left out or must
    be that name (403 otherwise: a key acts only as its holder). In demo mode there is no
    identity, so ``claimed`` is required (422 at ``loc``, like a missing field).
    """
    if principal.demo:
        if claimed is None:
            raise RequestValidationError(
                [
                    {
                        "type": "missing",
                        "loc": loc,
                        "msg": "Field required in demo mode (there is no login to name the "
                        "acting user)",
                        "input": None,
                    }
                ]
            )
        return claimed
    if claimed is not None and claimed != principal.name:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"{loc[-1]} must be left out or be the key's own name {principal.name!r}: "
            "a key acts only as its holder",
        )
    return principal.name
