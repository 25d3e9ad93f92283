"""The on-disk spool is a durable, bounded FIFO: batches come back in append order with their
field types, survive reopening, and a batch beyond the bound or the disk is refused whole."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from stream.model import NS_PER_S
from stream.spool import Spool, SpoolError, SpoolFullError
from stream.storage.base import Point


def point(i: int, **fields: float | int | str | bool) -> Point:
    return Point("readings", {"sensor": "nox"}, fields or {"value": float(i)}, i * NS_PER_S)


def test_batches_come_back_oldest_first_with_their_field_types(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db", max_bytes=1 << 20)
    typed = point(0, value=5.0, count=5, ok=True, note='say "hi"')
    ids = [spool.append([typed]), spool.append([point(1), point(2)]), spool.append([point(3)])]
    assert ids == sorted(ids)
    assert spool.count == 3
    seen = []
    while (batch := spool.peek()) is not None:
        seen.append(batch.points)
        spool.delete(batch.id)
    assert seen == [(typed,), (point(1), point(2)), (point(3),)]
    (stored,) = seen[0]
    assert [type(v) for v in stored.fields.values()] == [float, int, bool, str]
    assert (spool.count, spool.size_bytes, spool.oldest_age_s()) == (0, 0, 0.0)
    # Ids keep growing after the spool ran empty, so order holds across the whole life.
    assert spool.append([point(4)]) > ids[-1]
    spool.close()


def test_a_reopened_spool_has_the_same_batches_size_and_age(tmp_path: Path) -> None:
    now = [100 * NS_PER_S]
    spool = Spool(tmp_path / "spool.db", max_bytes=1 << 20, now_ns=lambda: now[0])
    spool.append([point(1)])
    now[0] += 5 * NS_PER_S
    spool.append([point(2)])
    size = spool.size_bytes
    spool.close()

    now[0] += 10 * NS_PER_S
    again = Spool(tmp_path / "spool.db", max_bytes=1 << 20, now_ns=lambda: now[0])
    assert (again.count, again.size_bytes, again.oldest_age_s()) == (2, size, 15.0)
    first = again.peek()
    assert first is not None and first.points == (point(1),)
    again.delete(first.id)
    assert again.oldest_age_s() == 10.0  # now the second batch is the oldest
    again.delete(first.id)  # deleting twice is harmless
    assert again.count == 1
    again.close()


def test_a_batch_beyond_the_bound_is_refused_whole(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db", max_bytes=300)
    spool.append([point(1)])
    size = spool.size_bytes
    with pytest.raises(SpoolFullError, match="exceed the bound of 300 bytes"):
        spool.append([point(i) for i in range(20)])
    assert (spool.count, spool.size_bytes) == (1, size)
    first = spool.peek()
    assert first is not None
    spool.delete(first.id)
    spool.append([point(i) for i in range(5)])  # room again
    assert spool.count == 1
    spool.close()


def test_invalid_bound_is_refused_with_a_reason(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_bytes must be positive"):
        Spool(tmp_path / "spool.db", max_bytes=0)


@contextlib.contextmanager
def tiny_disk(path: Path, size: str) -> Iterator[Path]:
    """A real, small tmpfs file system (needs root, as in the CI container)."""
    path.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount tmpfs: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def test_a_full_disk_is_reported_as_spool_full_and_loses_nothing(tmp_path: Path) -> None:
    with tiny_disk(tmp_path / "disk", "256k") as disk:
        spool = Spool(disk / "spool.db", max_bytes=1 << 30)
        batch = [point(i, value=float(i), note="x" * 200) for i in range(40)]
        appended = 0
        with pytest.raises(SpoolFullError, match="disk full"):
            for _ in range(1000):
                spool.append(batch)
                appended += 1
        assert appended > 0
        assert spool.count == appended
        spool.close()
        # What was committed before the disk filled is all there, and nothing else.
        again = Spool(disk / "spool.db", max_bytes=1 << 30)
        assert again.count == appended
        first = again.peek()
        assert first is not None and first.points == tuple(batch)
        again.close()


def test_a_file_that_is_no_spool_is_refused_with_a_reason(tmp_path: Path) -> None:
    (tmp_path / "spool.db").write_text("not a database, but some notes\n" * 100)
    with pytest.raises(SpoolError, match=r"cannot open the spool .*spool\.db"):
        Spool(tmp_path / "spool.db", max_bytes=1 << 20)
