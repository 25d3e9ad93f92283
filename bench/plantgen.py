"""A generated plant configuration of any size, and sensor readings that fit it.

The end-to-end benchmarks need a plant sized like a real one (and 100 to 10 000 sensors for
the scale runs), not the 16-sensor demo. Every stack has up to eight analysers (O2 first, so
normalisation always has its reference, then seven pollutants, four of them with ELVs), ten
stacks per plant; the last stack takes the remainder. Values are a per-sensor level plus a
little noise, so neither the stuck rule nor the rate-of-change rule fires by accident; a
deliberate jump (:data:`FAULT_VALUE`) trips the rate-of-change rule for the alert latency.

>>> plant = generate_plant(20)
>>> len(plant.sensors), len({(s.plant, s.stack) for s in plant.sensors})
(20, 3)
>>> [s.sensor for s in plant.sensors[:3]]
['o2', 'nox', 'so2']
>>> from stream.plant import PlantConfig
>>> import yaml
>>> cfg = PlantConfig.model_validate(yaml.safe_load(plant.yaml))
>>> sorted(cfg.plants["p0000"].stacks["s0002"].sensors)
['co', 'nox', 'o2', 'so2']
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

SENSORS_PER_STACK = 8
STACKS_PER_PLANT = 10
WARMUP_S = 120.0
"""Detection warm-up of the generated stacks (the default is 900 s): shorter, so the
throughput runs' warm models (:mod:`bench.warmstate`) take a few hundred steps to build."""
FAULT_VALUE = 1500.0
"""A jump to this NOx value trips the rate-of-change rule (``max_rate`` below)."""

# quantity, unit, valid range, level, noise sd, max rate (unit/s)
_QUANTITIES: tuple[tuple[str, str, tuple[float, float], float, float, float], ...] = (
    ("o2", "%", (0.0, 25.0), 8.0, 0.05, 50.0),
    ("nox", "mg/Nm3", (0.0, 2000.0), 120.0, 0.5, 500.0),
    ("so2", "mg/Nm3", (0.0, 2000.0), 40.0, 0.5, 500.0),
    ("co", "mg/Nm3", (0.0, 2000.0), 30.0, 0.5, 500.0),
    ("dust", "mg/Nm3", (0.0, 200.0), 3.0, 0.05, 50.0),
    ("toc", "mg/Nm3", (0.0, 200.0), 5.0, 0.05, 50.0),
    ("hcl", "mg/Nm3", (0.0, 200.0), 6.0, 0.05, 50.0),
    ("nh3", "mg/Nm3", (0.0, 200.0), 2.0, 0.05, 50.0),
)
UNITS = {q: unit for q, unit, *_ in _QUANTITIES}
"""The unit of each generated quantity (a sensor is named after its quantity)."""

_LIMITS: dict[str, dict[str, float]] = {
    "nox": {"daily": 200, "half_hour": 400},
    "so2": {"daily": 50, "half_hour": 200},
    "co": {"daily": 50, "half_hour": 100},
    "dust": {"daily": 10, "half_hour": 30},
}


@dataclass(frozen=True, slots=True)
class Sensor:
    """One generated sensor: where it is and what its values look like."""

    plant: str
    stack: str
    sensor: str
    level: float
    noise: float

    def topic(self, prefix: str) -> str:
        return f"{prefix}/{self.plant}/{self.stack}/{self.sensor}"


@dataclass(frozen=True, slots=True)
class GeneratedPlant:
    """The plant configuration (YAML text) and its sensors in publishing order (stack by
    stack, so one stack's time step is complete after a few consecutive messages)."""

    yaml: str
    sensors: tuple[Sensor, ...]

    def stacks(self) -> list[tuple[Sensor, ...]]:
        """The sensors grouped by stack, in order."""
        out: list[list[Sensor]] = []
        for s in self.sensors:
            if not out or (out[-1][0].plant, out[-1][0].stack) != (s.plant, s.stack):
                out.append([])
            out[-1].append(s)
        return [tuple(group) for group in out]


def generate_plant(n_sensors: int) -> GeneratedPlant:
    """A plant configuration with exactly ``n_sensors`` sensors (at least 1)."""
    if n_sensors < 1:
        raise ValueError("n_sensors must be at least 1")
    plants: dict[str, dict[str, object]] = {}
    sensors: list[Sensor] = []
    n_stacks = -(-n_sensors // SENSORS_PER_STACK)
    for k in range(n_stacks):
        plant_id, stack_id = f"p{k // STACKS_PER_PLANT:04d}", f"s{k % STACKS_PER_PLANT:04d}"
        count = min(SENSORS_PER_STACK, n_sensors - k * SENSORS_PER_STACK)
        quantities = _QUANTITIES[:count]
        stack = {
            "reference_o2": 11,
            "sensors": {
                q: {"quantity": q, "unit": unit, "valid_range": list(rng), "max_rate": rate}
                for q, unit, rng, _, _, rate in quantities
            },
            "limits": {q: _LIMITS[q] for q, *_ in quantities if q in _LIMITS},
            "detection": {"warmup_s": WARMUP_S},
        }
        plant = plants.setdefault(plant_id, {"timezone": "UTC", "stacks": {}})
        plant["stacks"][stack_id] = stack  # type: ignore[index]
        sensors += [Sensor(plant_id, stack_id, q, lvl, sd) for q, _, _, lvl, sd, _ in quantities]
    text = yaml.safe_dump({"plants": plants}, sort_keys=False)
    return GeneratedPlant(text, tuple(sensors))


def alerts_yaml(mqtt_url: str, prefix: str) -> str:
    """Alert configuration of the latency run: sensor faults fire at once (``for_s: 0``) and
    go, one group per sensor, to ``<prefix>/alerts/<plant>/<stack>/<sensor>/<status>``;
    everything else goes to a receiver without channels."""
    template = f"{prefix}/alerts/{{plant}}/{{stack}}/{{sensor}}/{{status}}"
    return f"""
rules:
  sensor_fault: {{for_s: 0}}
route:
  receivers: [sink]
  group_wait_s: 0
  group_interval_s: 1
  repeat_interval_s: 3600
  routes:
    - matchers: ["rule=sensor_fault"]
      receivers: [bench]
      group_by: [plant, stack, sensor]
receivers:
  - name: sink
  - name: bench
    mqtt: {{url: "{mqtt_url}", topic_template: "{template}"}}
"""
