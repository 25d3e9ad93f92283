"""API settings (environment prefix ``STACKWATCH_API_``), including the API keys and their roles.

``STACKWATCH_API_KEYS`` is a JSON list of keys, each ``{"name", "role", "token_sha256"}``:
only the SHA-256 of a token is stored, so a leaked configuration does not leak tokens (mint
one with ``stackwatch api-key new``). ``"token": "<plain>"`` instead of ``token_sha256`` is
accepted for development and hashed when the API starts. ``STACKWATCH_API_TOKEN``, the single
shared token of earlier versions, still works: it is an admin key named ``admin``.

Structure is checked here, when the settings load (roles, hex digests, unique names and
tokens); how strong plain tokens are is checked by :func:`api.auth.validate_api_settings`,
outside demo mode only (like ``STACKWATCH_API_TOKEN`` before). Errors never echo the input, so
a plain token in a malformed entry is not printed.

>>> key = ApiKey(name="k.huber", role="officer", token="q" * 12 + "w" * 12)
>>> key.sha256 == token_sha256("q" * 12 + "w" * 12), Role.OFFICER.allows(Role.OPERATOR)
(True, True)
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from stream.secretfiles import SecretFilesSettings

LEGACY_KEY_NAME = "admin"
"""The name of the admin key ``STACKWATCH_API_TOKEN`` defines."""
RESERVED_NAMES = frozenset({"system", "plant_status", "demo"})
"""Actors the audit trail already uses for the service itself (and demo mode's user)."""


class Role(StrEnum):
    """What a key may do; each role may do everything the roles before it may.

    * ``operator``: read (plants, readings, metrics, live stream, alerts, silences,
      notifications);
    * ``officer``: also acknowledge alerts, create and expire silences, read the audit trail and
      download reports;
    * ``admin``: also read the running configuration.
    """

    OPERATOR = "operator"
    OFFICER = "officer"
    ADMIN = "admin"

    def allows(self, required: Role) -> bool:
        """Whether this role may do what ``required`` may (roles are ordered as declared)."""
        members = list(Role)
        return members.index(self) >= members.index(required)


def token_sha256(token: str) -> str:
    """The lowercase hex SHA-256 of a token's UTF-8 bytes (what ``token_sha256`` holds)."""
    return hashlib.sha256(token.encode()).hexdigest()


class ApiKey(BaseModel):
    """One entry of ``STACKWATCH_API_KEYS``: exactly one of ``token_sha256`` and ``token``."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    name: str = Field(
        min_length=1,
        max_length=100,
        pattern=r"^\S(?:[^\x00-\x1f\x7f]*\S)?$",
        description="Who holds the key: recorded as the acting user (acknowledgements, "
        "silences). 1 to 100 characters, no surrounding blanks.",
    )
    role: Role
    token_sha256: str | None = Field(
        None, pattern=r"^[0-9a-fA-F]{64}$", description="SHA-256 of the token, 64 hex digits."
    )
    token: SecretStr | None = Field(None, description="The plain token (development only).")

    @model_validator(mode="after")
    def _one_token(self) -> Self:
        if self.name.lower() in RESERVED_NAMES:
            raise ValueError(f"the name {self.name!r} is reserved for the service itself")
        if (self.token is None) == (self.token_sha256 is None):
            raise ValueError(f"key {self.name!r}: give exactly one of token_sha256 and token")
        return self

    @property
    def sha256(self) -> str:
        """The token's SHA-256, lowercase hex (computed from ``token`` when given in plain)."""
        if self.token is not None:
            return token_sha256(self.token.get_secret_value())
        assert self.token_sha256 is not None  # _one_token
        return self.token_sha256.lower()


class ApiSettings(SecretFilesSettings):
    model_config = SettingsConfigDict(
        env_prefix="STACKWATCH_API_",
        env_file=".env",
        env_ignore_empty=True,
        extra="ignore",
        hide_input_in_errors=True,
    )

    host: str = Field("127.0.0.1", description="Bind address (0.0.0.0 in containers).")
    port: int = Field(8000, ge=0, le=65_535, description="HTTP port (0: pick a free one).")
    token: SecretStr | None = Field(
        None,
        description="A bearer token with the admin role, named 'admin' (the single shared "
        "token of earlier versions; prefer STACKWATCH_API_KEYS). At least 24 characters.",
    )
    keys: list[ApiKey] = Field(
        default_factory=list,
        description='API keys as a JSON list of {"name", "role", "token_sha256"}; role '
        "operator, officer or admin.",
    )
    cors_origins: list[str] = Field(default_factory=list)
    max_points: int = Field(100_000, ge=1, description="Cap of rows per time-series response.")

    def api_keys(self) -> list[ApiKey]:
        """Every key the API accepts: ``STACKWATCH_API_TOKEN`` (if set) first, then the list."""
        return [key for _, key in self.labelled_keys()]

    def labelled_keys(self) -> list[tuple[str, ApiKey]]:
        """:meth:`api_keys`, each with where it is configured (for error messages)."""
        labelled = [(f"STACKWATCH_API_KEYS[{i}]", key) for i, key in enumerate(self.keys)]
        if self.token is not None:
            legacy = ApiKey(name=LEGACY_KEY_NAME, role=Role.ADMIN, token=self.token)
            labelled.insert(0, ("STACKWATCH_API_TOKEN", legacy))
        return labelled

    @model_validator(mode="after")
    def _unique(self) -> Self:
        names: dict[str, str] = {}
        digests: dict[str, str] = {}
        for where, key in self.labelled_keys():
            if key.name in names:
                raise ValueError(f"{where}: the name {key.name!r} is taken by {names[key.name]}")
            if key.sha256 in digests:
                raise ValueError(f"{where}: the same token as {digests[key.sha256]}")
            names[key.name] = digests[key.sha256] = where
        return self
