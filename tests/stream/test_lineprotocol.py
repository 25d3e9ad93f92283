"""Line protocol encoding: exact output, refused points, and a round trip through real stores.

The round trip writes arbitrary points that :func:`check_point` accepts to a real InfluxDB (and
to SQLite, which refuses the same points) and reads them back by their tags, so it checks the
line protocol escaping, the InfluxQL quoting of names and literals, and the SQLite JSON mapping.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.storage.base import FieldValue, Point, Store
from stream.storage.influx import InfluxStore
from stream.storage.lineprotocol import (
    INT64_MAX,
    INT64_MIN,
    MAX_TS_NS,
    MIN_TS_NS,
    check_point,
    encode_point,
    encode_points,
)
from stream.storage.settings import InfluxSettings
from stream.storage.sqlite import SqliteStore
from tests.servers import InfluxServer

ENCODED = [
    # plain float, no tags
    (Point("m", {}, {"v": 1.5}, 7), "m v=1.5 7"),
    # tags sorted by key whatever the insertion order
    (Point("m", {"b": "2", "a": "1"}, {"v": 1.0}, 0), "m,a=1,b=2 v=1.0 0"),
    # measurement: comma and space escaped, equals sign kept
    (Point("stack gas,x=y", {}, {"v": 1.0}, 0), r"stack\ gas\,x=y v=1.0 0"),
    # tag keys and values, field keys: comma, equals sign and space escaped
    (Point("m", {"k ,=": "v ,="}, {"f ,=": 1.0}, 0), r"m,k\ \,\==v\ \,\= f\ \,\==1.0 0"),
    # string field: backslash and double quote escaped, other characters verbatim
    (Point("m", {}, {"s": 'a\\b"c, =\t'}, 0), 'm s="a\\\\b\\"c, =\t" 0'),
    # integers get the i suffix, booleans are words; bool is not mistaken for int
    (Point("m", {}, {"i": -3, "t": True, "f": False}, 0), "m i=-3i,t=true,f=false 0"),
    # floats in shortest round-trip form, including exponents and negative zero
    (
        Point("m", {}, {"a": 1e16, "b": 5e-324, "c": -0.0, "d": 0.1}, 0),
        "m a=1e+16,b=5e-324,c=-0.0,d=0.1 0",
    ),
    # 64-bit limits and negative (pre-1970) timestamps
    (
        Point("m", {}, {"i": INT64_MIN, "j": INT64_MAX}, MIN_TS_NS),
        f"m i={INT64_MIN}i,j={INT64_MAX}i {MIN_TS_NS}",
    ),
    # a backslash before an ordinary character is kept as is
    (Point(r"a\b", {r"k\x": r"v\y"}, {r"f\z": 1.0}, 0), r"a\b,k\x=v\y f\z=1.0 0"),
    # non-ASCII text
    (Point("µg", {"ort": "Köln"}, {"s": "€"}, 0), 'µg,ort=Köln s="€" 0'),
]


@pytest.mark.parametrize(("point", "line"), ENCODED)
def test_encode_point(point: Point, line: str) -> None:
    assert encode_point(point) == line


REFUSED = [
    (Point("m", {}, {}, 0), "no fields"),
    (Point("m", {}, {"v": math.nan}, 0), "non-finite"),
    (Point("m", {}, {"v": math.inf}, 0), "non-finite"),
    (Point("m", {}, {"v": -math.inf}, 0), "non-finite"),
    (Point("m", {}, {"v": 2**63}, 0), "64 bits"),
    (Point("m", {}, {"v": 1.0}, MAX_TS_NS + 1), "outside"),
    (Point("", {}, {"v": 1.0}, 0), "empty"),
    (Point("m", {"": "x"}, {"v": 1.0}, 0), "empty"),
    (Point("m", {"k": ""}, {"v": 1.0}, 0), "empty"),  # InfluxDB would drop the tag
    (Point("m", {}, {"": 1.0}, 0), "empty"),
    (Point("m", {"k": "a\nb"}, {"v": 1.0}, 0), "unsupported character"),  # ends the line
    (Point("m", {}, {"s": "a\nb"}, 0), "unsupported character"),
    (Point("m", {}, {"s": "\ud800"}, 0), "unsupported character"),  # not encodable as UTF-8
    (Point("m", {"k": "a\x00"}, {"v": 1.0}, 0), "unsupported character"),  # ends InfluxQL
    (Point("m", {"k\r": "a"}, {"v": 1.0}, 0), "unsupported character"),  # a newline to InfluxQL
    (Point("m", {}, {"\tv": 1.0}, 0), "unsupported character"),  # skipped as whitespace
    (Point("m", {"k": "v\\"}, {"v": 1.0}, 0), "backslash"),  # trailing backslash
    (Point("m", {"k": "a\\,b"}, {"v": 1.0}, 0), "backslash"),  # before an escaped comma
    (Point("m", {"k": "a\\\\b"}, {"v": 1.0}, 0), "backslash"),  # versions unescape differently
    (Point("m\\", {}, {"v": 1.0}, 0), "backslash"),
    (Point("m", {}, {"f\\ x": 1.0}, 0), "backslash"),
    (Point("#m", {}, {"v": 1.0}, 0), "comment"),
    (Point("m", {"time": "x"}, {"v": 1.0}, 0), "reserved"),
    (Point("m", {}, {"time": 1.0}, 0), "reserved"),
    (Point("m", {"k": "x"}, {"k": 1.0}, 0), "both as tag and as field"),
    (Point("m", {}, {"v": None}, 0), "unsupported type"),  # type: ignore[dict-item]
]


@pytest.mark.parametrize(("point", "reason"), REFUSED)
def test_unstorable_points_raise(point: Point, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        check_point(point)
    with pytest.raises(ValueError, match=reason):
        encode_point(point)


def test_encode_points_joins_lines_and_names_the_bad_point() -> None:
    good = Point("m", {}, {"v": 1.0}, 1)
    assert encode_points([good, good]) == b"m v=1.0 1\nm v=1.0 1\n"
    assert encode_points([]) == b""
    with pytest.raises(ValueError, match=r"point #1: .*non-finite"):
        encode_points([good, Point("m", {}, {"v": math.nan}, 2)])


def test_a_shared_tags_mapping_gives_each_measurement_its_own_series() -> None:
    # Series prefixes are cached by the identity of the tags mapping (producers share one).
    tags = {"sensor": "nox", "plant": "p"}
    assert (
        encode_point(Point("readings", tags, {"v": 1.0}, 1))
        == "readings,plant=p,sensor=nox v=1.0 1"
    )
    assert encode_point(Point("scores", tags, {"v": 2.0}, 2)) == "scores,plant=p,sensor=nox v=2.0 2"
    assert (
        encode_point(Point("readings", tags, {"v": 3.0}, 3))
        == "readings,plant=p,sensor=nox v=3.0 3"
    )
    # An equal mapping that is another object gives the same series.
    other = dict(tags)
    assert (
        encode_point(Point("scores", other, {"v": 4.0}, 4)) == "scores,plant=p,sensor=nox v=4.0 4"
    )


# -- round trip through real stores --------------------------------------------------------------

_PLAIN = st.characters(exclude_categories=("Cs", "Cc"), exclude_characters="\\")
_AFTER_BACKSLASH = st.characters(exclude_categories=("Cs", "Cc"), exclude_characters='\\,= "')
# Names and tag values: anything line protocol can carry, backslashes included where unambiguous.
NAMES = (
    st.lists(st.one_of(_PLAIN, _AFTER_BACKSLASH.map(lambda c: "\\" + c)), min_size=1, max_size=12)
    .map("".join)
    .filter(lambda s: s != "time")
)
VALUES: st.SearchStrategy[FieldValue] = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(INT64_MIN, INT64_MAX),
    st.booleans(),
    st.text(st.characters(codec="utf-8", exclude_characters="\n"), max_size=30),
)


@pytest.fixture(params=["influxdb", "sqlite"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """Both stores: whatever line protocol accepts, each must store faithfully."""
    store: Store
    if request.param == "influxdb":
        server: InfluxServer = request.getfixturevalue("influx_server")
        db: str = request.getfixturevalue("influx_db")
        store = InfluxStore(InfluxSettings.model_validate({"url": server.url, "database": db}))
    else:
        store = SqliteStore(tmp_path / "s.db")
    await store.start()
    try:
        yield store
    finally:
        await store.close()


def same_value(read: FieldValue, written: FieldValue) -> bool:
    """Equal and of the same type; -0.0 may come back as 0.0 (JSON has no negative zero int)."""
    return type(read) is type(written) and read == written


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    measurement=NAMES,
    tags=st.dictionaries(NAMES, NAMES, max_size=3),
    fields=st.dictionaries(NAMES, VALUES, min_size=1, max_size=4),
)
async def test_round_trip_through_the_stores(
    backend: Store, measurement: str, tags: dict[str, str], fields: dict[str, FieldValue]
) -> None:
    fields = {k: v for k, v in fields.items() if k not in tags} or {"value": 1.0}
    # A fresh measurement per example: field types are fixed per measurement in InfluxDB.
    point = Point(f"m{uuid.uuid4().hex[:8]}{measurement}", tags, fields, time.time_ns())
    await backend.write([point])

    # Reading back by every tag also proves the query side escapes names and literals.
    (last,) = await backend.last(point.measurement, where=tags)

    assert last.tags == tags
    assert last.ts_ns == point.ts_ns
    assert last.fields.keys() == fields.keys()
    for key, value in fields.items():
        assert same_value(last.fields[key], value), (key, last.fields[key], value)


ANY_TEXT = st.text(max_size=6)
ANY_VALUE = st.one_of(st.floats(), st.integers(-(2**70), 2**70), st.booleans(), ANY_TEXT, st.none())


@settings(max_examples=500, deadline=None)
@given(
    measurement=ANY_TEXT,
    tags=st.dictionaries(ANY_TEXT, ANY_TEXT, max_size=3),
    fields=st.dictionaries(ANY_TEXT, ANY_VALUE, max_size=3),
    ts=st.integers(-(2**64), 2**64),
)
def test_encoding_refuses_exactly_what_the_check_refuses(
    measurement: str, tags: dict[str, str], fields: dict[str, FieldValue], ts: int
) -> None:
    """The encoder's fast path (cached series, one pass over the fields) and the plain check
    agree on every point, repeated points included (the second time runs from the caches)."""
    point = Point(measurement, tags, fields, ts)
    for _ in range(2):
        try:
            check_point(point)
        except ValueError:
            with pytest.raises(ValueError):
                encode_point(point)
        else:
            assert encode_point(point).endswith(f" {ts}")
