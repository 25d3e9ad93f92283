"""Live PEMS on stored readings: a self-fitted soft sensor checks the analyser, substitutes it
while it is silent (flagged, in its own measurement) and survives a restart."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import yaml

from simulators.plant import PlantSimulator
from stream.model import NS_PER_S, Reading
from stream.pems.live import PEMS, LivePems
from stream.plant import PlantConfig
from stream.storage.base import Point

DEMO = Path(__file__).parents[2] / "simulators" / "demo_plant.yaml"
START = int(datetime(2026, 3, 2, 6, tzinfo=UTC).timestamp()) * NS_PER_S
TRAINING = 600


def config() -> PlantConfig:
    raw = yaml.safe_load(DEMO.read_text())
    stacks = raw["plants"]["demo"]["stacks"]
    del stacks["boiler1"]
    for pems in stacks["gt1"]["pems"]:
        pems["training_rows"] = TRAINING
    return PlantConfig.model_validate(raw)


def simulate(cfg: PlantConfig, start_s: int, end_s: int) -> list[Reading]:
    sim = PlantSimulator(cfg, seed=9, start_ns=START)
    return [
        r
        for r in sim.stream(until_ns=START + end_s * NS_PER_S)
        if r.ts_ns >= START + start_s * NS_PER_S
    ]


async def feed(live: LivePems, readings: list[Reading], batch: int = 60) -> list[Point]:
    out: list[Point] = []
    for i in range(0, len(readings), batch):
        out += await live.add(readings[i : i + batch])
    return out


async def test_it_fits_itself_then_checks_and_learns() -> None:
    cfg = config()
    live = LivePems(cfg)
    assert live.model_versions() == {("demo", "gt1", "nox"): None, ("demo", "gt1", "co"): None}
    assert await feed(live, simulate(cfg, 0, TRAINING)) == []  # collecting training rows
    await live.wait_fits()
    points = await feed(live, simulate(cfg, TRAINING, TRAINING + 1200))
    nox = [p for p in points if p.tags["sensor"] == "nox"]
    assert len(nox) == 1200
    assert all(p.measurement == PEMS and p.tags["pollutant"] == "nox" for p in nox)
    for p in nox:
        assert float(p.fields["lower"]) <= float(p.fields["prediction"]) <= float(p.fields["upper"])
        assert p.fields["substitute"] is False
        inside = float(p.fields["lower"]) <= float(p.fields["measured"]) <= float(p.fields["upper"])
        assert p.fields["outside"] is (not inside)
    versions = [str(p.fields["model_version"]) for p in nox]
    digest = versions[0].rsplit("-", 1)[0]
    assert [int(v.rsplit("-", 1)[1]) for v in versions] == list(range(1200))  # learns each row
    assert all(v.startswith(digest) for v in versions)
    outside = sum(bool(p.fields["outside"]) for p in nox) / len(nox)
    assert outside < 0.2  # 90 % intervals: about 10 % outside


async def test_a_silent_analyser_is_substituted_and_flagged() -> None:
    cfg = config()
    live = LivePems(cfg)
    await feed(live, simulate(cfg, 0, TRAINING))
    await live.wait_fits()
    gap = (START + (TRAINING + 100) * NS_PER_S, START + (TRAINING + 200) * NS_PER_S)
    readings = [
        r
        for r in simulate(cfg, TRAINING, TRAINING + 300)
        if not (r.sensor == "nox" and gap[0] <= r.ts_ns < gap[1])
    ]
    nox = [p for p in await feed(live, readings) if p.tags["sensor"] == "nox"]
    substitutes = [p for p in nox if p.fields["substitute"]]
    # The first second of the gap is the analyser between two readings; then substitutes.
    assert [p.ts_ns for p in substitutes] == list(range(gap[0] + NS_PER_S, gap[1], NS_PER_S))
    assert all("measured" not in p.fields and "outside" not in p.fields for p in substitutes)
    assert all(p.measurement == PEMS for p in nox)


async def test_a_restart_keeps_the_fitted_model(tmp_path: Path) -> None:
    cfg = config()
    state = tmp_path / "pems.state"
    first = LivePems(cfg, state_path=state)
    await first.start()
    await feed(first, simulate(cfg, 0, TRAINING))
    await first.wait_fits()
    await feed(first, simulate(cfg, TRAINING, TRAINING + 60))
    first.close()
    versions = first.model_versions()
    assert all(v is not None and v.endswith("-60") for v in versions.values())

    second = LivePems(cfg, state_path=state)
    await second.start()
    assert second.model_versions() == versions
    points = await feed(second, simulate(cfg, TRAINING + 60, TRAINING + 61))
    assert {str(p.fields["model_version"]) for p in points} == set(versions.values())
