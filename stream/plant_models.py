"""Per-stack settings of the online models (the ``detection`` and ``pems`` sections of a stack
in the plant configuration). Validated with the rest of the file at start-up.

>>> DetectionConfig().warmup_s
900.0
>>> PemsConfig(target="nox", features=["load", "o2"]).coverage
0.9
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

_Id = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DetectionConfig(_Strict):
    """Online anomaly and sensor-fault detection of one stack (``stream.detect``)."""

    enabled: bool = True
    warmup_s: float = Field(
        900.0,
        gt=0,
        description="Time of readings the statistical scores learn before they can flag "
        "anything (the fault rules work from the start).",
    )
    threshold: float = Field(
        1.0 - 1e-5,
        gt=0,
        le=1,
        description="Anomaly likelihood at or above which a reading is anomalous.",
    )
    exclude: list[_Id] = Field(
        default_factory=list, description="Sensors of the stack not to watch."
    )
    max_missing: float = Field(
        5.0, ge=1, description="Expected intervals without data that count as a dropout."
    )


class PemsConfig(_Strict):
    """A PEMS soft sensor of one stack: predicts ``target`` from ``features`` (sensor ids)."""

    target: _Id = Field(description="Sensor id of the analyser the model predicts.")
    features: list[_Id] = Field(min_length=1, description="Sensor ids of process parameters.")
    coverage: float = Field(0.9, gt=0, lt=1, description="Target coverage of the intervals.")
    model: Path | None = Field(
        None,
        description="A model fitted with `stackwatch pems fit` (relative to the working "
        "directory); without it the model is fitted on the first `training_rows` rows.",
    )
    training_rows: int = Field(
        3600, ge=200, description="Complete rows collected before a live fit."
    )
    learn: bool = Field(True, description="Update the model on every measured value.")
    algorithm: str = Field("poly2-sgd", description="See `stackwatch pems fit --help`.")

    @model_validator(mode="after")
    def _target_not_feature(self) -> Self:
        if self.target in self.features:
            raise ValueError(f"pems: the target {self.target!r} cannot also be a feature")
        if len(set(self.features)) != len(self.features):
            raise ValueError("pems: duplicate features")
        return self
