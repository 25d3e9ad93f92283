"""The plant configuration as the service runs it: plants, stacks, sensors and limits."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status

from api.deps import ConfigDep
from api.schemas import ErrorOut, LimitOut, PlantOut, SensorOut, StackOut
from stream.plant import PlantInfo

router = APIRouter(prefix="/plants", tags=["plants"])

PlantId = Annotated[
    str, Path(description="The plant's id in the configuration.", examples=["demo"])
]


def plant_out(plant_id: str, plant: PlantInfo) -> PlantOut:
    """The public view of one configured plant (file order kept)."""
    return PlantOut(
        id=plant_id,
        name=plant.name,
        timezone=plant.timezone,
        stacks=[
            StackOut(
                id=stack_id,
                name=stack.name,
                reference_o2=stack.reference_o2,
                sensors=[
                    SensorOut(
                        id=sensor_id,
                        quantity=s.quantity.value,
                        unit=s.unit,
                        valid_range=s.valid_range,
                        interval_s=s.interval_s,
                        description=s.description,
                    )
                    for sensor_id, s in stack.sensors.items()
                ],
                limits=[
                    LimitOut(
                        quantity=q.value,
                        unit=lim.unit,
                        half_hour=lim.half_hour,
                        hourly=lim.hourly,
                        daily=lim.daily,
                        monthly=lim.monthly,
                        yearly=lim.yearly,
                    )
                    for q, lim in stack.limits.items()
                ],
            )
            for stack_id, stack in plant.stacks.items()
        ],
    )


@router.get("", summary="Every configured plant")
async def list_plants(config: ConfigDep) -> list[PlantOut]:
    return [plant_out(pid, p) for pid, p in config.plants.items()]


@router.get(
    "/{plant}",
    summary="One configured plant",
    responses={404: {"model": ErrorOut, "description": "The plant is not configured."}},
)
async def get_plant(plant: PlantId, config: ConfigDep) -> PlantOut:
    info = config.plants.get(plant)
    if info is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"plant {plant!r} is not configured")
    return plant_out(plant, info)
