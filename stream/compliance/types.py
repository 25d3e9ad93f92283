"""Value types shared by the compliance modules (a leaf: imports nothing of ours but model)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum


class Regime(StrEnum):
    """Compliance regime of a stack (IED 2010/75/EU)."""

    LCP = "lcp"  # large combustion plant, Annex V
    WI = "wi"  # waste incineration / co-incineration, Annex VI


class OperatingMode(IntEnum):
    """Plant operating mode, sent as the numeric value of a ``mode`` sensor.

    Only NORMAL operation enters compliance averages (IED Annex V Part 4: start-up and
    shut-down periods are excluded); the other modes are counted separately.
    """

    NORMAL = 0
    STARTUP = 1
    SHUTDOWN = 2
    ABATEMENT_FAILURE = 3


class StaState(StrEnum):
    """Why a short-term average is or is not usable."""

    VALID = "valid"  # enough valid data in normal operation
    INVALID = "invalid"  # plant in normal operation but too little valid data (AMS fault,
    #                      maintenance, calibration, data loss): counts for invalid-day rules
    EXCLUDED = "excluded"  # plant not in normal operation for most of the period


@dataclass(frozen=True, slots=True)
class StaCounts:
    """Field-level data counts within one short-term period."""

    valid: int = 0  # status valid and plant in normal operation
    maintenance: int = 0
    malfunction: int = 0
    calibration: int = 0
    other_mode: int = 0  # readings while the plant was not in normal operation

    @property
    def total(self) -> int:
        return self.valid + self.maintenance + self.malfunction + self.calibration + self.other_mode
