"""Signed JSON webhooks: POST the :func:`~alerts.notify.render.to_json` document, HMAC-signed.

Request headers:

* ``Content-Type: application/json``
* ``X-StackWatch-Timestamp: <unix seconds>``
* ``X-StackWatch-Signature: sha256=<hex HMAC-SHA256(secret, b"<timestamp>." + body)>``
* ``Idempotency-Key: <notification id>`` (the same on every retry: de-duplicate on it)

Receivers check a request with :func:`verify_signature` on the raw body bytes (before any
JSON parsing) and should reject it when that returns False. Signing the timestamp together
with the body, and refusing timestamps older than the tolerance, stops a captured request
from being replayed later.

Outcome: any 2xx is delivered; 408, 425, 429, 5xx, timeouts and connection errors are
retryable; other statuses (4xx: the receiver rejects the request as such) are not.

>>> secret = b"s3cr3t-s3cr3t-s3cr3t"
>>> body = b'{"id":"n1"}'
>>> header = sign(secret, "1700000000", body)
>>> header[:7]
'sha256='
>>> verify_signature(secret, "1700000000", body, header, now_s=1_700_000_010)
True
>>> verify_signature(secret, "1700000000", body + b" ", header, now_s=1_700_000_010)
False
>>> verify_signature(secret, "1700000000", body, header, now_s=1_700_000_000 + 301)  # replay
False
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx
import orjson
from pydantic import SecretStr

from alerts.model import Notification
from alerts.notify.base import NotifyError
from alerts.notify.render import to_json
from stream.model import NS_PER_S

SIGNATURE_HEADER = "X-StackWatch-Signature"
TIMESTAMP_HEADER = "X-StackWatch-Timestamp"
_RETRYABLE_STATUS = frozenset({408, 425, 429})


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The signature header value: ``sha256=`` + hex HMAC-SHA256 over ``b"<ts>." + body``."""
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: bytes,
    timestamp: str,
    body: bytes,
    header: str,
    *,
    now_s: float,
    tolerance_s: float = 300,
) -> bool:
    """Whether a webhook request is authentic and fresh (for receivers).

    ``timestamp`` and ``header`` are the ``X-StackWatch-Timestamp`` and
    ``X-StackWatch-Signature`` header values, ``body`` the raw request body. False when the
    timestamp is not an integer, is more than ``tolerance_s`` seconds away from ``now_s``
    (replay protection; also bounds clock skew) or the signature does not match (compared in
    constant time).
    """
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs(now_s - ts) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body).encode(), header.encode())


def _retryable_status(status: int) -> bool:
    return status in _RETRYABLE_STATUS or status >= 500


class WebhookNotifier:
    """POSTs signed notifications to ``url``.

    ``client``: a shared ``httpx.AsyncClient`` owned by the caller (connection reuse); without
    one, each send uses a short-lived client (alerts are rare, so nothing to close). ``clock``
    gives the signing time in ns since the epoch (UTC).
    """

    def __init__(
        self,
        name: str,
        url: str,
        secret: SecretStr,
        *,
        timeout_s: float = 10.0,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("webhook URL must be http(s)://host/...")
        self.name = name
        self._url = url
        # Only scheme, host and port go into error messages: a path or query may hold a token.
        self._where = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
        self._secret = secret
        self._timeout_s = timeout_s
        self._client = client
        self._clock = clock

    def request(self, n: Notification) -> tuple[bytes, dict[str, str]]:
        """The exact body bytes and headers that are sent for ``n`` (signed now)."""
        body = orjson.dumps(to_json(n))
        ts = str(self._clock() // NS_PER_S)
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: ts,
            SIGNATURE_HEADER: sign(self._secret.get_secret_value().encode(), ts, body),
            "Idempotency-Key": n.id,
        }
        return body, headers

    async def send(self, n: Notification) -> None:
        body, headers = self.request(n)
        what = f"webhook {self.name} to {self._where}"
        try:
            if self._client is not None:
                resp = await self._client.post(
                    self._url, content=body, headers=headers, timeout=self._timeout_s
                )
            else:
                async with httpx.AsyncClient(timeout=self._timeout_s) as client:
                    resp = await client.post(self._url, content=body, headers=headers)
        except httpx.TimeoutException as e:
            raise NotifyError(f"{what}: timed out ({type(e).__name__})", retryable=True) from e
        except httpx.TransportError as e:
            raise NotifyError(f"{what}: {type(e).__name__}: {e}", retryable=True) from e
        if resp.is_success:
            return
        raise NotifyError(
            f"{what}: HTTP {resp.status_code}", retryable=_retryable_status(resp.status_code)
        )
