"""The wire format (JSON schema v1) and the human text of notifications."""

from __future__ import annotations

import orjson

from alerts.model import Alert, Notification, NotifyReason, Severity, State
from alerts.notify.render import to_json, to_text
from stream.model import NS_PER_S
from tests.alerts.notify.test_webhook import T0, notification

ALERT_KEYS = {
    "fingerprint", "rule", "state", "severity", "labels", "summary", "value", "threshold",
    "started", "fired", "acknowledged", "resolved", "acknowledged_by", "ack_comment",
}  # fmt: skip


def acked_and_resolved() -> Notification:
    acked = Alert(
        "a1", "sensor_drift", {"plant": "demo", "stack": "boiler1", "sensor": "o2_1"},
        Severity.WARNING, State.ACKNOWLEDGED, "O2 sensor drift suspected",
        started_ns=T0, updated_ns=T0 + 60 * NS_PER_S, fired_ns=T0,
        acknowledged_ns=T0 + 60 * NS_PER_S, acknowledged_by="maria", ack_comment="on it",
    )  # fmt: skip
    resolved = Alert(
        "r1", "no_data", {"plant": "demo", "stack": "boiler1", "sensor": "dust_1"},
        Severity.INFO, State.RESOLVED, "", started_ns=T0, updated_ns=T0 + 120 * NS_PER_S,
        fired_ns=T0, resolved_ns=T0 + 120 * NS_PER_S, value=3.0,
    )  # fmt: skip
    return Notification(
        "n9", "shift", "g", {"plant": "demo", "stack": "boiler1"}, NotifyReason.ESCALATION,
        T0 + 180 * NS_PER_S, firing=(acked,), resolved=(resolved,), escalation_level=1,
        extra={"runbook": "https://wiki.example/nox"},
    )  # fmt: skip


def test_json_schema_v1() -> None:
    doc = to_json(notification())
    assert doc == {
        "version": "1",
        "id": "n1",
        "receiver": "officers",
        "status": "firing",
        "reason": "first",
        "title": "[FIRING:1] limit_breach demo/boiler1",
        "group_key": "route0:demo/boiler1",
        "group_labels": {"plant": "demo", "stack": "boiler1"},
        "escalation_level": 0,
        "ts": "2024-01-01T10:00:00+00:00",
        "extra": {},
        "alerts": [
            {
                "fingerprint": "f00dfeedf00dfeed",
                "rule": "limit_breach",
                "state": "firing",
                "severity": "critical",
                "labels": {
                    "plant": "demo",
                    "stack": "boiler1",
                    "sensor": "nox_1",
                    "pollutant": "nox",
                },
                "summary": "NOx 231.5 mg/Nm³ above ELV 200 mg/Nm³",
                "value": 231.5,
                "threshold": 200.0,
                "started": "2024-01-01T09:50:00+00:00",
                "fired": "2024-01-01T09:55:00+00:00",
                "acknowledged": None,
                "resolved": None,
                "acknowledged_by": None,
                "ack_comment": None,
            }
        ],
    }
    assert orjson.loads(orjson.dumps(doc)) == doc  # plain JSON types only


def test_json_lists_firing_then_resolved_with_ack_details() -> None:
    doc = to_json(acked_and_resolved())
    assert doc["status"] == "firing"
    assert doc["extra"] == {"runbook": "https://wiki.example/nox"}
    acked, resolved = doc["alerts"]
    assert set(acked) == set(resolved) == ALERT_KEYS
    assert (acked["state"], acked["acknowledged_by"], acked["ack_comment"]) == (
        "acknowledged", "maria", "on it"
    )  # fmt: skip
    assert acked["acknowledged"] == "2024-01-01T10:01:00+00:00"
    assert (resolved["state"], resolved["resolved"]) == ("resolved", "2024-01-01T10:02:00+00:00")


def test_text_has_one_line_per_alert_with_times_in_utc() -> None:
    title, body = to_text(acked_and_resolved())
    assert title == "[FIRING:1] no_data, sensor_drift demo/boiler1 (escalation level 1)"
    lines = body.splitlines()
    assert (
        lines[0] == "StackWatch alert notification for shift (escalation) at 2024-01-01T10:03:00Z"
    )
    assert (
        "- WARNING sensor_drift plant=demo stack=boiler1 sensor=o2_1: O2 sensor drift suspected "
        'since 2024-01-01T10:00:00Z acknowledged by maria at 2024-01-01T10:01:00Z ("on it")'
    ) in lines
    assert (
        "- INFO no_data plant=demo stack=boiler1 sensor=dust_1 (value 3) "
        "since 2024-01-01T10:00:00Z resolved at 2024-01-01T10:02:00Z"
    ) in lines
    assert lines.index("Firing (1):") < lines.index("Resolved (1):")
    assert lines[-1] == "Notification id: n9"


def test_resolved_only_notification() -> None:
    n = acked_and_resolved()
    resolved_only = Notification(n.id, n.receiver, n.group_key, n.group_labels,
                                 NotifyReason.RESOLVED, n.ts_ns, resolved=n.resolved)  # fmt: skip
    title, body = to_text(resolved_only)
    assert title.startswith("[RESOLVED:1] no_data")
    assert "Firing" not in body
    assert to_json(resolved_only)["status"] == "resolved"
