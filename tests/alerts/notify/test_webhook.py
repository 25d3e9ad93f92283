"""Signed webhooks against a real HTTP receiver (uvicorn + Starlette) that verifies them."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest
import uvicorn
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from alerts.model import Alert, Notification, NotifyReason, Severity, State
from alerts.notify.base import NotifyError
from alerts.notify.render import to_json
from alerts.notify.retry import Retrying
from alerts.notify.webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookNotifier,
    sign,
    verify_signature,
)
from stream.model import NS_PER_S
from tests.servers import free_port

SECRET = "webhook-test-secret-0123456789"
T0_S = 1_704_103_200  # 2024-01-01T10:00:00Z
T0 = T0_S * NS_PER_S


def notification(nid: str = "n1", *, stack: str = "boiler1") -> Notification:
    alert = Alert(
        fingerprint="f00dfeedf00dfeed",
        rule="limit_breach",
        labels={"plant": "demo", "stack": stack, "sensor": "nox_1", "pollutant": "nox"},
        severity=Severity.CRITICAL,
        state=State.FIRING,
        summary="NOx 231.5 mg/Nm³ above ELV 200 mg/Nm³",
        started_ns=T0 - 600 * NS_PER_S,
        updated_ns=T0,
        value=231.5,
        threshold=200.0,
        fired_ns=T0 - 300 * NS_PER_S,
    )
    return Notification(
        id=nid,
        receiver="officers",
        group_key=f"route0:demo/{stack}",
        group_labels={"plant": "demo", "stack": stack},
        reason=NotifyReason.FIRST,
        ts_ns=T0,
        firing=(alert,),
    )


class HookReceiver:
    """A webhook endpoint that accepts only correctly signed, fresh requests (401 otherwise)
    and answers with scripted statuses (then 200). ``hold``: requests wait for it (a slow
    receiver)."""

    def __init__(self, secret: str = SECRET, *, now_s: float = T0_S) -> None:
        self.secret = secret.encode()
        self.now_s = now_s
        self.statuses: list[int] = []
        self.attempts: list[tuple[str, int]] = []  # (idempotency key, status answered)
        self.payloads: list[dict[str, Any]] = []
        self.delivered = asyncio.Event()
        self.hold: asyncio.Event | None = None
        self.app = Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])

    async def _hook(self, request: Request) -> Response:
        body = await request.body()
        ok = verify_signature(
            self.secret,
            request.headers.get(TIMESTAMP_HEADER, ""),
            body,
            request.headers.get(SIGNATURE_HEADER, ""),
            now_s=self.now_s,
        )
        status = (self.statuses.pop(0) if self.statuses else 200) if ok else 401
        self.attempts.append((request.headers["Idempotency-Key"], status))
        if self.hold is not None:
            await self.hold.wait()
        if status == 200:
            assert request.headers["Content-Type"] == "application/json"
            self.payloads.append(orjson.loads(body))
            self.delivered.set()
        return Response(status_code=status)


@asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on a pre-bound loopback socket (accepting at once, so no
    readiness wait is needed); yields the base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@asynccontextmanager
async def running_receiver() -> AsyncIterator[tuple[HookReceiver, str]]:
    """A served :class:`HookReceiver` and its webhook URL."""
    hook = HookReceiver()
    async with serving(hook.app) as base:
        try:
            yield hook, f"{base}/hook"
        finally:  # let held requests finish, or the server waits for them on shutdown
            if hook.hold is not None:
                hook.hold.set()


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[HookReceiver, str]]:
    async with running_receiver() as served:
        yield served


def webhook(url: str, *, clock_s: int = T0_S, secret: str = SECRET) -> WebhookNotifier:
    return WebhookNotifier(
        "ops", url, SecretStr(secret), timeout_s=5, clock=lambda: clock_s * NS_PER_S
    )


def closed_url() -> str:
    return f"http://127.0.0.1:{free_port()}/hook"


async def test_delivers_signed_json_the_receiver_verifies(
    receiver: tuple[HookReceiver, str],
) -> None:
    hook, url = receiver
    n = notification()
    await webhook(url).send(n)
    assert hook.attempts == [("n1", 200)]
    assert hook.payloads == [orjson.loads(orjson.dumps(to_json(n)))]
    assert hook.payloads[0]["alerts"][0]["labels"]["stack"] == "boiler1"


async def test_wrong_secret_is_rejected_and_not_retryable(
    receiver: tuple[HookReceiver, str],
) -> None:
    hook, url = receiver
    with pytest.raises(NotifyError) as err:
        await webhook(url, secret="another-secret-0123456789").send(notification())
    assert not err.value.retryable
    assert "HTTP 401" in str(err.value)
    assert hook.payloads == []


async def test_stale_timestamp_is_rejected_by_the_receiver(
    receiver: tuple[HookReceiver, str],
) -> None:
    """Replay protection end to end: a request signed 10 minutes ago is refused."""
    hook, url = receiver
    with pytest.raises(NotifyError):
        await webhook(url, clock_s=T0_S - 600).send(notification())
    assert hook.attempts == [("n1", 401)]


async def test_503_then_200_is_retried_with_the_same_idempotency_key(
    receiver: tuple[HookReceiver, str],
) -> None:
    hook, url = receiver
    hook.statuses = [503, 429]
    delays: list[float] = []

    async def no_wait(s: float) -> None:
        delays.append(s)

    await Retrying(webhook(url), min_s=1, max_s=60, sleep=no_wait, rng=lambda: 1.0).send(
        notification("n7")
    )
    assert hook.attempts == [("n7", 503), ("n7", 429), ("n7", 200)]
    assert delays == [1.0, 2.0]
    assert len(hook.payloads) == 1


@pytest.mark.parametrize(("status", "retryable"), [(400, False), (404, False), (408, True),
                                                   (500, True), (503, True)])  # fmt: skip
async def test_status_classification(
    receiver: tuple[HookReceiver, str], status: int, retryable: bool
) -> None:
    hook, url = receiver
    hook.statuses = [status]
    with pytest.raises(NotifyError) as err:
        await webhook(url).send(notification())
    assert err.value.retryable is retryable
    assert f"HTTP {status}" in str(err.value)
    assert ("will be retried" in str(err.value)) is retryable


async def test_400_is_not_retried(receiver: tuple[HookReceiver, str]) -> None:
    hook, url = receiver
    hook.statuses = [400]
    sleeps: list[float] = []

    async def no_wait(s: float) -> None:
        sleeps.append(s)

    with pytest.raises(NotifyError) as err:
        await Retrying(webhook(url), sleep=no_wait).send(notification())
    assert not err.value.retryable
    assert "gave up after 1 attempt" in str(err.value)
    assert sleeps == []
    assert hook.attempts == [("n1", 400)]


async def test_connection_refused_is_retryable() -> None:
    with pytest.raises(NotifyError) as err:
        await webhook(closed_url()).send(notification())
    assert err.value.retryable
    assert "webhook ops to http://127.0.0.1:" in str(err.value)


async def test_timeout_is_retryable(receiver: tuple[HookReceiver, str]) -> None:
    hook, url = receiver
    hook.hold = asyncio.Event()
    slow = WebhookNotifier("ops", url, SecretStr(SECRET), timeout_s=0.2, clock=lambda: T0)
    with pytest.raises(NotifyError) as err:
        await slow.send(notification())
    assert err.value.retryable
    assert "timed out" in str(err.value)


def test_signature_header_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body, headers = webhook("https://ops.example/hook").request(notification())
    assert headers[TIMESTAMP_HEADER] == str(T0_S)
    assert headers[SIGNATURE_HEADER] == sign(SECRET.encode(), str(T0_S), body)
    assert headers["Idempotency-Key"] == "n1"
    assert orjson.loads(body)["id"] == "n1"


@pytest.mark.parametrize(
    ("timestamp", "header", "now_s", "ok"),
    [
        ("100", "good", 100.0, True),
        ("100", "good", 400.0, True),  # exactly at the tolerance
        ("100", "good", 401.0, False),  # too old: replay
        ("100", "good", -201.0, False),  # too far in the future
        ("abc", "good", 100.0, False),
        ("100", "sha256=00", 100.0, False),
        ("100", "", 100.0, False),
    ],
)
def test_verify_signature(timestamp: str, header: str, now_s: float, ok: bool) -> None:
    body = b'{"id":"n1"}'
    if header == "good":
        header = sign(b"k" * 16, timestamp, body)
    assert verify_signature(b"k" * 16, timestamp, body, header, now_s=now_s) is ok


def test_rejects_non_http_urls() -> None:
    with pytest.raises(ValueError, match="http"):
        WebhookNotifier("x", "ftp://example.com/hook", SecretStr(SECRET))
