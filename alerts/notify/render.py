"""How a :class:`~alerts.model.Notification` looks on the wire and to a person.

:func:`to_json` is the machine format of webhooks and MQTT (schema version ``"1"``; fields
are only ever added within a version):

========================  ================================================================
``version``               ``"1"``
``id``                    unique per notification: the idempotency key
``receiver``              receiver name
``status``                ``firing`` while any alert of the group fires, else ``resolved``
``reason``                ``first``, ``new_alerts``, ``resolved``, ``repeat``, ``escalation``
``title``                 one-line subject, e.g. ``[FIRING:1] limit_breach demo/boiler1``
``group_key``             the group's identity (route plus grouping label values)
``group_labels``          the grouping label values
``escalation_level``      0 for the first contacts, 1 for the next level, ...
``ts``                    when the notification was made (ISO 8601, UTC)
``extra``                 free-form string annotations of the route
``alerts``                firing (incl. acknowledged) alerts first, then resolved ones
========================  ================================================================

Each alert: ``fingerprint``, ``rule``, ``state``, ``severity``, ``labels`` (``plant``,
``stack`` and, where they apply, ``sensor``, ``pollutant``), ``summary``, ``value``,
``threshold`` (numbers or null), ``started``, ``fired``, ``acknowledged``, ``resolved``
(ISO 8601 UTC or null), ``acknowledged_by``, ``ack_comment``.

:func:`to_text` is the (title, body) for e-mail and chat: one line per alert.

>>> from alerts.model import Alert, Notification, NotifyReason, Severity, State
>>> t0 = 1_704_103_200 * 10**9  # 2024-01-01T10:00:00Z
>>> a = Alert("f1", "limit_breach", {"plant": "demo", "stack": "boiler1", "pollutant": "nox"},
...           Severity.CRITICAL, State.FIRING, "NOx 230 mg/Nm³ above ELV 200 mg/Nm³",
...           started_ns=t0, updated_ns=t0, value=230.0, threshold=200.0, fired_ns=t0)
>>> n = Notification("n1", "officers", "g", {"plant": "demo", "stack": "boiler1"},
...                  NotifyReason.FIRST, t0, firing=(a,))
>>> to_json(n)["alerts"][0]["fired"]
'2024-01-01T10:00:00+00:00'
>>> title, body = to_text(n)
>>> title
'[FIRING:1] limit_breach demo/boiler1'
>>> print(body.splitlines()[3])
- CRITICAL limit_breach plant=demo stack=boiler1 pollutant=nox: NOx 230 mg/Nm³ above ELV 200 mg/Nm³ (value 230 vs threshold 200) since 2024-01-01T10:00:00Z
"""  # noqa: E501

from __future__ import annotations

from typing import Any

from alerts.model import Alert, Notification
from stream.model import datetime_from_ns

SCHEMA_VERSION = "1"
_LABEL_ORDER = ("plant", "stack", "sensor", "pollutant")


def _iso(ts_ns: int | None) -> str | None:
    return None if ts_ns is None else datetime_from_ns(ts_ns).isoformat()


def _alert_json(a: Alert) -> dict[str, Any]:
    return {
        "fingerprint": a.fingerprint,
        "rule": a.rule,
        "state": a.state.value,
        "severity": a.severity.value,
        "labels": dict(a.labels),
        "summary": a.summary,
        "value": a.value,
        "threshold": a.threshold,
        "started": _iso(a.started_ns),
        "fired": _iso(a.fired_ns),
        "acknowledged": _iso(a.acknowledged_ns),
        "resolved": _iso(a.resolved_ns),
        "acknowledged_by": a.acknowledged_by,
        "ack_comment": a.ack_comment,
    }


def to_json(n: Notification) -> dict[str, Any]:
    """The JSON document (schema version ``"1"``, see the module docs) of ``n``."""
    return {
        "version": SCHEMA_VERSION,
        "id": n.id,
        "receiver": n.receiver,
        "status": n.status,
        "reason": n.reason.value,
        "title": n.title,
        "group_key": n.group_key,
        "group_labels": dict(n.group_labels),
        "escalation_level": n.escalation_level,
        "ts": _iso(n.ts_ns),
        "extra": dict(n.extra),
        "alerts": [_alert_json(a) for a in (*n.firing, *n.resolved)],
    }


def _short(ts_ns: int) -> str:
    """Second-resolution UTC time for people, e.g. ``2024-01-01T10:00:00Z``."""
    return datetime_from_ns(ts_ns).strftime("%Y-%m-%dT%H:%M:%SZ")


def _num(x: float) -> str:
    return f"{x:.6g}"


def _where(a: Alert) -> str:
    keys = [k for k in _LABEL_ORDER if k in a.labels]
    keys += sorted(k for k in a.labels if k not in _LABEL_ORDER)
    return " ".join(f"{k}={a.labels[k]}" for k in keys)


def alert_line(a: Alert) -> str:
    """One human-readable line: severity, rule, where, summary, value vs threshold, times.

    Units appear through the summary (the source writes them there); value and threshold are
    repeated as plain numbers so the line is useful even when the summary is terse.
    """
    head = f"- {a.severity.value.upper()} {a.rule} {_where(a)}".rstrip()
    if a.summary:
        head += f": {a.summary}"
    tail: list[str] = []
    if a.value is not None and a.threshold is not None:
        tail.append(f"(value {_num(a.value)} vs threshold {_num(a.threshold)})")
    elif a.value is not None:
        tail.append(f"(value {_num(a.value)})")
    tail.append(f"since {_short(a.started_ns)}")
    if a.acknowledged_ns is not None:
        ack = f"acknowledged by {a.acknowledged_by or '?'} at {_short(a.acknowledged_ns)}"
        if a.ack_comment:
            ack += f' ("{a.ack_comment}")'
        tail.append(ack)
    if a.resolved_ns is not None:
        tail.append(f"resolved at {_short(a.resolved_ns)}")
    return " ".join([head, *tail])


def to_text(n: Notification) -> tuple[str, str]:
    """``(title, body)`` for e-mail and chat: a header, then one line per alert (UTC times)."""
    title = n.title
    if n.escalation_level:
        title += f" (escalation level {n.escalation_level})"
    lines = [
        f"StackWatch alert notification for {n.receiver} ({n.reason.value}) at {_short(n.ts_ns)}",
        "",
    ]
    if n.firing:
        lines.append(f"Firing ({len(n.firing)}):")
        lines += [alert_line(a) for a in n.firing]
    if n.resolved:
        if n.firing:
            lines.append("")
        lines.append(f"Resolved ({len(n.resolved)}):")
        lines += [alert_line(a) for a in n.resolved]
    lines += ["", f"Notification id: {n.id}"]
    return title, "\n".join(lines)
