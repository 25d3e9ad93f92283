"""The plant the collector tests publish to: one NOx analyser, ``p/s/nox``."""

from __future__ import annotations

from stream.plant import PlantConfig

ONE_NOX = PlantConfig.model_validate(
    {
        "plants": {
            "p": {
                "stacks": {
                    "s": {
                        "sensors": {
                            "nox": {"quantity": "nox", "unit": "mg/Nm3", "valid_range": [0, 2000]}
                        }
                    }
                }
            }
        }
    }
)
T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z, epoch ms
