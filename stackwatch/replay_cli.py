"""``stackwatch replay FILE``: a recording through the pipeline, or over MQTT, and a backtest.

Without ``--mqtt`` the readings go straight into a fresh pipeline (compliance, detection, PEMS,
alerts) whose store, models and alert state live in ``--data-dir`` (the embedded store by
default; ``--influx`` writes to the configured InfluxDB so the replay shows in Grafana).
Alerts run on the data's time and notify nobody: the summary lists what would have fired.
``--evaluate LABELS`` scores the detection against a labels file (``stackwatch simulate
--labels``) per fault kind. With ``--mqtt`` the recording is published to a broker, where a
running service takes it like live data (an ``mqtts://`` broker is trusted through
``--ca-file`` or ``STACKWATCH_MQTT_TLS_CA_FILE``, as the collector is).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import structlog
import typer

from alerts.settings import AlertsConfigError, load_alerts_config
from simulators.labels import LabelsError, read_labels
from simulators.progress import replay_progress
from simulators.recording import (
    RecordingError,
    Refusals,
    count_records,
    iter_recording,
    last_record_ns,
)
from simulators.replay import ReplayStats, replay_over_mqtt, shifted_to_now
from stackwatch.backtest import Backtest, score, to_json, to_table
from stackwatch.cli_support import CaFileOption, fail, load_plant, load_settings, tls_ca_file
from stackwatch.logs import configure_logging
from stackwatch.replay import ReplayOutcome, replay_direct
from stackwatch.service import Settings, StartupError, make_store
from stream.model import Reading, datetime_from_ns
from stream.plant import PlantConfig

replay_app = typer.Typer()
log = structlog.get_logger(__name__)


def _speed(speed: float | None, fast: bool) -> float:
    if fast or speed is None or speed == 0:
        return math.inf
    if not speed > 0:
        raise fail(f"--speed must be positive (0: as fast as possible), got {speed}")
    return speed


def _default_data_dir(recording: Path) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Path("var") / "replay" / f"{recording.stem}-{stamp}"


@replay_app.command("replay")
def replay(  # noqa: PLR0917 - typer maps every parameter to an option
    recording: Annotated[
        Path,
        typer.Argument(
            help="Recording: .csv (time,plant,stack,sensor,value,status) or .jsonl.",
            show_default=False,
        ),
    ],
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Plant configuration (default: STACKWATCH_CONFIG)."),
    ] = None,
    speed: Annotated[
        float | None,
        typer.Option(help="1 = real time, N = N times faster, 0 = as fast as possible."),
    ] = None,
    fast: Annotated[bool, typer.Option("--fast", help="As fast as possible (default).")] = False,
    shift_to_now: Annotated[
        bool,
        typer.Option(
            "--shift-to-now",
            help="Move all times by one constant: in real time the first reading is now, "
            "faster the last one (so nothing lies in the future).",
        ),
    ] = False,
    mqtt_url: Annotated[
        str | None,
        typer.Option("--mqtt", help="Publish to this broker instead of the pipeline."),
    ] = None,
    topic_prefix: Annotated[
        str | None, typer.Option(help="MQTT topic prefix (default: STACKWATCH_MQTT_TOPIC_PREFIX).")
    ] = None,
    ca_file: CaFileOption = None,
    evaluate: Annotated[
        Path | None,
        typer.Option("--evaluate", help="Labels file: score the detection per fault kind."),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Store, models and alert state of the replay (default: a new "
            "directory under var/replay/)."
        ),
    ] = None,
    influx: Annotated[
        bool, typer.Option("--influx", help="Store in the configured InfluxDB, not embedded.")
    ] = False,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Replay a recording through the pipeline (or over MQTT) and print what happened."""
    if fmt not in ("table", "json"):
        raise fail(f"--format: expected table or json, got {fmt!r}")
    if mqtt_url is not None and (evaluate is not None or influx or data_dir is not None):
        raise fail("--evaluate, --influx and --data-dir need the pipeline: drop --mqtt")
    rate = _speed(speed, fast)
    settings = load_settings(config)
    ca = tls_ca_file(ca_file, settings.mqtt.tls_ca_file) if mqtt_url is not None else None
    # A replay's own logs are noise next to its summary unless asked for.
    level = settings.service.log_level if "STACKWATCH_LOG_LEVEL" in os.environ else "WARNING"
    configure_logging(level, settings.service.log_format, cache=False)
    plant = load_plant(settings.service)
    try:
        labels = read_labels(evaluate) if evaluate is not None else None
        total = count_records(recording)
        items = iter_recording(recording, plant)
        # Where the recording ends: faster than real time, the shift to now depends on it.
        last_ns = last_record_ns(recording) if shift_to_now else None
    except (RecordingError, LabelsError) as err:
        raise fail(str(err)) from None
    if shift_to_now and rate > 1 and total and last_ns is None:
        raise fail(f"{recording}: --shift-to-now needs the time of its last record: none readable")
    refusals = Refusals()
    readings: Iterator[Reading] = refusals.readings(items)
    progress = None if not quiet else False
    if mqtt_url is not None:
        stats = _run(
            replay_over_mqtt(
                readings,
                mqtt_url=mqtt_url,
                topic_prefix=topic_prefix or settings.mqtt.topic_prefix,
                speed=rate,
                shift_to_now=shift_to_now,
                last_ns=last_ns,
                progress=progress,
                total=total,
                protocol=settings.mqtt.protocol,
                ca_file=ca,
                password=settings.mqtt.password_override(),
            )
        )
        _print_mqtt(stats, refusals, fmt)
        return
    if shift_to_now:
        readings, _ = shifted_to_now(readings, speed=rate, now_ns=time.time_ns(), last_ns=last_ns)
    if not influx:
        settings.influx = settings.influx.model_copy(update={"url": None})
    directory = data_dir or _default_data_dir(recording)
    settings.service = settings.service.model_copy(update={"data_dir": directory})
    outcome = _run(
        _direct(
            settings,
            plant,
            readings,
            speed=rate,
            progress=progress,
            total=total,
        )
    )
    backtest = (
        score(labels, outcome.flags, sensor_spans=outcome.sensor_span_ns)
        if labels is not None
        else None
    )
    _print_direct(outcome, refusals, backtest, directory, fmt)


def _run(coro: Any) -> Any:
    try:
        return asyncio.run(coro)
    except KeyboardInterrupt:
        raise fail("interrupted", 130) from None
    except (RecordingError, StartupError, AlertsConfigError) as err:
        raise fail(str(err)) from None


async def _direct(
    settings: Settings,
    plant: PlantConfig,
    readings: Any,
    *,
    speed: float,
    progress: bool | None,
    total: int,
) -> ReplayOutcome:
    alerts_config = load_alerts_config(
        settings.alerts.config, topic_prefix=settings.mqtt.topic_prefix
    )
    store = make_store(settings)
    await store.start()
    try:
        with replay_progress(total, progress, description="replay") as advance:
            return await replay_direct(
                readings,
                config=plant,
                store=store,
                data_dir=settings.service.data_dir,
                alerts_config=alerts_config,
                alerts_settings=settings.alerts,
                progress=advance,
                speed=speed,
            )
    finally:
        await store.close()


def _when(ts_ns: int | None) -> str:
    return "-" if ts_ns is None else datetime_from_ns(ts_ns).isoformat()


def _refused_lines(refusals: Refusals) -> list[str]:
    if not refusals.counts:
        return []
    summary = ", ".join(f"{n} {reason}" for reason, n in sorted(refusals.counts.items()))
    return [f"refused: {summary}", *(f"  {m}" for m in refusals.first)]


def _print_mqtt(stats: ReplayStats, refusals: Refusals, fmt: str) -> None:
    if fmt == "json":
        typer.echo(
            json.dumps(
                {
                    "published": stats.published,
                    "first": _when(stats.first_ns),
                    "last": _when(stats.last_ns),
                    "shift_s": stats.shift_ns / 1e9,
                    "elapsed_s": round(stats.elapsed_s, 3),
                    "refused": dict(refusals.counts),
                },
                indent=2,
            )
        )
        return
    rate = stats.published / stats.elapsed_s if stats.elapsed_s > 0 else 0.0
    typer.echo(
        f"published {stats.published} readings ({_when(stats.first_ns)} .. "
        f"{_when(stats.last_ns)}) in {stats.elapsed_s:.1f} s ({rate:,.0f}/s)"
    )
    for line in _refused_lines(refusals):
        typer.secho(line, err=True, fg=typer.colors.YELLOW)


def _alert_rows(outcome: ReplayOutcome) -> list[dict[str, Any]]:
    rows = []
    for a in outcome.fired:
        rows.append(
            {
                "fired": _when(a.fired_ns),
                "resolved": _when(outcome.resolved.get(a.fingerprint)),
                "severity": str(a.severity),
                "rule": a.rule,
                "labels": dict(a.labels),
                "summary": a.summary,
            }
        )
    return rows


def _print_direct(
    outcome: ReplayOutcome,
    refusals: Refusals,
    backtest: Backtest | None,
    directory: Path,
    fmt: str,
) -> None:
    alerts = _alert_rows(outcome)
    receivers: dict[str, int] = {}
    for n in outcome.notifications:
        receivers[n.receiver] = receivers.get(n.receiver, 0) + 1
    flagged = sum(len(v) for v in outcome.flags.values())
    if fmt == "json":
        document: dict[str, Any] = {
            "stored": outcome.stored,
            "first": _when(outcome.first_ns),
            "last": _when(outcome.last_ns),
            "elapsed_s": round(outcome.elapsed_s, 3),
            "readings_per_s": round(outcome.rate, 1),
            "refused": dict(refusals.counts),
            "flagged_readings": flagged,
            "detection_events": len(outcome.detection_events),
            "compliance_events": len(outcome.compliance_events),
            "alerts": alerts,
            "notifications": receivers,
            "data_dir": str(directory),
            "evaluation": json.loads(to_json(backtest)) if backtest is not None else None,
        }
        typer.echo(json.dumps(document, indent=2))
        return
    typer.echo(
        f"stored {outcome.stored} readings ({_when(outcome.first_ns)} .. "
        f"{_when(outcome.last_ns)}) in {outcome.elapsed_s:.1f} s ({outcome.rate:,.0f}/s); "
        f"store, models and alert state in {directory}"
    )
    for line in _refused_lines(refusals):
        typer.secho(line, err=True, fg=typer.colors.YELLOW)
    typer.echo(
        f"detection: {flagged} flagged reading(s), {len(outcome.detection_events)} event(s); "
        f"compliance: {len(outcome.compliance_events)} event(s)"
    )
    typer.echo(f"alerts that would have fired: {len(alerts)}")
    for a in alerts:
        where = "/".join(str(v) for k, v in a["labels"].items() if k in ("plant", "stack"))
        typer.echo(
            f"  {a['fired']}  {a['severity']:<8} {a['rule']:<24} {where}  {a['summary']}"
            + (f"  (resolved {a['resolved']})" if a["resolved"] != "-" else "")
        )
    if receivers:
        sent = ", ".join(f"{n} to {name}" for name, n in sorted(receivers.items()))
        typer.echo(f"notifications that would have been sent: {sent}")
    if backtest is not None:
        typer.echo("")
        typer.echo(to_table(backtest))
