# mypy: disable-error-code="no-untyped-call"
"""The paho-mqtt speed-ups behave exactly like paho's own code."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt import MQTTException
from paho.mqtt.matcher import MQTTMatcher
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from collector import paho_speedups


def original(packet_type: int) -> Properties:
    """A ``Properties`` built by paho's own constructor."""
    p = Properties.__new__(Properties)
    paho_speedups._ORIGINAL_INIT(p, packet_type)
    return p


def test_patch_is_applied_and_the_tables_equal_paho_s() -> None:
    assert paho_speedups.patched()
    for packet_type in (PacketTypes.PUBLISH, PacketTypes.CONNECT, PacketTypes.PUBACK):
        fast, slow = Properties(packet_type), original(packet_type)
        assert (fast.packetType, fast.types, fast.names, fast.properties) == (
            slow.packetType, slow.types, slow.names, slow.properties,
        )  # fmt: skip


def _text(min_size: int = 0, max_size: int = 20) -> st.SearchStrategy[str]:
    """What MQTT allows in a string: no NUL, no surrogates."""
    chars = st.characters(codec="utf-8", exclude_characters="\x00")
    return st.text(chars, min_size=min_size, max_size=max_size)


def _publish_properties() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {},
        optional={
            "PayloadFormatIndicator": st.integers(0, 1),
            "MessageExpiryInterval": st.integers(0, 2**32 - 1),
            "ContentType": _text(),
            "ResponseTopic": _text(min_size=1),
            "CorrelationData": st.binary(max_size=20),
            "TopicAlias": st.integers(1, 65535),
            "UserProperty": st.lists(st.tuples(_text(max_size=8), _text(max_size=8)), max_size=3),
        },
    )


@settings(max_examples=300, deadline=None)
@given(values=_publish_properties(), reuse=st.booleans())
def test_decoded_properties_equal_paho_s(values: dict[str, Any], reuse: bool) -> None:
    """Pack with paho's own object, unpack into a fast one (fresh, or reused and cleared)."""
    source = original(PacketTypes.PUBLISH)
    for name, value in values.items():
        setattr(source, name, value)
    wire = source.pack()
    fast = Properties(PacketTypes.PUBLISH)
    if reuse:  # unpack clears what an earlier message left
        fast.ContentType = "left over"
        fast.UserProperty = [("a", "b")]
    slow = original(PacketTypes.PUBLISH)
    fast.unpack(wire)
    slow.unpack(wire)
    assert fast.json() == slow.json()
    assert {k: v for k, v in vars(fast).items() if k not in paho_speedups._PRIVATE} == {
        k: v for k, v in vars(slow).items() if k not in paho_speedups._PRIVATE
    }


def test_validation_still_applies() -> None:
    with pytest.raises(MQTTException):
        Properties(PacketTypes.PUBLISH).ReceiveMaximum = 5  # a CONNECT property


@pytest.mark.parametrize(
    ("filters", "topic"),
    [
        ([], "a/b"),
        (["a/+"], "a/b"),
        (["a/#", "x/y"], "a/b/c"),
        (["+/b"], "$SYS/b"),
    ],
)
def test_topic_matching_equals_paho_s(filters: list[str], topic: str) -> None:
    matcher = MQTTMatcher()
    for f in filters:
        matcher[f] = f
    expected = list(paho_speedups._ORIGINAL_ITER_MATCH(matcher, topic))
    assert list(matcher.iter_match(topic)) == expected
