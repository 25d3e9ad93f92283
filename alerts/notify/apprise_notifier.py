"""E-mail, Slack, Teams, Telegram and ~100 other services through Apprise URLs.

Apprise URLs (https://github.com/caronc/apprise/wiki) carry credentials, so they are
:class:`~pydantic.SecretStr` and only their scheme and host are ever logged or put in errors
(:func:`redacted`). Examples: ``mailtos://user:app-password@smtp.example.com?to=officer@plant``
(SMTPS/STARTTLS), ``mailto://mail.internal:25?from=alerts@plant&to=officer@plant`` (plain
SMTP, no login), ``slack://T000/B000/XXXX``, ``msteams://...``, ``tgram://bot-token/chat-id``.

Apprise quirks handled here:

* ``notify()`` blocks (requests/smtplib) and only returns True/False, without the reason.
  It runs in a worker thread, and False is a retryable :class:`NotifyError`.
* A plugin instance throttles itself (``time.sleep`` up to 5.5 s since its previous send), so
  every send builds fresh instances from the URLs (cheap: no network).
* One Apprise call for several URLs would, on a retry, send again to the URLs that already
  succeeded. Each URL is therefore sent separately, and URLs that succeeded for a
  notification id are skipped when the same notification is retried.

>>> redacted(SecretStr("mailtos://alerts:hunter2@smtp.example.com:465?to=a@b.c"))
'mailtos://smtp.example.com:465'
>>> validate_url(SecretStr("slack://T000/B000/XXXX"))
>>> validate_url(SecretStr("nosuch://x"))
Traceback (most recent call last):
ValueError: apprise URL nosuch://… is not a supported/valid Apprise URL
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from urllib.parse import urlsplit

import apprise
from pydantic import SecretStr

from alerts.model import Notification
from alerts.notify.base import NotifyError
from alerts.notify.render import to_text

_REMEMBERED_NOTIFICATIONS = 256


def redacted(url: SecretStr) -> str:
    """``scheme://host[:port]`` of an Apprise URL, safe to log: no user, password or path.

    Services often put a token where the host goes (``tgram://<bot-token>/...``), so the host
    is shown only when it looks like a host name (has a dot, or is ``localhost``).
    """
    try:
        parts = urlsplit(url.get_secret_value())
        host = parts.hostname or ""
    except ValueError:
        return "<unparsable URL>"
    try:
        port = parts.port
    except ValueError:  # "bot-id:token" where a host:port would be
        port, host = None, ""
    if "." not in host and host != "localhost":
        return f"{parts.scheme}://…"
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def validate_url(url: SecretStr) -> None:
    """Raise ValueError unless Apprise supports and accepts ``url`` (no network calls)."""
    if apprise.Apprise.instantiate(url.get_secret_value()) is None:
        raise ValueError(f"apprise URL {redacted(url)} is not a supported/valid Apprise URL")


def _notify(url: str, title: str, body: str) -> bool | None:
    """One blocking Apprise delivery (run in a thread): True, False, or None if not sent."""
    ap = apprise.Apprise()
    if not ap.add(url):
        return None
    return ap.notify(body=body, title=title, body_format=apprise.NotifyFormat.TEXT)


class AppriseNotifier:
    """Delivers the :func:`~alerts.notify.render.to_text` message to each Apprise URL.

    ``send`` raises a retryable :class:`NotifyError` naming (redacted) the URLs that failed;
    URLs rejected by Apprise raise ValueError at construction.
    """

    def __init__(self, name: str, urls: list[SecretStr]) -> None:
        if not urls:
            raise ValueError("at least one apprise URL is needed")
        for url in urls:
            validate_url(url)
        self.name = name
        self._urls = list(urls)
        # notification id -> indices of URLs that already have it (bounded, oldest dropped).
        self._done: OrderedDict[str, set[int]] = OrderedDict()

    async def send(self, n: Notification) -> None:
        title, body = to_text(n)
        done = self._done.get(n.id, set())
        todo = [i for i in range(len(self._urls)) if i not in done]
        results = await asyncio.gather(
            *(
                asyncio.to_thread(_notify, self._urls[i].get_secret_value(), title, body)
                for i in todo
            )
        )
        failed = [i for i, ok in zip(todo, results, strict=True) if not ok]
        done |= set(todo) - set(failed)
        if not failed:
            self._done.pop(n.id, None)
            return
        self._done[n.id] = done
        self._done.move_to_end(n.id)
        while len(self._done) > _REMEMBERED_NOTIFICATIONS:
            self._done.popitem(last=False)
        where = ", ".join(redacted(self._urls[i]) for i in failed)
        raise NotifyError(
            f"apprise {self.name}: delivery failed to {where} (Apprise gives no reason; "
            "see the 'apprise' logger)",
            retryable=True,
        )
