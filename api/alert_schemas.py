"""Request and response models of the alert, silence, notification and audit endpoints.

Every time is given twice: as an RFC 3339 UTC string (``..._at``, microsecond precision) and
as the exact integer ns since the epoch (``..._ns``) the pipeline works with. Labels are JSON
objects. Request strings are bounded and must be valid Unicode text (a lone surrogate could
not be stored); names and comments must not be blank.

>>> ack = AckIn.model_validate({"by": " eo ", "comment": "calibration gas left on"})
>>> ack.by
'eo'
>>> SilenceIn.model_validate(
...     {"matchers": ["plant=demo"], "duration_s": 3600, "created_by": "eo", "comment": "test"}
... ).matcher_list()
[Matcher(label='plant', op=<MatchOp.EQ: '='>, value='demo')]
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from alerts.audit import AuditEntry, Problem
from alerts.matchers import Matcher, MatchOp, format_matchers
from alerts.model import Alert, NotifyReason, Severity, State, Transition
from alerts.notifylog import SentRecord, Suppressed
from alerts.silences import Silence, SilenceSource, SilenceState
from stream.model import NS_PER_S, datetime_from_ns, ns_from_datetime

MAX_NAME = 100
MAX_COMMENT = 2000
MAX_MATCHERS = 32
MAX_MATCHER_VALUE = 1000
MAX_SILENCE_S = 366 * 86_400
"""The longest silence (a year and a day): a longer one is better a configuration change."""
MAX_NS = 2**63 - 1
"""The largest time the stores hold (signed 64-bit ns: 2262-04-11)."""
_LABEL_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


def _unicode(value: str) -> str:
    """Refuse lone surrogates: JSON allows them, UTF-8 storage does not."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (no lone surrogates)") from None
    return value


def _unicode_text(value: str) -> str:
    """Valid Unicode with surrounding blanks stripped."""
    return _unicode(value).strip()


Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_NAME, pattern=r"\S"),
    AfterValidator(_unicode_text),
]
"""Who acts (an officer's name or login): 1 to 100 characters, not blank."""

Comment = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_COMMENT, pattern=r"\S"),
    AfterValidator(_unicode_text),
]
"""Why: 1 to 2000 characters, not blank."""


_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})?", re.ASCII
)


def _rfc3339_text(value: object) -> object:
    """Only the RFC 3339 text form (pydantic alone also takes Unix timestamps like ``0.5``)."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or _RFC3339.fullmatch(value) is None:
        raise ValueError("expected an RFC 3339 date-time such as 2024-01-01T12:00:00Z")
    return value


Rfc3339 = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text)]
"""An aware date-time given as RFC 3339 text (a naive one is refused: the offset matters)."""


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def _optional_not_nullable(schema: dict[str, Any]) -> None:
    """The schema of an optional ``X | None`` field that refuses null: just ``X``'s.

    (``X | SkipJsonSchema[None]`` gives the same schema, but reports errors per union
    member: ``body.by.function-after[...]`` instead of ``body.by``.)
    """
    schema.pop("default", None)
    for option in schema.pop("anyOf", []):
        if option.get("type") != "null":
            schema.update(option)


def _refuse_null(value: object) -> object:
    """Optional fields are left out, not null (the schema says so: no ``null`` type)."""
    if value is None:
        raise ValueError("leave it out rather than null")
    return value


def time_ns(dt: datetime) -> int:
    """Epoch ns of an aware datetime, refused outside what the stores hold (1970 to 2262)."""
    ns = ns_from_datetime(dt)
    if not 0 <= ns <= MAX_NS:
        raise ValueError("must be between 1970-01-01T00:00:00Z and 2262-04-11T23:47:16Z")
    return ns


def clamp_ns(dt: datetime | None) -> int | None:
    """Epoch ns of a filter bound, clamped to the stores' range (a far bound selects all)."""
    if dt is None:
        return None
    return min(max(ns_from_datetime(dt), -MAX_NS - 1), MAX_NS)


def _at(ns: int | None) -> datetime | None:
    return datetime_from_ns(ns) if ns is not None else None


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


def _examples(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(frozen=True, json_schema_extra={"examples": list(examples)})


# ---------------------------------------------------------------------------------- alerts

_T0 = "2024-01-01T12:00:00Z"
_T0_NS = 1_704_110_400_000_000_000
_ALERT_EXAMPLE: dict[str, Any] = {
    "fingerprint": "3f2a9c0d1b4e5a67",
    "rule": "limit_breach",
    "labels": {"plant": "demo", "stack": "boiler1", "pollutant": "nox"},
    "severity": "critical",
    "state": "acknowledged",
    "summary": "NOX demo/boiler1: validated short-term average 212.0 mg/Nm3 against the ELV "
    "200 mg/Nm3",
    "value": 212.0,
    "threshold": 200.0,
    "started_at": _T0,
    "started_ns": _T0_NS,
    "updated_at": "2024-01-01T12:05:00Z",
    "updated_ns": _T0_NS + 300 * NS_PER_S,
    "fired_at": _T0,
    "fired_ns": _T0_NS,
    "acknowledged_at": "2024-01-01T12:05:00Z",
    "acknowledged_ns": _T0_NS + 300 * NS_PER_S,
    "acknowledged_by": "j.martin",
    "ack_comment": "Burner trim adjusted; watching the next averages.",
    "resolved_at": None,
    "resolved_ns": None,
}


class AlertOut(_Out):
    """The current state of one alert (see :class:`alerts.model.State` for the lifecycle)."""

    model_config = _examples(_ALERT_EXAMPLE)

    fingerprint: str = Field(description="Stable id: 16 hex digits over rule and labels.")
    rule: str
    labels: dict[str, str]
    severity: Severity
    state: State
    summary: str
    value: float | None = Field(description="Last observed value (null: none or not finite).")
    threshold: float | None
    started_at: datetime = Field(description="When the condition was first seen.")
    started_ns: int
    updated_at: datetime = Field(description="Last state change or value update.")
    updated_ns: int
    fired_at: datetime | None
    fired_ns: int | None
    acknowledged_at: datetime | None
    acknowledged_ns: int | None
    acknowledged_by: str | None
    ack_comment: str | None
    resolved_at: datetime | None
    resolved_ns: int | None

    @classmethod
    def of(cls, a: Alert) -> AlertOut:
        return cls(
            fingerprint=a.fingerprint,
            rule=a.rule,
            labels=dict(a.labels),
            severity=a.severity,
            state=a.state,
            summary=a.summary,
            value=a.value,
            threshold=a.threshold,
            started_at=datetime_from_ns(a.started_ns),
            started_ns=a.started_ns,
            updated_at=datetime_from_ns(a.updated_ns),
            updated_ns=a.updated_ns,
            fired_at=_at(a.fired_ns),
            fired_ns=a.fired_ns,
            acknowledged_at=_at(a.acknowledged_ns),
            acknowledged_ns=a.acknowledged_ns,
            acknowledged_by=a.acknowledged_by,
            ack_comment=a.ack_comment,
            resolved_at=_at(a.resolved_ns),
            resolved_ns=a.resolved_ns,
        )


class TransitionOut(_Out):
    """One recorded change of an alert's state, with the alert as it was after it."""

    model_config = _examples(
        {
            "at": "2024-01-01T12:05:00Z",
            "at_ns": _T0_NS + 300 * NS_PER_S,
            "previous": "firing",
            "state": "acknowledged",
            "actor": "j.martin",
            "comment": "Burner trim adjusted; watching the next averages.",
            "alert": _ALERT_EXAMPLE,
        }
    )

    at: datetime
    at_ns: int
    previous: State | None = Field(description="The state before (null: a new alert).")
    state: State = Field(description="The state transitioned to.")
    actor: str = Field(description="`system` for evaluation, else the acting user.")
    comment: str | None
    alert: AlertOut

    @classmethod
    def of(cls, t: Transition) -> TransitionOut:
        return cls(
            at=datetime_from_ns(t.ts_ns),
            at_ns=t.ts_ns,
            previous=t.previous,
            state=t.alert.state,
            actor=t.actor,
            comment=t.comment,
            alert=AlertOut.of(t.alert),
        )


class AckIn(BaseModel):
    """Who takes a firing alert and why (recorded in the alert, its history and the audit
    log)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"by": "j.martin", "comment": "Burner trim adjusted; watching the next averages."}
            ]
        },
    )

    by: Name | None = Field(
        None,
        description="Who acknowledges. With an API key: the key's holder, so leave it out "
        "or give that name. Required in demo mode (no login).",
        json_schema_extra=_optional_not_nullable,
    )
    comment: Comment

    @field_validator("by", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        return _refuse_null(value)


# ---------------------------------------------------------------------------------- silences


class MatcherIn(BaseModel):
    """One label test: `=` and `!=` compare, `=~` and `!~` match a regex against the whole
    value. Alerts are matched on their labels plus `rule` and `severity`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"label": "sensor", "op": "=~", "value": "nox|co"}]},
    )

    label: str = Field(max_length=MAX_NAME, pattern=_LABEL_PATTERN)
    op: MatchOp = MatchOp.EQ
    value: Annotated[str, Field(max_length=MAX_MATCHER_VALUE), AfterValidator(_unicode)] = ""


MatcherText = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_NAME + MAX_MATCHER_VALUE + 4,
        description="`label<op>value`, the value optionally quoted: `plant=demo`, "
        '`sensor=~"nox|co"`.',
        examples=["plant=demo", 'sensor=~"nox|co"'],
    ),
    AfterValidator(_unicode_text),
]


class MatcherOut(_Out):
    label: str
    op: MatchOp
    value: str
    text: str = Field(description='The canonical text form, e.g. `plant="demo"`.')

    @classmethod
    def of(cls, m: Matcher) -> MatcherOut:
        return cls(label=m.label, op=m.op, value=m.value, text=str(m))


def _to_matcher(item: MatcherIn | str) -> Matcher:
    raw: object = item if isinstance(item, str) else item.model_dump()
    try:
        return Matcher.model_validate(raw)
    except ValidationError as err:
        messages = (str(e["msg"]).removeprefix("Value error, ") for e in err.errors())
        raise ValueError("; ".join(messages)) from None
    except (RecursionError, OverflowError) as err:
        # re.compile raises these (not re.error) for deeply nested groups or huge repeats.
        raise ValueError(f"invalid regex: {type(err).__name__}: {err}") from None


class SilenceIn(BaseModel):
    """A new silence: alerts matching every matcher are not notified between ``starts_at``
    (default now) and ``ends_at`` or ``starts_at + duration_s`` (give exactly one of those).
    At most 366 days long; it must end in the future."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [{"required": ["ends_at"]}, {"required": ["duration_s"]}],
            "examples": [
                {
                    "matchers": ["plant=demo", 'sensor=~"nox|co"'],
                    "duration_s": 7200,
                    "created_by": "j.martin",
                    "comment": "Analyser swap on boiler 1",
                },
                {
                    "matchers": [
                        {"label": "stack", "op": "=", "value": "boiler1"},
                        {"label": "rule", "op": "=~", "value": "anomaly|sensor_drift"},
                    ],
                    "starts_at": "2024-01-02T06:00:00Z",
                    "ends_at": "2024-01-02T14:00:00+01:00",
                    "created_by": "j.martin",
                    "comment": "Planned burner maintenance",
                },
            ],
        },
    )

    matchers: list[MatcherIn | MatcherText] = Field(min_length=1, max_length=MAX_MATCHERS)
    # Optional but not nullable (SkipJsonSchema and _no_default hide the None default from
    # the schema, _not_null refuses an explicit null): the OpenAPI document says what passes.
    starts_at: Rfc3339 | SkipJsonSchema[None] = Field(
        None, description="Default: now.", json_schema_extra=_no_default
    )
    ends_at: Rfc3339 | SkipJsonSchema[None] = Field(None, json_schema_extra=_no_default)
    duration_s: (
        Annotated[float, Field(gt=0, le=MAX_SILENCE_S, allow_inf_nan=False)] | SkipJsonSchema[None]
    ) = Field(None, description="Seconds.", json_schema_extra=_no_default)
    created_by: Name | None = Field(
        None,
        description="Who creates it. With an API key: the key's holder, so leave it out or "
        "give that name. Required in demo mode (no login).",
        json_schema_extra=_optional_not_nullable,
    )
    comment: Comment

    @field_validator("matchers")
    @classmethod
    def _valid_matchers(cls, items: list[MatcherIn | str]) -> list[MatcherIn | str]:
        matchers = []
        for i, item in enumerate(items):
            try:
                matchers.append(_to_matcher(item))
            except ValueError as err:
                raise ValueError(f"matcher {i}: {err}") from None
        if all(m.matches({}) for m in matchers):
            # As in Alertmanager: matchers that all match an empty label silence everything.
            raise ValueError("the matchers would match every alert; add a specific one")
        return items

    @field_validator("starts_at", "ends_at", "duration_s", "created_by", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        return _refuse_null(value)

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _in_range(cls, value: datetime | None) -> datetime | None:
        if value is not None:
            time_ns(value)
        return value

    @model_validator(mode="after")
    def _one_end(self) -> Self:
        if (self.ends_at is None) == (self.duration_s is None):
            raise ValueError("give exactly one of ends_at and duration_s")
        return self

    def matcher_list(self) -> list[Matcher]:
        return [_to_matcher(m) for m in self.matchers]


class SilenceOut(_Out):
    """A silence with its state at the time of the request."""

    model_config = _examples(
        {
            "id": "9b1f0c2e4d6a48b3a1c5e7f9d2b4a6c8",
            "matchers": [
                {"label": "plant", "op": "=", "value": "demo", "text": 'plant="demo"'},
                {"label": "sensor", "op": "=~", "value": "nox|co", "text": 'sensor=~"nox|co"'},
            ],
            "text": '{plant="demo",sensor=~"nox|co"}',
            "state": "active",
            "starts_at": _T0,
            "starts_ns": _T0_NS,
            "ends_at": "2024-01-01T14:00:00Z",
            "ends_ns": _T0_NS + 7200 * NS_PER_S,
            "created_at": _T0,
            "created_ns": _T0_NS,
            "created_by": "j.martin",
            "comment": "Analyser swap on boiler 1",
            "source": "api",
            "expired_at": None,
            "expired_ns": None,
            "expired_by": None,
        }
    )

    id: str
    matchers: list[MatcherOut]
    text: str = Field(description="All matchers in their canonical text form.")
    state: SilenceState
    starts_at: datetime
    starts_ns: int
    ends_at: datetime = Field(description="The planned end (see `expired_at` for an early one).")
    ends_ns: int
    created_at: datetime
    created_ns: int
    created_by: str
    comment: str
    source: SilenceSource = Field(
        description="`api`: created by a user; `plant_status`: a maintenance window opened by "
        "a sensor status or plant operating mode."
    )
    expired_at: datetime | None = Field(description="When it was ended early, if it was.")
    expired_ns: int | None
    expired_by: str | None

    @classmethod
    def of(cls, s: Silence, now_ns: int) -> SilenceOut:
        return cls(
            id=s.id,
            matchers=[MatcherOut.of(m) for m in s.matchers],
            text=format_matchers(s.matchers),
            state=s.state(now_ns),
            starts_at=datetime_from_ns(s.starts_ns),
            starts_ns=s.starts_ns,
            ends_at=datetime_from_ns(s.ends_ns),
            ends_ns=s.ends_ns,
            created_at=datetime_from_ns(s.created_ns),
            created_ns=s.created_ns,
            created_by=s.created_by,
            comment=s.comment,
            source=s.source,
            expired_at=_at(s.expired_ns),
            expired_ns=s.expired_ns,
            expired_by=s.expired_by,
        )


# ---------------------------------------------------------------------------------- notifications


class SentOut(_Out):
    """One notification handed to a receiver (its delivery outcome is in the audit log,
    kinds `notification_sent` / `notification_failed`, subject = this id)."""

    model_config = _examples(
        {
            "id": "5c1e7a2b9d4f4e0a8b6c3d2e1f0a9b8c",
            "receiver": "officers",
            "group_key": '{}:{plant="demo",stack="boiler1"}',
            "reason": "first",
            "at": _T0,
            "at_ns": _T0_NS,
            "escalation_level": 0,
            "firing": ["3f2a9c0d1b4e5a67"],
            "resolved": [],
        }
    )

    id: str
    receiver: str
    group_key: str
    reason: NotifyReason
    at: datetime
    at_ns: int
    escalation_level: int = Field(description="0: the route's receivers; n: escalation level n.")
    firing: list[str] = Field(description="Fingerprints of the alerts announced as firing.")
    resolved: list[str] = Field(description="Fingerprints of the alerts announced as resolved.")

    @classmethod
    def of(cls, r: SentRecord) -> SentOut:
        return cls(
            id=r.id,
            receiver=r.receiver,
            group_key=r.group_key,
            reason=r.reason,
            at=datetime_from_ns(r.ts_ns),
            at_ns=r.ts_ns,
            escalation_level=r.escalation_level,
            firing=list(r.firing),
            resolved=list(r.resolved),
        )


class SuppressedOut(_Out):
    """A notification held back for one alert because it was silenced or inhibited."""

    model_config = _examples(
        {
            "alert_fingerprint": "3f2a9c0d1b4e5a67",
            "receiver": "officers",
            "group_key": '{}:{plant="demo",stack="boiler1"}',
            "reason": "silenced",
            "by": "9b1f0c2e4d6a48b3a1c5e7f9d2b4a6c8",
            "at": _T0,
            "at_ns": _T0_NS,
            "notify_reason": "first",
            "escalation_level": 0,
        }
    )

    alert_fingerprint: str
    receiver: str
    group_key: str
    reason: str = Field(description="`silenced` or `inhibited`.")
    by: str = Field(description="The silence ids (comma separated) or the inhibition rule.")
    at: datetime
    at_ns: int
    notify_reason: NotifyReason = Field(description="The kind of notification held back.")
    escalation_level: int

    @classmethod
    def of(cls, s: Suppressed) -> SuppressedOut:
        return cls(
            alert_fingerprint=s.alert_fingerprint,
            receiver=s.receiver,
            group_key=s.group_key,
            reason=s.reason,
            by=s.by,
            at=datetime_from_ns(s.ts_ns),
            at_ns=s.ts_ns,
            notify_reason=s.notify_reason,
            escalation_level=s.escalation_level,
        )


# ---------------------------------------------------------------------------------- audit


class AuditEntryOut(_Out):
    """One audit log entry exactly as stored, so a client can recompute its hash."""

    model_config = _examples(
        {
            "seq": 42,
            "ts": "2024-01-01T12:05:00+00:00",
            "ts_ns": _T0_NS + 300 * NS_PER_S,
            "actor": "j.martin",
            "kind": "acknowledgement",
            "subject": "3f2a9c0d1b4e5a67",
            "data": {
                "rule": "limit_breach",
                "from": "firing",
                "to": "acknowledged",
                "comment": "Burner trim adjusted; watching the next averages.",
            },
            "prev": "a3" * 32,
            "hash": "5e" * 32,
        }
    )

    seq: int = Field(description="1, 2, 3, ... without gaps.")
    ts: str = Field(description="When it was recorded, RFC 3339 in UTC (as stored).")
    ts_ns: int
    actor: str = Field(description="`system`, `plant_status` or the acting user.")
    kind: str = Field(description="See the `kind` filter for the known kinds.")
    subject: str = Field(description="Alert fingerprint, silence id, notification id, file.")
    data: dict[str, Any]
    prev: str = Field(description="The previous entry's hash (64 zeros for the first).")
    hash: str = Field(description="SHA-256 (HMAC-SHA256 with a key) of the entry.")

    @classmethod
    def of(cls, e: AuditEntry) -> AuditEntryOut:
        return cls.model_validate(e.to_dict())


class ProblemOut(_Out):
    line: int = Field(description="1-based line of the log file (0: the file as a whole).")
    seq: int | None = Field(description="The entry's seq, null when the line is unreadable.")
    reason: str

    @classmethod
    def of(cls, p: Problem) -> ProblemOut:
        return cls(line=p.line, seq=p.seq, reason=p.reason)


class VerifyOut(_Out):
    """Integrity of the audit log: every entry's hash and the chain between entries, up to
    at least the last entry the service wrote (so entries cut off the end are found too)."""

    model_config = _examples(
        {
            "ok": False,
            "entries": 1250,
            "keyed": True,
            "head_seq": 1250,
            "head_hash": "5e" * 32,
            "hint": None,
            "problems_total": 1,
            "problems": [
                {
                    "line": 812,
                    "seq": 812,
                    "reason": "hash mismatch (entry edited, or a different key)",
                }
            ],
        }
    )

    ok: bool
    entries: int = Field(description="Lines examined.")
    keyed: bool = Field(description="Whether hashes were checked as HMAC with the log's key.")
    head_seq: int = Field(description="seq of the last readable entry (0: empty log).")
    head_hash: str
    hint: str | None = Field(description="A likely cause when no entry's hash matches.")
    problems_total: int
    problems: list[ProblemOut] = Field(description="The first problems found (at most 100).")
