"""A :class:`~stream.storage.base.Store` that passes everything to another store: the base of
wrappers that change one aspect (e.g. :class:`stream.writer.ReadAfterWrite` makes reads wait
for the batch being written)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from stream.storage.base import LastValue, Point, SeriesQuery, SeriesRow, Store


class StoreWrapper:
    """Every method of :class:`~stream.storage.base.Store`, passed to ``inner``."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner

    @property
    def name(self) -> str:
        return self.inner.name

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    async def ping(self) -> bool:
        return await self.inner.ping()

    async def write(self, points: Sequence[Point]) -> None:
        await self.inner.write(points)

    async def series(self, query: SeriesQuery) -> list[SeriesRow]:
        return await self.inner.series(query)

    async def last(
        self, measurement: str, where: Mapping[str, str] | None = None
    ) -> list[LastValue]:
        return await self.inner.last(measurement, where)

    async def scan(
        self, measurement: str, start_ns: int, end_ns: int, where: Mapping[str, str] | None = None
    ) -> list[LastValue]:
        return await self.inner.scan(measurement, start_ns, end_ns, where)

    async def count(
        self,
        measurement: str,
        field: str,
        start_ns: int,
        end_ns: int,
        where: Mapping[str, str] | None = None,
    ) -> int:
        return await self.inner.count(measurement, field, start_ns, end_ns, where)
