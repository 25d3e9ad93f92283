"""Apprise e-mail against a real local SMTP server (aiosmtpd)."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from pydantic import SecretStr

from alerts.notify.apprise_notifier import AppriseNotifier, redacted, validate_url
from alerts.notify.base import NotifyError
from tests.alerts.notify.test_webhook import notification
from tests.servers import free_port


class Inbox:
    """aiosmtpd handler collecting every accepted message."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.recipients: list[list[str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append(msg)
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 OK"


class Smtp:
    def __init__(self, port: int | None = None) -> None:
        self.inbox = Inbox()
        self.port = port or free_port()
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)

    def url(self, **query: str) -> SecretStr:
        """Plain SMTP (``mailto://``: no TLS, no login) to this server."""
        q = {"from": "alerts@plant.example", "to": "officer@plant.example"} | query
        qs = "&".join(f"{k}={v}" for k, v in q.items())
        return SecretStr(f"mailto://127.0.0.1:{self.port}?{qs}")

    def __enter__(self) -> Smtp:
        self.controller.start()  # returns once the server accepts connections
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    with Smtp() as server:
        yield server


async def test_email_reaches_the_smtp_server(smtp: Smtp) -> None:
    notifier = AppriseNotifier("email", [smtp.url()])
    await notifier.send(notification())
    [msg] = smtp.inbox.messages
    assert smtp.inbox.recipients == [["officer@plant.example"]]
    assert msg["Subject"] == "[FIRING:1] limit_breach demo/boiler1"
    assert msg["From"] == "alerts@plant.example"
    plain = msg.get_body(("plain",))
    assert plain is not None
    text = plain.get_content()
    assert (
        "- CRITICAL limit_breach plant=demo stack=boiler1 sensor=nox_1 pollutant=nox: "
        "NOx 231.5 mg/Nm³ above ELV 200 mg/Nm³ (value 231.5 vs threshold 200) "
        "since 2024-01-01T09:50:00Z"
    ) in text
    assert "Notification id: n1" in text


async def test_unreachable_server_is_a_retryable_error_without_secrets() -> None:
    url = SecretStr(
        f"mailto://alerts:hunter2-pw@127.0.0.1:{free_port()}"
        "?from=alerts@plant.example&to=eo@plant.example"
    )
    with pytest.raises(NotifyError) as err:
        await AppriseNotifier("email", [url]).send(notification())
    assert err.value.retryable
    assert "127.0.0.1" in str(err.value)
    assert "hunter2" not in str(err.value)
    assert "alerts:" not in str(err.value)


async def test_retry_skips_urls_that_already_have_the_notification(smtp: Smtp) -> None:
    """One URL fails: the retry goes only to it, the other recipient gets no duplicate."""
    late = Smtp()  # its port is closed until the server starts
    notifier = AppriseNotifier("email", [smtp.url(), late.url(to="deputy@plant.example")])
    n = notification("n42")
    with pytest.raises(NotifyError) as err:
        await notifier.send(n)
    assert f"127.0.0.1:{late.port}" in str(err.value)
    assert f"127.0.0.1:{smtp.port}" not in str(err.value)
    assert len(smtp.inbox.messages) == 1

    with late:
        await notifier.send(n)  # the retry
        await notifier.send(notification("n43"))  # a new notification goes to both
    assert smtp.inbox.recipients == [["officer@plant.example"]] * 2
    assert late.inbox.recipients == [["deputy@plant.example"]] * 2


def test_validation_needs_no_network_and_rejects_unknown_schemes() -> None:
    validate_url(SecretStr("mailtos://u:p@smtp.unresolvable.invalid?to=a@b.example"))
    validate_url(SecretStr("tgram://123456789:abcdefg_hijklmnop/-100123"))
    with pytest.raises(ValueError, match=r"nosuch://"):
        validate_url(SecretStr("nosuch://user:pw@host"))
    with pytest.raises(ValueError):
        AppriseNotifier("x", [])


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("mailtos://user:pw@smtp.example.com:465?to=a@b.c", "mailtos://smtp.example.com:465"),
        ("tgram://123456789:abcdefg_token/-100123", "tgram://…"),
        ("slack://T000/B000/XXXX", "slack://…"),
        ("json://localhost/path?token=x", "json://localhost"),
    ],
)
def test_redacted_shows_scheme_and_host_only(url: str, shown: str) -> None:
    assert redacted(SecretStr(url)) == shown
