"""``stackwatch api-key``: mint API keys for ``STACKWATCH_API_KEYS``.

``new --name N --role R`` prints two lines on stdout: the token (shown this once: hand it to
its holder) and the JSON entry holding only its SHA-256, to add to the ``STACKWATCH_API_KEYS``
list. ``hash --name N --role R`` prints the entry of an existing token read from stdin (never
from the command line, which shell history and ``ps`` would keep). Both refuse a name the API
would refuse. Tokens are ``swk_`` followed by 43 URL-safe characters (256 random bits); the
prefix lets secret scanners recognise a leaked one.

Wiring: ``app.add_typer(apikey_app, name="api-key")`` in ``stackwatch.cli``.

>>> entry("grafana", Role.OPERATOR, "swk_" + "x" * 43)["token_sha256"][:12]
'6936e1cebbff'
"""

from __future__ import annotations

import json
import secrets
import sys
from typing import Annotated

import typer
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from api.auth import token_problem
from api.settings import ApiKey, Role, token_sha256

TOKEN_PREFIX = "swk_"  # noqa: S105 - a public marker, not a secret

apikey_app = typer.Typer(
    help="Mint API keys (bearer tokens with a role) for STACKWATCH_API_KEYS.",
    no_args_is_help=True,
    add_completion=False,
)

NameOption = Annotated[
    str, typer.Option("--name", help="The key's holder, recorded as the acting user.")
]
RoleOption = Annotated[
    Role,
    typer.Option(
        "--role",
        help="operator: read; officer: also acknowledge, silence, audit, reports; "
        "admin: also configuration.",
    ),
]


def new_token() -> str:
    """A fresh token: the prefix and 32 random bytes, URL-safe base64."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def entry(name: str, role: Role, token: str) -> dict[str, str]:
    """The ``STACKWATCH_API_KEYS`` entry of a token: name, role and the token's SHA-256."""
    return {"name": name, "role": role.value, "token_sha256": token_sha256(token)}


def _checked(name: str, role: Role, token: str) -> dict[str, str]:
    """The entry, after the checks the service makes at start-up (name, token strength)."""
    problem = token_problem(token)
    if problem is not None:
        raise _refused(f"the token {problem}")
    item = entry(name, role, token)
    try:
        ApiKey.model_validate(item)
    except ValidationError as err:
        raise _refused("; ".join(_name_problem(e) for e in err.errors())) from None
    return item


def _name_problem(error: ErrorDetails) -> str:
    if error["type"] == "string_pattern_mismatch":
        return "--name: no surrounding blanks or control characters"
    return f"--name: {str(error['msg']).removeprefix('Value error, ')}"


def _refused(message: str) -> typer.Exit:
    typer.secho(f"refused: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(2)


@apikey_app.command("new")
def new(name: NameOption, role: RoleOption) -> None:
    """Mint a key: print its token (once) and its STACKWATCH_API_KEYS entry."""
    token = new_token()
    item = _checked(name, role, token)
    typer.echo(token)
    typer.echo(json.dumps(item))
    typer.secho(
        f"Line 1 is the token of {name!r} ({role.value}): it is shown only now, hand it over "
        "securely. Line 2 goes into the STACKWATCH_API_KEYS list.",
        err=True,
    )


@apikey_app.command("hash")
def hash_token(name: NameOption, role: RoleOption) -> None:
    """Print the STACKWATCH_API_KEYS entry of a token read from stdin (one line)."""
    token = sys.stdin.readline().strip()
    typer.echo(json.dumps(_checked(name, role, token)))
