"""Matchers, the routing tree (first match, continue, inheritance), grouping and config errors."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from alerts.matchers import Matcher, MatchOp, alert_labels, matches
from alerts.model import Alert, Severity, State, fingerprint
from alerts.routing import RouteConfigError, Router
from stream.model import NS_PER_S

S = NS_PER_S
NOX = {"plant": "demo", "stack": "boiler1", "pollutant": "nox"}


def alert(rule: str, labels: dict[str, str], severity: Severity = Severity.WARNING) -> Alert:
    return Alert(
        fingerprint(rule, labels), rule, labels, severity, State.FIRING, "", 0, 0, fired_ns=0
    )


# -- matchers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value", "expected"),
    [
        ("plant=demo", "demo", True),
        ("plant=demo", "demo2", False),
        ("plant!=demo", "other", True),
        ("plant!=demo", "demo", False),
        ("pollutant=~nox|so2", "so2", True),
        ("pollutant=~nox", "nox2", False),  # full match, not search
        ("pollutant!~nox.*", "nox2", False),
        ("pollutant!~nox", "nox2", True),
        ('plant="demo"', "demo", True),  # quoted value
    ],
)
def test_matcher_ops(text: str, value: str, expected: bool) -> None:
    m = Matcher.parse(text)
    assert m.matches({m.label: value}) is expected


def test_missing_label_matches_as_empty_string() -> None:
    assert Matcher.parse('sensor=""').matches({"plant": "demo"})
    assert not Matcher.parse("sensor=~.+").matches({"plant": "demo"})
    assert Matcher.parse("sensor!=nox1").matches({})


def test_matcher_list_needs_all_and_empty_list_matches_everything() -> None:
    ms = [Matcher(label="plant", value="demo"), Matcher(label="rule", op=MatchOp.EQ, value="x")]
    assert matches(ms, {"plant": "demo", "rule": "x"})
    assert not matches(ms, {"plant": "demo", "rule": "y"})
    assert matches([], {"anything": "at all"})


def test_bad_matchers_fail_at_validation() -> None:
    with pytest.raises(ValidationError, match="invalid regex"):
        Matcher.parse("plant=~(unclosed")
    with pytest.raises(ValidationError, match="not a matcher"):
        Matcher.parse("no operator here")
    with pytest.raises(ValidationError):
        Matcher(label="bad-label", value="x")


def test_alert_labels_include_rule_and_severity() -> None:
    a = alert("limit_breach", NOX, Severity.CRITICAL)
    assert alert_labels(a) == {**NOX, "rule": "limit_breach", "severity": "critical"}


# -- routing tree -----------------------------------------------------------------------------

TREE: dict[str, Any] = {
    "receivers": ["ops"],
    "group_wait_s": 10,
    "routes": [
        {
            "matchers": ["plant=demo"],
            "receivers": ["demo-team"],
            "repeat_interval_s": 600,
            "routes": [
                {"matchers": ["severity=critical"], "receivers": ["pager"], "continue": True},
                {"matchers": ["rule=limit_breach"], "group_by": ["plant", "rule"]},
                {"matchers": ["rule=~limit_breach|anomaly"], "receivers": ["never-reached"]},
            ],
        },
        {"matchers": ["plant=other"], "receivers": ["other-team"], "send_resolved": False},
    ],
}


def test_first_matching_child_wins_and_children_inherit() -> None:
    router = Router.from_mapping(TREE)
    [route] = router.routes_for(alert("limit_breach", NOX))
    assert route.path == "route.routes[0].routes[1]"
    assert route.receivers == ("demo-team",)  # inherited from the parent
    assert route.repeat_interval_ns == 600 * S  # from the parent
    assert route.group_wait_ns == 10 * S  # from the root
    assert route.group_interval_ns == 300 * S  # root default
    assert route.group_by == ("plant", "rule")  # its own
    assert route.send_resolved is True


def test_continue_sends_to_later_siblings_too() -> None:
    router = Router.from_mapping(TREE)
    routes = router.routes_for(alert("limit_breach", NOX, Severity.CRITICAL))
    assert [r.receivers for r in routes] == [("pager",), ("demo-team",)]


def test_alert_no_child_takes_stays_with_the_parent() -> None:
    router = Router.from_mapping(TREE)
    [route] = router.routes_for(alert("no_data", {"plant": "demo", "stack": "b", "sensor": "s"}))
    assert route.path == "route.routes[0]"
    [root] = router.routes_for(alert("no_data", {"plant": "elsewhere"}))
    assert root.path == "route"
    assert root.receivers == ("ops",)
    assert root.repeat_interval_ns == 4 * 3600 * S


def test_sibling_values_do_not_leak() -> None:
    router = Router.from_mapping(TREE)
    [other] = router.routes_for(alert("anomaly", {"plant": "other"}))
    assert other.send_resolved is False
    assert other.repeat_interval_ns == 4 * 3600 * S  # not demo's 600


def test_grouping_by_plant_stack_pollutant() -> None:
    [route] = Router.from_mapping({"receivers": ["ops"]}).routes_for(alert("limit_breach", NOX))
    key1, labels = route.group(alert("limit_breach", NOX))
    key2, _ = route.group(alert("forecast_prealarm", NOX))
    key3, _ = route.group(alert("limit_breach", {**NOX, "pollutant": "so2"}))
    key4, sensor_labels = route.group(alert("anomaly", {"plant": "demo", "stack": "boiler1"}))
    assert key1 == key2 != key3
    assert labels == NOX
    assert sensor_labels == {"plant": "demo", "stack": "boiler1"}
    assert key4 not in (key1, key3)


def test_group_by_all_labels() -> None:
    [route] = Router.from_mapping({"receivers": ["ops"], "group_by": ["..."]}).routes()
    assert route.group(alert("a", NOX))[0] != route.group(alert("b", NOX))[0]


def test_route_keys_are_stable_matcher_chains() -> None:
    config = {
        "receivers": ["ops"],
        "routes": [
            {"matchers": ["plant=demo"], "receivers": ["a"]},
            {"matchers": ["plant=demo"], "receivers": ["b"]},
        ],
    }
    keys = [r.key for r in Router.from_mapping(config).routes()]
    assert keys == ["{}", '{}/{plant="demo"}', '{}/{plant="demo"}#1']


# -- validation -------------------------------------------------------------------------------


def problems(config: dict[str, Any], **kw: Any) -> str:
    with pytest.raises(RouteConfigError) as err:
        Router.from_mapping(config, **kw)
    assert err.value.retryable is False
    return str(err.value)


def test_structural_errors_name_the_path() -> None:
    msg = problems(
        {
            "receivers": ["ops"],
            "routes": [{}, {"routes": [{"group_wait_s": -1, "matchers": ["x=~("]}]}],
        }
    )
    assert "route.routes[1].routes[0].group_wait_s" in msg
    assert "route.routes[1].routes[0].matchers[0]" in msg
    assert "invalid regex" in msg
    assert "route.bogus: Extra inputs" in problems({"receivers": ["ops"], "bogus": 1})


def test_semantic_errors_name_the_path() -> None:
    assert "route.receivers: no receivers" in problems({})
    assert "route.matchers: the root route" in problems(
        {"receivers": ["ops"], "matchers": ["plant=demo"]}
    )
    assert "route.routes[0].repeat_interval_s" in problems(
        {"receivers": ["ops"], "routes": [{"repeat_interval_s": 60}]}
    )
    msg = problems(
        {
            "receivers": ["ops"],
            "escalation": [
                {"after_s": 600, "receivers": ["lead"]},
                {"after_s": 300, "receivers": ["boss"]},
            ],
        }
    )
    assert "route.escalation[1].after_s: must be later" in msg
    assert "route.escalation[0].after_s" in problems(
        {"receivers": ["ops"], "escalation": [{"after_s": 5, "receivers": ["lead"]}]}
    )
    assert "route.escalation[0].receivers" in problems(
        {"receivers": ["ops"], "escalation": [{"after_s": 600, "receivers": []}]}
    )


def test_unknown_receivers_are_errors_when_contacts_are_known() -> None:
    config = {
        "receivers": ["ops"],
        "routes": [
            {
                "matchers": ["plant=demo"],
                "receivers": ["typo"],
                "escalation": [{"after_s": 600, "receivers": ["ghost"]}],
            }
        ],
    }
    msg = problems(config, known_receivers={"ops", "lead"})
    assert "route.routes[0].receivers: unknown receiver 'typo'" in msg
    assert "route.routes[0].escalation[0].receivers: unknown receiver 'ghost'" in msg
    Router.from_mapping(config)  # without a contact list, names are not checked
