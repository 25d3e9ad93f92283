"""One contract suite over every Store backend: InfluxDB (real server) and SQLite (real file).

Each test writes to its own series or database, so tests and Hypothesis examples never see each
other's data. Aggregates are checked against a plain Python batch reference.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
import statistics
import sys
import textwrap
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.model import NS_PER_S, Reading, Status
from stream.schema import READINGS, reading_from_last, reading_to_point
from stream.storage.base import (
    Aggregate,
    FieldValue,
    LastValue,
    Point,
    SeriesQuery,
    SeriesRow,
    Store,
    StoreError,
)
from stream.storage.influx import InfluxStore
from stream.storage.settings import InfluxSettings
from stream.storage.sqlite import SqliteStore
from stream.writer import ReadAfterWrite

BASE = 1_700_000_000 * NS_PER_S  # a fixed instant in 2023, for tests that do not need "now"
HOUR = 3600 * NS_PER_S


async def _nothing_in_flight() -> None:
    return None


@pytest.fixture(params=["influxdb", "sqlite", "sqlite-read-after-write"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    backend: Store
    if request.param == "influxdb":
        server = request.getfixturevalue("influx_server")
        db = request.getfixturevalue("influx_db")
        backend = InfluxStore(InfluxSettings.model_validate({"url": server.url, "database": db}))
    elif request.param == "sqlite":
        backend = SqliteStore(tmp_path / "s.db")
    else:  # the wrapper the writer's stages read through passes the whole contract on
        backend = ReadAfterWrite(SqliteStore(tmp_path / "s.db"), _nothing_in_flight)
    assert isinstance(backend, Store)
    await backend.start()
    try:
        yield backend
    finally:
        await backend.close()


def pt(ts: int, value: float, m: str = "m", **tags: str) -> Point:
    return Point(m, tags, {"v": value}, ts)


def q(start: int, end: int, m: str = "m", **kw: object) -> SeriesQuery:
    return SeriesQuery(m, "v", start, end, **kw)  # type: ignore[arg-type]


# -- raw series ------------------------------------------------------------------------------


async def test_raw_series_returns_exact_values_in_time_order(store: Store) -> None:
    values = [0.1, -1e-300, 123456.789, 1e16, 2.5, 7.0]
    points = [pt(BASE + i * NS_PER_S + 17, v, sensor="a") for i, v in enumerate(values)]
    await store.write(list(reversed(points)))  # written newest first

    rows = await store.series(q(BASE, BASE + HOUR))

    assert rows == [SeriesRow(p.ts_ns, float(p.fields["v"])) for p in points]


async def test_time_range_is_half_open(store: Store) -> None:
    await store.write([pt(BASE + i * NS_PER_S, float(i)) for i in range(4)])

    rows = await store.series(q(BASE + NS_PER_S, BASE + 3 * NS_PER_S))

    assert [r.value for r in rows] == [1.0, 2.0]  # start included, end excluded


async def test_tag_filter_selects_matching_series_only(store: Store) -> None:
    await store.write(
        [
            pt(BASE + 1, 1.0, plant="p", sensor="a"),
            pt(BASE + 2, 2.0, plant="p", sensor="b"),
            pt(BASE + 3, 3.0, plant="q", sensor="a"),
        ]
    )
    cases: list[tuple[dict[str, str], list[float]]] = [
        ({}, [1.0, 2.0, 3.0]),  # no filter: all series merged in time order
        ({"sensor": "a"}, [1.0, 3.0]),  # one tag
        ({"sensor": "a", "plant": "q"}, [3.0]),  # every tag must match
        ({"sensor": "zzz"}, []),  # unknown value
        ({"stack": "a"}, []),  # unknown tag key
        ({"sensor": "a' OR sensor='b"}, []),  # a quote is data, not query syntax
    ]
    for where, expected in cases:
        rows = await store.series(q(BASE, BASE + HOUR, where=where))
        assert [r.value for r in rows] == expected, where


async def test_limit_keeps_the_earliest_rows(store: Store) -> None:
    await store.write([pt(BASE + i * NS_PER_S, float(i)) for i in range(10)])

    raw = await store.series(q(BASE, BASE + HOUR, limit=3))
    windows = await store.series(
        q(BASE, BASE + HOUR, every_s=4, limit=2, aggregate=Aggregate.COUNT)
    )

    assert [r.value for r in raw] == [0.0, 1.0, 2.0]
    assert len(windows) == 2
    assert windows[0].ts_ns < windows[1].ts_ns
    assert windows[0].ts_ns <= BASE < windows[1].ts_ns


def test_invalid_query_arguments_raise() -> None:
    # Backends disagree on LIMIT 0 and zero-width windows: the query refuses them.
    for bad in ({"every_s": 0}, {"limit": 0}, {"every_s": True}):
        with pytest.raises(ValueError, match="positive"):
            q(BASE, BASE + HOUR, **bad)


async def test_empty_results(store: Store) -> None:
    assert await store.series(q(BASE, BASE + HOUR, m="nothing")) == []
    assert await store.series(q(BASE, BASE + HOUR, m="nothing", every_s=60)) == []
    assert await store.last("nothing") == []
    assert await store.count("nothing", "v", BASE, BASE + HOUR) == 0


# -- aggregation ------------------------------------------------------------------------------

REFERENCE: dict[Aggregate, Callable[[list[float]], float]] = {
    Aggregate.MEAN: statistics.fmean,
    Aggregate.MIN: min,
    Aggregate.MAX: max,
    Aggregate.SUM: math.fsum,
    Aggregate.COUNT: len,
    Aggregate.FIRST: lambda vs: vs[0],
    Aggregate.LAST: lambda vs: vs[-1],
}


def reference(
    points: Sequence[tuple[int, float]], start: int, end: int, every_ns: int, agg: Aggregate
) -> list[tuple[int, float]]:
    """Batch InfluxQL semantics: epoch-aligned windows labelled by start, empty ones omitted."""
    windows: dict[int, list[float]] = defaultdict(list)
    for ts, v in sorted(points):
        if start <= ts < end:
            windows[ts - ts % every_ns].append(v)
    return [(w, float(REFERENCE[agg](vs))) for w, vs in sorted(windows.items())]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    points=st.lists(
        st.tuples(
            st.integers(0, 120 * NS_PER_S),
            st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
        ),
        min_size=1,
        max_size=30,
        unique_by=lambda p: p[0],
    ),
    every_s=st.integers(1, 50),
    bounds=st.tuples(st.integers(-10, 130), st.integers(-10, 130)).map(sorted),
)
async def test_aggregates_match_batch_reference(
    store: Store, points: list[tuple[int, float]], every_s: int, bounds: list[int]
) -> None:
    sensor = uuid.uuid4().hex  # a fresh series per example
    absolute = [(BASE + off, v) for off, v in points]
    await store.write([pt(ts, v, sensor=sensor) for ts, v in absolute])
    start, end = BASE + bounds[0] * NS_PER_S, BASE + bounds[1] * NS_PER_S

    for agg in Aggregate:
        rows = await store.series(
            q(start, end, where={"sensor": sensor}, every_s=every_s, aggregate=agg)
        )
        expected = reference(absolute, start, end, every_s * NS_PER_S, agg)
        assert [r.ts_ns for r in rows] == [w for w, _ in expected], agg
        for row, (_, value) in zip(rows, expected, strict=True):
            assert math.isclose(row.value, value, rel_tol=1e-9, abs_tol=1e-6), (agg, row, value)


async def test_aggregation_merges_matching_series(store: Store) -> None:
    await store.write(
        [
            pt(BASE, 1.0, sensor="a"),
            pt(BASE + 1, 3.0, sensor="b"),
            pt(BASE + 2, 100.0, sensor="c", plant="other"),
        ]
    )

    rows = await store.series(q(BASE, BASE + HOUR, every_s=60, aggregate=Aggregate.MEAN, where={}))
    filtered = await store.series(
        q(BASE, BASE + HOUR, every_s=60, aggregate=Aggregate.SUM, where={"sensor": "b"})
    )

    window = BASE - BASE % (60 * NS_PER_S)
    assert rows == [SeriesRow(window, pytest.approx(104.0 / 3))]  # type: ignore[arg-type]
    assert filtered == [SeriesRow(window, 3.0)]


# -- overwrite, count, last ---------------------------------------------------------------------


async def test_rewriting_points_is_idempotent_and_merges_fields(store: Store) -> None:
    points = [Point("m", {"sensor": "a"}, {"v": float(i), "w": 1.0}, BASE + i) for i in range(5)]
    await store.write(points)
    await store.write(points)  # a redelivered batch
    assert await store.count("m", "v", BASE, BASE + HOUR) == 5

    # Same series and time: the given fields overwrite, the others are kept.
    await store.write([Point("m", {"sensor": "a"}, {"v": 42.0, "x": 7.0}, BASE + 2)])

    assert await store.count("m", "v", BASE, BASE + HOUR) == 5
    assert await store.count("m", "x", BASE, BASE + HOUR) == 1
    rows = await store.series(q(BASE, BASE + HOUR))
    assert [r.value for r in rows] == [0.0, 1.0, 42.0, 3.0, 4.0]
    ws = await store.series(SeriesQuery("m", "w", BASE + 2, BASE + 3))
    assert ws == [SeriesRow(BASE + 2, 1.0)]


async def test_count_respects_field_range_and_tags(store: Store) -> None:
    await store.write([pt(BASE + i, float(i), sensor="a" if i % 2 else "b") for i in range(10)])
    await store.write([Point("m", {"sensor": "a"}, {"other": 1.0}, BASE + 100)])

    assert await store.count("m", "v", BASE, BASE + HOUR) == 10
    assert await store.count("m", "v", BASE + 2, BASE + 5) == 3  # half-open
    assert await store.count("m", "v", BASE, BASE + HOUR, where={"sensor": "a"}) == 5
    assert await store.count("m", "other", BASE, BASE + HOUR) == 1
    assert await store.count("m", "missing", BASE, BASE + HOUR) == 0


async def test_last_returns_newest_point_per_series_sorted_by_tags(store: Store) -> None:
    now = time.time_ns()
    await store.write(
        [
            Point(
                "m",
                {"sensor": "b", "plant": "p"},
                {"v": 1.0, "status": "valid"},
                now - 3 * NS_PER_S,
            ),
            Point("m", {"sensor": "b", "plant": "p"}, {"v": 2.0}, now - 2 * NS_PER_S),
            Point(
                "m",
                {"sensor": "a", "plant": "p"},
                {"v": 5.0, "status": "calibration"},
                now - 9 * NS_PER_S,
            ),
            Point("m", {"sensor": "a"}, {"v": 6.0}, now - 9 * NS_PER_S),  # fewer tags: own series
            # Older than the look-back (one day by default): not reported.
            Point("m", {"sensor": "old", "plant": "p"}, {"v": 0.0}, now - 2 * 86_400 * NS_PER_S),
        ]
    )

    last = await store.last("m")

    assert last == [  # ordered by sorted(tags.items()): ("plant", ...) < ("sensor", ...)
        LastValue(
            {"plant": "p", "sensor": "a"}, now - 9 * NS_PER_S, {"v": 5.0, "status": "calibration"}
        ),
        LastValue({"plant": "p", "sensor": "b"}, now - 2 * NS_PER_S, {"v": 2.0}),
        LastValue({"sensor": "a"}, now - 9 * NS_PER_S, {"v": 6.0}),
    ]
    assert all(type(lv.fields["v"]) is float for lv in last)  # 5.0 stays a float
    assert [lv.tags for lv in await store.last("m", {"sensor": "b"})] == [
        {"plant": "p", "sensor": "b"}
    ]
    assert await store.last("m", {"sensor": "old"}) == []


async def test_string_bool_and_int_fields_are_stored_with_their_types(store: Store) -> None:
    now = time.time_ns()
    fields: dict[str, FieldValue] = {
        "status": "valid",
        "ok": True,
        "bad": False,
        "n": 5,
        "v": 1.5,
        "text": 'a "q" \\',
    }
    await store.write([Point("m", {"sensor": "a"}, fields, now)])

    (last,) = await store.last("m")

    assert last.fields == fields
    assert {k: type(v) for k, v in last.fields.items()} == {k: type(v) for k, v in fields.items()}
    # Series are numeric: strings and booleans are not values.
    assert await store.series(SeriesQuery("m", "status", now, now + 1)) == []
    assert await store.series(SeriesQuery("m", "ok", now, now + 1)) == []
    assert await store.series(SeriesQuery("m", "n", now, now + 1)) == [SeriesRow(now, 5.0)]


async def test_reading_round_trips_through_the_readings_schema(store: Store) -> None:
    reading = Reading(
        "demo", "boiler1", "nox-1", time.time_ns(), 87.25, "nox", "mg/Nm3", Status.MAINTENANCE
    )
    await store.write([reading_to_point(reading)])

    (last,) = await store.last(READINGS, {"plant": "demo"})

    assert reading_from_last(last) == reading


async def test_unstorable_point_refuses_the_whole_batch(store: Store) -> None:
    good = pt(BASE, 1.0)
    for bad in (pt(BASE + 1, math.nan), Point("m", {}, {}, BASE + 2)):
        with pytest.raises(StoreError) as exc:
            await store.write([good, bad])
        assert not exc.value.retryable
    assert await store.count("m", "v", BASE, BASE + HOUR) == 0


async def test_concurrent_writes_all_land(store: Store) -> None:
    batches = [
        [pt(BASE + b * 100 + i, float(i), sensor=str(b)) for i in range(50)] for b in range(8)
    ]
    await asyncio.gather(*(store.write(batch) for batch in batches))

    assert await store.count("m", "v", BASE, BASE + HOUR) == 400


# -- SQLite specifics ---------------------------------------------------------------------------


async def test_sqlite_data_survives_close_and_reopen(tmp_path: Path) -> None:
    first = SqliteStore(tmp_path / "s.db")
    await first.start()
    await first.write([pt(BASE + i, float(i), sensor="a") for i in range(3)])
    await first.close()

    second = SqliteStore(tmp_path / "s.db")
    await second.start()
    try:
        assert [r.value for r in await second.series(q(BASE, BASE + HOUR))] == [0.0, 1.0, 2.0]
        await second.write([pt(BASE + 1, 9.0, sensor="a")])  # same series id after reopen
        assert [r.value for r in await second.series(q(BASE, BASE + HOUR))] == [0.0, 9.0, 2.0]
    finally:
        await second.close()


async def test_sqlite_write_is_durable_when_the_process_is_killed(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    script = textwrap.dedent(f"""
        import asyncio, os, signal
        from pathlib import Path
        from stream.storage.base import Point
        from stream.storage.sqlite import SqliteStore

        async def main():
            store = SqliteStore(Path({str(path)!r}))
            await store.start()
            await store.write([Point("m", {{}}, {{"v": 1.5}}, {BASE})])
            os.kill(os.getpid(), signal.SIGKILL)  # no close(), no clean shutdown

        asyncio.run(main())
    """)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == -9, stderr.decode()  # killed by SIGKILL, as intended

    store = SqliteStore(path)
    await store.start()
    try:
        assert await store.series(q(BASE, BASE + 1)) == [SeriesRow(BASE, 1.5)]
    finally:
        await store.close()


async def test_sqlite_last_looks_back_from_the_injected_clock(tmp_path: Path) -> None:
    now = BASE + 10 * HOUR
    store = SqliteStore(tmp_path / "s.db", lookback_s=3600, now_ns=lambda: now)
    await store.start()
    try:
        await store.write(
            [
                pt(now - HOUR, 1.0, sensor="edge"),  # exactly at the bound: excluded
                pt(now - HOUR + 1, 2.0, sensor="in"),
                pt(now + HOUR, 3.0, sensor="future"),
            ]
        )
        assert [lv.tags["sensor"] for lv in await store.last("m")] == ["future", "in"]
    finally:
        await store.close()


async def test_sqlite_locked_database_is_retryable(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db", busy_timeout_s=0.05)
    await store.start()
    other = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        with pytest.raises(StoreError) as exc:
            await store.write([pt(BASE, 1.0)])
        assert exc.value.retryable
        assert "SQLITE_BUSY" in str(exc.value)

        other.execute("ROLLBACK")
        await store.write([pt(BASE, 1.0)])  # the same write succeeds once the lock is gone
        assert await store.count("m", "v", BASE, BASE + 1) == 1
    finally:
        other.close()
        await store.close()


async def test_sqlite_ping_reflects_lifecycle(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    assert not await store.ping()
    await store.start()
    assert await store.ping()
    await store.close()
    assert not await store.ping()


# -- scan ---------------------------------------------------------------------------------------


def typed(points: Sequence[LastValue]) -> list[tuple[int, dict[str, str], dict[str, object]]]:
    """Points with each field value paired with its type: ``5 == 5.0`` must not hide a
    float that came back as an int."""
    return [(p.ts_ns, dict(p.tags), {k: (type(v), v) for k, v in p.fields.items()}) for p in points]


def as_scanned(points: Sequence[Point]) -> list[LastValue]:
    """What scan() should return for ``points``: ordered by (time, sorted tags)."""
    ordered = sorted(points, key=lambda p: (p.ts_ns, sorted(p.tags.items())))
    return [LastValue(dict(p.tags), p.ts_ns, dict(p.fields)) for p in ordered]


async def test_scan_returns_the_points_in_the_half_open_range(store: Store) -> None:
    start, end = BASE, BASE + 10 * NS_PER_S
    inside = [
        Point("m", {"sensor": "a"}, {"v": float(i), "status": "valid"}, start + i * NS_PER_S)
        for i in range(10)
    ]
    outside = [
        Point("m", {"sensor": "a"}, {"v": -1.0, "status": "valid"}, start - 1),
        Point("m", {"sensor": "a"}, {"v": -2.0, "status": "valid"}, end),  # end is excluded
        Point("other", {"sensor": "a"}, {"v": -3.0}, start + 1),  # another measurement
    ]
    await store.write([*reversed(inside), *outside])

    scanned = await store.scan("m", start, end)

    assert typed(scanned) == typed(as_scanned(inside))
    assert typed(await store.scan("m", start + 1, end - 1)) == typed(as_scanned(inside[1:]))


async def test_scan_orders_interleaved_series_by_time_then_tags(store: Store) -> None:
    tag_sets = [
        {"sensor": "b"},
        {"sensor": "a", "z": "1"},
        {"sensor": "a"},
        {"sensor": "a", "plant": "p"},
    ]
    points = [
        Point("m", tags, {"v": float(i * 10 + j)}, BASE + (i // 2) * NS_PER_S + i % 2)
        for i in range(6)
        for j, tags in enumerate(tag_sets)
        if (i + j) % 5  # every series at BASE + 1, one missing at the other instants
    ]
    await store.write(points)

    scanned = await store.scan("m", BASE, BASE + HOUR)

    assert typed(scanned) == typed(as_scanned(points))
    # Sorted tag items; a tag set that extends another sorts after it (unlike its JSON text).
    assert [p.tags for p in scanned if p.ts_ns == BASE + 1] == [
        {"plant": "p", "sensor": "a"},
        {"sensor": "a"},
        {"sensor": "a", "z": "1"},
        {"sensor": "b"},
    ]
    assert [p.ts_ns for p in scanned] == sorted(p.ts_ns for p in points)


async def test_scan_filters_on_tags(store: Store) -> None:
    points = [
        Point("m", {"plant": "p", "sensor": "a"}, {"v": 1.0}, BASE + 1),
        Point("m", {"plant": "p", "sensor": "b"}, {"v": 2.0}, BASE + 2),
        Point("m", {"plant": "q", "sensor": "a"}, {"v": 3.0}, BASE + 3),
        Point("m", {"sensor": "a"}, {"v": 4.0}, BASE + 4),
    ]
    await store.write(points)
    cases: list[tuple[dict[str, str], list[Point]]] = [
        ({}, points),
        ({"sensor": "a"}, [points[0], points[2], points[3]]),
        ({"sensor": "a", "plant": "q"}, [points[2]]),  # every tag must match
        ({"sensor": "zzz"}, []),
        ({"stack": "a"}, []),  # unknown tag key
        ({"sensor": "a' OR sensor='b"}, []),  # a quote is data, not query syntax
    ]
    for where, expected in cases:
        scanned = await store.scan("m", BASE, BASE + HOUR, where)
        assert typed(scanned) == typed(as_scanned(expected)), where


async def test_scan_round_trips_every_field_type(store: Store) -> None:
    fields: dict[str, FieldValue] = {
        "v": 5.0,  # integral float: InfluxDB's JSON sends it as 5
        "x": 0.1,
        "n": 7,
        "status": "calibration",
        "text": 'a "q" \\',
        "ok": True,
        "bad": False,
    }
    points = [
        Point("m", {"sensor": "a"}, fields, BASE),
        Point("m", {"sensor": "a"}, {"v": 2.0, "n": -3}, BASE + 1),  # fewer fields: no nulls
        Point("m", {"sensor": "b"}, {"status": "valid", "ok": False}, BASE + 1),
    ]
    await store.write(points)
    # Rewriting a point merges its fields, as a redelivered message would.
    await store.write([Point("m", {"sensor": "a"}, {"x": 0.5}, BASE + 1)])

    scanned = await store.scan("m", BASE, BASE + HOUR)

    merged = Point("m", {"sensor": "a"}, {"v": 2.0, "n": -3, "x": 0.5}, BASE + 1)
    assert typed(scanned) == typed(as_scanned([points[0], merged, points[2]]))
    assert type(scanned[0].fields["v"]) is float
    assert type(scanned[0].fields["n"]) is int
    assert type(scanned[0].fields["ok"]) is bool


async def test_scan_of_an_empty_range_is_empty(store: Store) -> None:
    await store.write([pt(BASE + i * NS_PER_S, float(i), sensor="a") for i in range(3)])

    assert await store.scan("m", BASE, BASE) == []  # zero width
    assert await store.scan("m", BASE + HOUR, BASE) == []  # reversed
    assert await store.scan("m", BASE + HOUR, BASE + 2 * HOUR) == []  # no data there
    assert await store.scan("nothing", BASE, BASE + HOUR) == []  # unknown measurement
    assert await store.scan("m", BASE, BASE + HOUR, {"sensor": "b"}) == []


async def test_scan_of_a_long_range_returns_every_point_in_order(store: Store) -> None:
    # 20 hours spans several of InfluxStore's query windows (6 h); points sit on window
    # boundaries, just before them, and everywhere in between.
    start = BASE + 17  # not aligned to anything
    end = start + 20 * HOUR
    offsets = sorted(
        {
            *range(0, 20 * HOUR, 251 * NS_PER_S),
            *(k * 6 * HOUR + d for k in range(1, 4) for d in (-1, 0)),
        }
    )
    points = [
        Point("m", {"sensor": s}, {"v": float(i), "n": i}, start + off)
        for i, off in enumerate(offsets)
        for s in ("a", "b")
    ]
    for i in range(0, len(points), 500):
        await store.write(points[i : i + 500])
    await store.write([pt(start - 1, 0.0, sensor="a"), pt(end, 0.0, sensor="a")])

    scanned = await store.scan("m", start, end)

    assert len(scanned) == len(points)
    assert typed(scanned) == typed(as_scanned(points))
