"""MQTT alert topic: publish the :func:`~alerts.notify.render.to_json` document per notification.

The topic comes from ``topic_template`` with the group's labels (falling back to the first
alert's labels, then ``_``) plus ``receiver`` and ``status``; label values are made
topic-safe (``/``, ``+``, ``#`` become ``_``).

Connect per send rather than keeping a connection: notifications are rare (grouped, seconds
to hours apart), so one extra CONNECT each time costs nothing, while a long-lived client
would need a reconnect loop and a watchdog, because aiomqtt does not fail a QoS 1 publish
whose connection silently dropped (it waits for a PUBACK until its timeout). A fresh
connection per send turns every broker problem into a plain, retryable error of that send.

>>> topic_for("stackwatch/alerts/{plant}/{stack}", {"plant": "demo", "stack": "b/1"})
'stackwatch/alerts/demo/b_1'
>>> topic_for("alerts/{plant}/{sensor}", {"plant": "demo"})
'alerts/demo/_'
"""

from __future__ import annotations

import asyncio
import ssl
import string
import uuid
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

import aiomqtt
import orjson
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import SecretStr

from alerts.model import Notification
from alerts.notify.base import NotifyError
from alerts.notify.render import to_json

DEFAULT_TOPIC_TEMPLATE = "stackwatch/alerts/{plant}/{stack}/{status}"
"""Five levels, so the collector's sensor filter ``stackwatch/+/+/+`` never receives alerts."""
# CONNACK codes that another attempt cannot fix: 3.1.1 (1 protocol, 2 client id, 4 bad
# credentials, 5 not authorised) and MQTT 5 reason codes (0x84..0x87, 0x8C bad auth method).
_FATAL_CONNACK = frozenset({1, 2, 4, 5, 0x84, 0x85, 0x86, 0x87, 0x8C})
_UNSAFE = str.maketrans({"/": "_", "+": "_", "#": "_", "\0": "_"})


class _Fields(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "_"


def check_topic_template(template: str) -> None:
    """Raise ValueError for a template that cannot make a valid publish topic."""
    if not template or "+" in template or "#" in template or template.startswith("$"):
        raise ValueError("topic template must be non-empty, without + # or a leading $")
    for _, field, spec, conv in string.Formatter().parse(template):
        if field is not None and (not field.isidentifier() or spec or conv):
            raise ValueError(f"topic template fields must be plain names like {{plant}}: {field!r}")


def topic_for(template: str, labels: Mapping[str, str]) -> str:
    """``template`` filled with topic-safe ``labels``; missing fields become ``_``."""
    fields = _Fields({k: (str(v).translate(_UNSAFE) or "_") for k, v in labels.items()})
    return template.format_map(fields)


def _topic_labels(n: Notification) -> dict[str, str]:
    first = (*n.firing, *n.resolved)[:1]
    labels = dict(first[0].labels) if first else {}
    return labels | dict(n.group_labels) | {"receiver": n.receiver, "status": n.status}


def _fatal(e: aiomqtt.MqttCodeError) -> bool:
    rc = e.rc.value if isinstance(e.rc, ReasonCode) else e.rc
    return isinstance(e, MqttConnectError) and rc in _FATAL_CONNACK


class MqttNotifier:
    """Publishes each notification as JSON to ``url`` (``mqtt[s]://[user[:pass]@]host[:port]``).

    ``username``/``password`` override those of the URL. ``timeout_s`` bounds the whole send
    (connect, publish, PUBACK for QoS 1).
    """

    def __init__(
        self,
        name: str,
        url: str,
        topic_template: str = DEFAULT_TOPIC_TEMPLATE,
        *,
        qos: int = 1,
        retain: bool = False,
        username: SecretStr | None = None,
        password: SecretStr | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError("MQTT URL must be mqtt[s]://host[:port]")
        if qos not in (0, 1, 2):
            raise ValueError("qos must be 0, 1 or 2")
        check_topic_template(topic_template)
        self.name = name
        self._tls = parts.scheme == "mqtts"
        self._host = parts.hostname
        self._port = parts.port or (8883 if self._tls else 1883)
        user = username.get_secret_value() if username else parts.username
        self._username = unquote(user) if user else None
        self._password = password or (
            SecretStr(unquote(parts.password)) if parts.password else None
        )
        self._template = topic_template
        self._qos = qos
        self._retain = retain
        self._timeout_s = timeout_s

    def topic(self, n: Notification) -> str:
        return topic_for(self._template, _topic_labels(n))

    async def send(self, n: Notification) -> None:
        what = f"mqtt {self.name} to {self._host}:{self._port}"
        client = aiomqtt.Client(
            self._host,
            self._port,
            username=self._username,
            password=self._password.get_secret_value() if self._password else None,
            identifier=f"stackwatch-alerts-{uuid.uuid4().hex[:12]}",
            tls_context=ssl.create_default_context() if self._tls else None,
            timeout=self._timeout_s,
        )
        try:
            async with asyncio.timeout(self._timeout_s), client:
                await client.publish(
                    self.topic(n), orjson.dumps(to_json(n)), qos=self._qos, retain=self._retain
                )
        except TimeoutError as e:
            raise NotifyError(f"{what}: timed out after {self._timeout_s} s", retryable=True) from e
        except aiomqtt.MqttCodeError as e:
            raise NotifyError(f"{what}: {e}", retryable=not _fatal(e)) from e
        except (aiomqtt.MqttError, OSError) as e:
            raise NotifyError(f"{what}: {type(e).__name__}: {e}", retryable=True) from e
