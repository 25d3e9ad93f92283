"""``GET /config`` (admin): the configuration the service runs with, without secrets.

The plant configuration exactly as loaded (defaults filled in), who may use the API (key names
and roles: never tokens or their digests) and the names of the alert receivers (not their
addresses or credentials). For checking a deployment, not for editing it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ContextDep
from api.settings import Role
from stream.plant import PlantInfo

router = APIRouter(prefix="/config", tags=["config"])


_EXAMPLE_PLANT = PlantInfo.model_validate(
    {
        "name": "Demo plant",
        "timezone": "Europe/Vienna",
        "stacks": {
            "boiler1": {
                "name": "Boiler 1",
                "reference_o2": 6,
                "sensors": {
                    "nox": {"quantity": "nox", "unit": "mg/Nm3", "valid_range": [0, 2000]},
                    "o2": {"quantity": "o2", "unit": "%", "valid_range": [0, 25]},
                },
                "limits": {"nox": {"half_hour": 400, "daily": 200}},
            }
        },
    }
)
_EXAMPLE: dict[str, Any] = {
    "demo": False,
    "plants": {"demo": _EXAMPLE_PLANT.model_dump(mode="json")},  # defaults filled in, as served
    "api_keys": [{"name": "grafana", "role": "operator"}, {"name": "j.martin", "role": "officer"}],
    "alert_receivers": ["officers"],
}


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str = Field(description="The key's holder, recorded as the acting user.")
    role: Role


class ConfigOut(BaseModel):
    """The running configuration (admin only)."""

    model_config = ConfigDict(frozen=True, json_schema_extra={"examples": [_EXAMPLE]})

    demo: bool = Field(description="Demo mode: the API is open and the keys are not used.")
    plants: dict[str, PlantInfo] = Field(description="The plant configuration as loaded.")
    api_keys: list[ApiKeyOut] = Field(
        description="Every key the API accepts (`STACKWATCH_API_TOKEN` is the key `admin`)."
    )
    alert_receivers: list[str] | None = Field(
        description="Names of the alert receivers (null: alerting is not running)."
    )


@router.get("", summary="The running configuration (plants, API key names, alert receivers)")
async def running_config(ctx: ContextDep) -> ConfigOut:
    runtime = ctx.alerts
    return ConfigOut(
        demo=ctx.demo,
        plants=dict(ctx.config.plants),
        api_keys=[ApiKeyOut(name=k.name, role=k.role) for k in ctx.settings.api_keys()],
        alert_receivers=(
            None if runtime is None else [r.name for r in runtime.config.receivers.receivers]
        ),
    )
