"""Live PEMS: the soft sensors of the plant configuration (``pems`` of a stack) run on stored
readings, with the same :class:`~stream.pems.model.PemsModel` as ``stackwatch pems``.

At every time step of a stack where all features are known (each feature's last valid value
is at most three of its intervals old), each soft sensor predicts its analyser with an
interval and writes it to the ``pems`` measurement (tags ``plant``, ``stack``, ``sensor``,
``pollutant``; fields ``prediction``, ``lower``, ``upper``, ``coverage``, ``model_version``,
and either ``measured`` and ``outside`` (the analyser's valid reading lies outside the
interval), or ``substitute=true``:

* when the analyser reports a valid value, the prediction checks it (``outside``), and with
  ``learn`` the model then learns it;
* when the analyser is silent (no reading for 1.5 of its intervals) or reports a status other
  than valid, the prediction is written as a **substitute** value: a separate, flagged series
  that is never mixed into the measured ``readings`` nor into compliance averages.

A soft sensor without a fitted ``model`` file first collects ``training_rows`` complete rows
of measured values and fits itself in a worker thread (ingestion goes on meanwhile). Model
state is checkpointed with the detection state (``state_path``), so a restart neither refits
nor forgets the online updates; a checkpoint of another configuration is not used.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from stream import metrics
from stream.model import NS_PER_S, Reading, Status
from stream.pems.checkpoint import CheckpointError, load_model
from stream.pems.model import PemsModel, PemsModelError, river_version
from stream.plant import PlantConfig, StackConfig
from stream.plant_models import PemsConfig
from stream.statefile import StateFileError, load_state, save_state
from stream.storage.base import FieldValue, Point

log = structlog.get_logger(__name__)

PEMS = "pems"
FRESH_INTERVALS = 3.0
"""A feature value older than this many of its intervals is not used."""
SILENT_INTERVALS = 1.5
"""An analyser without a reading for this many intervals is substituted."""


@dataclass
class _Soft:
    """One soft sensor and what it needs between batches."""

    plant: str
    stack: str
    cfg: PemsConfig
    pollutant: str
    interval_ns: dict[str, int]
    model: PemsModel | None = None
    training_x: list[dict[str, float]] = field(default_factory=list)
    training_y: list[float] = field(default_factory=list)
    latest: dict[str, tuple[int, float]] = field(default_factory=dict)
    target_seen_ns: int | None = None
    last_ts: int | None = None


def _soft_sensor(plant: str, stack_id: str, stack: StackConfig, cfg: PemsConfig) -> _Soft:
    sensors = (cfg.target, *cfg.features)
    return _Soft(
        plant,
        stack_id,
        cfg,
        stack.sensors[cfg.target].quantity.value,
        {sid: round(stack.sensors[sid].interval_s * NS_PER_S) for sid in sensors},
    )


class LivePems:
    """Runs the configured soft sensors; see the module docstring."""

    def __init__(
        self,
        config: PlantConfig,
        *,
        state_path: Path | None = None,
        checkpoint_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._state_path = state_path
        self._checkpoint_s = checkpoint_s
        self._clock = clock
        self._last_saved = clock()
        self._fits: dict[int, asyncio.Task[PemsModel]] = {}
        self._softs = [
            _soft_sensor(plant_id, stack_id, stack, cfg)
            for plant_id, plant in config.plants.items()
            for stack_id, stack in plant.stacks.items()
            for cfg in stack.pems
        ]
        self._meta = {
            "river": river_version(),
            "models": hashlib.sha256(
                json.dumps(
                    [[s.plant, s.stack, s.cfg.model_dump(mode="json")] for s in self._softs],
                    sort_keys=True,
                ).encode()
            ).hexdigest()[:16],
        }

    @property
    def enabled(self) -> bool:
        return bool(self._softs)

    def model_versions(self) -> dict[tuple[str, str, str], str | None]:
        """Version of every soft sensor's model by (plant, stack, sensor); None until fitted."""
        return {
            (s.plant, s.stack, s.cfg.target): s.model.model_version if s.model else None
            for s in self._softs
        }

    async def start(self) -> None:
        """Restore the checkpoint, else load the configured model files."""
        if self._state_path is not None and self._softs:
            try:
                self._softs = load_state(self._state_path, "pems", self._meta)
                log.info("PEMS models restored", checkpoint=str(self._state_path))
                return
            except StateFileError as err:
                if self._state_path.exists():
                    log.warning("PEMS checkpoint not used", reason=str(err))
        for soft in self._softs:
            if soft.cfg.model is not None and soft.model is None:
                try:
                    soft.model = load_model(
                        soft.cfg.model, features=soft.cfg.features, target=soft.cfg.target
                    )
                except CheckpointError as err:
                    where = f"{soft.stack}/{soft.cfg.target}"
                    raise PemsModelError(f"pems model for {where}: {err}") from None

    async def wait_fits(self) -> None:
        """Wait for running fits and put their models to use (tests, shutdown)."""
        if self._fits:
            await asyncio.wait(list(self._fits.values()))
        self._collect_fits()

    def save(self) -> None:
        if self._state_path is not None and self._softs:
            save_state(self._state_path, "pems", self._meta, self._softs)
            self._last_saved = self._clock()

    def close(self) -> None:
        for task in self._fits.values():
            task.cancel()
        self.save()

    async def add(self, readings: Sequence[Reading]) -> list[Point]:
        """Predict for newly stored readings; return the points to store."""
        self._collect_fits()
        points: list[Point] = []
        if not self._softs:
            return points
        by_stack: dict[tuple[str, str], list[Reading]] = {}
        for r in readings:
            by_stack.setdefault((r.plant, r.stack), []).append(r)
        for i, soft in enumerate(self._softs):
            batch = by_stack.get((soft.plant, soft.stack))
            if batch:
                points += self._run(i, soft, batch)
        if self._state_path is not None and self._clock() - self._last_saved >= self._checkpoint_s:
            self.save()
        return points

    def _collect_fits(self) -> None:
        for i, task in list(self._fits.items()):
            if not task.done():
                continue
            del self._fits[i]
            soft = self._softs[i]
            try:
                soft.model = task.result()
            except (PemsModelError, ValueError) as err:
                log.error(
                    "PEMS fit failed; collecting rows again", target=soft.cfg.target, error=str(err)
                )
                continue
            soft.training_x, soft.training_y = [], []
            log.info(
                "PEMS model fitted",
                plant=soft.plant,
                stack_id=soft.stack,  # "stack" is the console renderer's stack trace
                target=soft.cfg.target,
                model_version=soft.model.model_version,
            )

    def _run(self, index: int, soft: _Soft, batch: list[Reading]) -> list[Point]:
        steps: dict[int, list[Reading]] = {}
        for r in batch:
            if r.sensor in soft.interval_ns:
                steps.setdefault(r.ts_ns, []).append(r)
        points: list[Point] = []
        for ts in sorted(steps):
            if soft.last_ts is not None and ts < soft.last_ts:
                continue  # already handled (a redelivery)
            soft.last_ts = ts
            target: float | None = None
            out_of_service = False  # the analyser reported, but not a valid value
            for r in steps[ts]:
                valid = r.status is Status.VALID and math.isfinite(r.value)
                if r.sensor == soft.cfg.target:
                    soft.target_seen_ns = ts
                    target = r.value if valid else None
                    out_of_service = not valid
                elif valid:
                    soft.latest[r.sensor] = (ts, r.value)
            x = self._features(soft, ts)
            if x is None:
                continue
            if soft.model is None:
                self._train(index, soft, x, target)
                continue
            point = self._predict(soft, ts, x, target, out_of_service)
            if point is not None:
                points.append(point)
        return points

    def _features(self, soft: _Soft, ts: int) -> dict[str, float] | None:
        x: dict[str, float] = {}
        for f in soft.cfg.features:
            last = soft.latest.get(f)
            if last is None or ts - last[0] > FRESH_INTERVALS * soft.interval_ns[f]:
                return None
            x[f] = last[1]
        return x

    def _train(self, index: int, soft: _Soft, x: dict[str, float], y: float | None) -> None:
        if y is None or index in self._fits:
            return
        soft.training_x.append(x)
        soft.training_y.append(y)
        if len(soft.training_y) >= soft.cfg.training_rows:
            model = PemsModel(
                soft.cfg.features,
                soft.cfg.target,
                algorithm=soft.cfg.algorithm,
                coverage=soft.cfg.coverage,
            )
            xs, ys = list(soft.training_x), list(soft.training_y)

            def fit() -> PemsModel:
                model.fit(xs, ys)
                return model

            self._fits[index] = asyncio.create_task(asyncio.to_thread(fit))

    def _predict(
        self,
        soft: _Soft,
        ts: int,
        x: dict[str, float],
        target: float | None,
        out_of_service: bool,
    ) -> Point | None:
        model = soft.model
        assert model is not None
        seen = soft.target_seen_ns
        silent = seen is None or ts - seen >= SILENT_INTERVALS * soft.interval_ns[soft.cfg.target]
        if target is None and not out_of_service and not silent:
            # Between two analyser readings, or the rest of a step whose analyser reading
            # came in an earlier batch: nothing to check or substitute.
            return None
        p = model.predict_one(x)
        fields: dict[str, FieldValue] = {
            "prediction": p.value,
            "lower": p.lower,
            "upper": p.upper,
            "coverage": soft.cfg.coverage,
            "model_version": p.model_version,
        }
        if target is None:
            fields["substitute"] = True
            metrics.PEMS_PREDICTIONS.labels(use="substitute").inc()
        else:
            fields["measured"] = target
            fields["outside"] = not p.lower <= target <= p.upper
            fields["substitute"] = False
            metrics.PEMS_PREDICTIONS.labels(use="check").inc()
            if soft.cfg.learn:
                model.learn_one(x, target)
        tags = {
            "plant": soft.plant,
            "stack": soft.stack,
            "sensor": soft.cfg.target,
            "pollutant": soft.pollutant,
        }
        return Point(PEMS, tags, fields, ts)
