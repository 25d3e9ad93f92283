"""``stackwatch simulate``: a simulated plant, with labelled faults, to MQTT or to a recording.

The plant configuration is ``--config``, else ``STACKWATCH_CONFIG`` (the demo plant with
``STACKWATCH_MODE=demo``), as for the other commands. Readings go either

* over MQTT (``--mqtt URL``, default ``STACKWATCH_MQTT_URL``, topic prefix
  ``STACKWATCH_MQTT_TOPIC_PREFIX``; an ``mqtts://`` broker is trusted through ``--ca-file`` or
  ``STACKWATCH_MQTT_TLS_CA_FILE``, as the collector is), paced at ``--rate`` times real time
  (``--rate 0`` or ``--fast``: as fast as the broker takes them), until ``--duration`` has been
  simulated or forever (Ctrl-C stops cleanly); or
* to a recording (``--output FILE``, ``.csv`` replay format or ``.jsonl``) as fast as
  possible, with a progress bar; ``--duration`` is then required.

Faults: ``--faults N`` injects about N random faults per sensor and simulated day (seeded by
``--seed``; none in the first hour), ``--faults-file`` an explicit YAML schedule (see
:func:`simulators.faults.load_schedule`); ``--labels FILE`` writes the ground truth
(:mod:`simulators.labels`), also when the run is interrupted.

Exit codes: 0 done; 1 the output could not be written; 2 bad arguments or configuration.

Wiring: ``app.add_typer(simulate_app)`` (without a name) adds the ``simulate`` command to the
``stackwatch`` CLI.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import signal
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from collector.settings import MqttSettings
from simulators.faults import (
    FaultEvent,
    FaultInjector,
    FaultKind,
    ScheduleError,
    load_schedule,
    parse_duration_s,
    random_schedule,
)
from simulators.labels import write_labels
from simulators.plant import PlantSimulator
from simulators.publisher import BrokerAddress, publish_readings
from simulators.recording import RecordingError, RecordingWriter
from stackwatch.cli_support import (
    CaFileOption,
    env_settings,
    fail,
    load_plant,
    parse_time,
    tls_ca_file,
)
from stackwatch.settings import ServiceSettings
from stream.model import NS_PER_S, Reading
from stream.plant import PlantConfig
from stream.timeparse import format_iso_ns

simulate_app = typer.Typer(add_completion=False)

_DAY_NS = 86_400 * NS_PER_S
_WARMUP_S = 3600.0
_PROGRESS_EVERY = 5000  # readings between progress-bar updates


def _readings(
    injector: FaultInjector, end_ns: int | None, per_sensor_day: float, seed: int
) -> Iterator[Reading]:
    """The injector's stream to ``end_ns``, or forever one day at a time, each day with its
    own random faults (the schedule for the whole period is drawn up front otherwise)."""
    if end_ns is not None:
        yield from injector.stream(end_ns)
        return
    sim = injector.sim
    day = 0
    while True:
        lo = sim.start_ns + day * _DAY_NS
        if per_sensor_day > 0:
            injector.add(
                random_schedule(
                    sim.config,
                    lo,
                    lo + _DAY_NS,
                    seed=f"{seed}/{day}",
                    per_sensor_day=per_sensor_day,
                    warmup_s=_WARMUP_S if day == 0 else 0.0,
                )
            )
        yield from injector.stream(lo + _DAY_NS)
        day += 1


def _record(readings: Iterator[Reading], output: Path, start_ns: int, end_ns: int) -> int:
    """Write to a recording with a progress bar over simulated time (on standard error)."""
    try:
        writer = RecordingWriter(output)
    except RecordingError as err:
        raise fail(str(err)) from None
    except OSError as err:
        raise fail(f"cannot write {output}: {err.strerror}", code=1) from None
    total_s = (end_ns - start_ns) / NS_PER_S
    progress = Progress(
        TextColumn("[bold]simulating"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[readings]:,} readings"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )
    with writer, progress:
        task = progress.add_task("simulate", total=total_s, readings=0)
        try:
            for reading in readings:
                writer.write(reading)
                if writer.written % _PROGRESS_EVERY == 0:
                    done_s = (reading.ts_ns - start_ns) / NS_PER_S
                    progress.update(task, completed=done_s, readings=writer.written)
        except OSError as err:
            raise fail(f"cannot write {output}: {err.strerror}", code=1) from None
        progress.update(task, completed=total_s, readings=writer.written)
    return writer.written


@dataclass(frozen=True, slots=True)
class _Broker:
    """Where to publish: URL, topic prefix, the CA file of an ``mqtts://`` broker and the
    password when it is not in the URL (``STACKWATCH_MQTT_PASSWORD``)."""

    url: str
    prefix: str
    ca_file: str | None
    password: str | None = None


def _publish(readings: Iterator[Reading], broker: _Broker, origin_ns: int, rate: float) -> int:
    """Publish until the readings end or SIGINT/SIGTERM."""

    async def run() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)
        return await publish_readings(
            readings,
            mqtt_url=broker.url,
            origin_ns=origin_ns,
            topic_prefix=broker.prefix,
            rate=rate,
            stop=stop,
            ca_file=broker.ca_file,
            password=broker.password,
        )

    return asyncio.run(run())


def _fault_counts(labels: list[FaultEvent]) -> Counter[FaultKind]:
    """Events by kind (an excursion is labelled once per sensor but counted once)."""
    events = {
        (e.plant, e.stack, e.kind, e.start_ns, "" if e.kind is FaultKind.EXCURSION else e.sensor)
        for e in labels
    }
    return Counter(kind for _, _, kind, _, _ in events)


@simulate_app.command("simulate")
def simulate(  # noqa: PLR0917 - typer maps every parameter to an option
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Plant configuration (default: STACKWATCH_CONFIG)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the plant and of random faults.")] = 0,
    start: Annotated[
        str | None,
        typer.Option(help="Simulated start time, ISO 8601 with offset (default: now)."),
    ] = None,
    duration: Annotated[
        str | None,
        typer.Option(
            help="Simulated period, e.g. 90s, 2h, 7d (default: forever when publishing; "
            "required with --output)."
        ),
    ] = None,
    mqtt: Annotated[
        str | None,
        typer.Option("--mqtt", help="Broker URL to publish to (default: STACKWATCH_MQTT_URL)."),
    ] = None,
    ca_file: CaFileOption = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write a recording (.csv or .jsonl) instead."),
    ] = None,
    rate: Annotated[
        float, typer.Option(help="Speed-up over real time when publishing; 0: no pacing.")
    ] = 1.0,
    fast: Annotated[bool, typer.Option("--fast", help="Publish as fast as possible.")] = False,
    faults: Annotated[
        float, typer.Option(help="Random faults per sensor and simulated day.")
    ] = 0.0,
    faults_file: Annotated[
        Path | None, typer.Option("--faults-file", help="Explicit fault schedule (YAML).")
    ] = None,
    labels: Annotated[
        Path | None, typer.Option("--labels", help="Write the injected faults (CSV).")
    ] = None,
) -> None:
    """Simulate a plant, with labelled faults, and publish it over MQTT or record it."""
    plant_config = load_plant(env_settings(ServiceSettings), config)
    start_ns, end_ns = _period(start, duration)
    if output is not None and mqtt is not None:
        raise fail("give either --mqtt or --output, not both")
    if output is not None and end_ns is None:
        raise fail("--output needs --duration (a recording must end)")
    if not (rate >= 0 and not math.isnan(rate)):
        raise fail(f"--rate must be 0 (no pacing) or positive, got {rate}")
    pace = math.inf if fast or rate == 0 else rate
    if not (faults >= 0 and math.isfinite(faults)):
        raise fail(f"--faults must be a non-negative number, got {faults}")
    if faults > 0 and faults_file is not None:
        raise fail("give either --faults or --faults-file, not both")
    broker = None if output is not None else _broker(mqtt, ca_file)
    injector = _injector(
        plant_config, seed, start_ns=start_ns, end_ns=end_ns, faults=faults, faults_file=faults_file
    )
    readings = _readings(injector, end_ns, faults if end_ns is None else 0.0, seed)
    try:
        if broker is not None:
            count = _publish(readings, broker, start_ns, pace)
            where = f"published {count:,} readings to {BrokerAddress.parse(broker.url).host}"
        else:
            assert output is not None and end_ns is not None
            count = _record(readings, output, start_ns, end_ns)
            where = f"wrote {count:,} readings to {output}"
    finally:
        applied = injector.labels
        if labels is not None:
            try:
                write_labels(labels, applied)
            except OSError as err:
                raise fail(f"cannot write {labels}: {err.strerror}", code=1) from None
    _summary(where, start_ns, injector, applied, labels)


def _period(start: str | None, duration: str | None) -> tuple[int, int | None]:
    """Start and (exclusive) end of the simulated period, in epoch ns."""
    start_ns = parse_time("--start", start) if start else time.time_ns() // NS_PER_S * NS_PER_S
    if duration is None:
        return start_ns, None
    try:
        return start_ns, start_ns + round(parse_duration_s(duration) * NS_PER_S)
    except ValueError as err:
        raise fail(f"--duration: {err}") from None


def _broker(mqtt: str | None, ca_file: Path | None) -> _Broker:
    """Where to publish: ``--mqtt`` and ``--ca-file``, else the collector's settings."""
    mqtt_settings = env_settings(MqttSettings)
    url = mqtt or mqtt_settings.url or ""
    if not url:
        raise fail("no broker: give --mqtt URL or set STACKWATCH_MQTT_URL (or --output)")
    try:
        BrokerAddress.parse(url)
    except ValueError as err:
        raise fail(f"--mqtt: {err}") from None
    return _Broker(
        url,
        mqtt_settings.topic_prefix,
        tls_ca_file(ca_file, mqtt_settings.tls_ca_file),
        mqtt_settings.password_override(),
    )


def _injector(
    config: PlantConfig,
    seed: int,
    *,
    start_ns: int,
    end_ns: int | None,
    faults: float,
    faults_file: Path | None,
) -> FaultInjector:
    """The simulator wrapped with its fault schedule (random faults of an endless run are
    added day by day by :func:`_readings`)."""
    try:
        schedule: list[FaultEvent] = []
        if faults_file is not None:
            schedule = load_schedule(faults_file, config)
        elif faults > 0 and end_ns is not None:
            schedule = random_schedule(config, start_ns, end_ns, seed=seed, per_sensor_day=faults)
        return FaultInjector(PlantSimulator(config, seed=seed, start_ns=start_ns), schedule)
    except ScheduleError as err:
        raise fail(str(err)) from None


def _summary(
    where: str,
    start_ns: int,
    injector: FaultInjector,
    applied: list[FaultEvent],
    labels: Path | None,
) -> None:
    sim = injector.sim
    typer.echo(f"{where} (simulated {format_iso_ns(start_ns)} to {format_iso_ns(sim.now_ns)})")
    counts = _fault_counts(applied)
    if counts:
        by_kind = ", ".join(f"{n} {kind.value}" for kind, n in sorted(counts.items()))
        typer.echo(f"faults: {sum(counts.values())} ({by_kind})")
    else:
        typer.echo("faults: none")
    reached = {(e.plant, e.stack, e.kind, e.start_ns) for e in applied}
    missed = sum(
        1 for e in injector.schedule if (e.plant, e.stack, e.kind, e.start_ns) not in reached
    )
    if missed:
        typer.secho(
            f"{missed} scheduled fault(s) start after the simulated period; not applied",
            err=True,
            fg=typer.colors.YELLOW,
        )
    if labels is not None:
        typer.echo(f"labels: {len(applied)} row(s) written to {labels}")


if __name__ == "__main__":  # pragma: no cover
    simulate_app()
