"""The real gas-turbine files for the PEMS tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.pems.evaluate import gas_turbine_dir


@pytest.fixture(scope="session")
def gas_turbine() -> Path:
    """The directory of gt_2011.csv ... gt_2013.csv (shared/data/gas_turbine)."""
    path = gas_turbine_dir()
    assert (path / "gt_2011.csv").is_file(), (
        f"gas-turbine data not found in {path}; set STACKWATCH_GAS_TURBINE_DIR"
    )
    return path
