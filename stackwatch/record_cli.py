"""``stackwatch record``: save a stream to a replayable file (CSV or JSON lines).

``record mqtt`` records what a broker carries, checked like the collector checks it;
``record store`` (alias ``record influx``) exports a time range of the stored readings. The
file format follows the suffix of ``--output`` (``.csv``, ``.jsonl``) unless ``--format``
says otherwise. Settings are the service's (``STACKWATCH_MQTT_*``, ``STACKWATCH_INFLUX_URL``
or ``$STACKWATCH_DATA_DIR/stackwatch.db``, ``STACKWATCH_CONFIG``); options override them.

Exit codes: 0 written; 1 the broker or the store failed; 2 bad arguments or configuration.

Wiring: ``app.add_typer(record_app, name="record")`` in ``stackwatch.cli``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path
from typing import Annotated

import aiomqtt
import typer
from pydantic import ValidationError

from collector.settings import MqttSettings
from simulators.record import RecordStats, record_mqtt, record_store
from simulators.recording import RECORDING_FORMATS, RecordingError, RecordingWriter
from stackwatch.cli_support import fail, load_plant, load_settings, parse_time
from stackwatch.service import make_store
from stream.storage.base import StoreError

record_app = typer.Typer(
    help="Record a live MQTT stream or a stored time range to a replayable file.",
    no_args_is_help=True,
    add_completion=False,
)

OutputOption = Annotated[
    Path, typer.Option("--output", "-o", help="File to write: .csv or .jsonl (JSON lines).")
]
FormatOption = Annotated[
    str | None,
    typer.Option("--format", "-f", help="csv or jsonl (default: from the --output suffix)."),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Plant configuration (default: STACKWATCH_CONFIG)."),
]


def _writer(output: Path, fmt: str | None) -> RecordingWriter:
    if fmt is not None and fmt not in RECORDING_FORMATS:
        raise fail(f"--format: expected csv or jsonl, got {fmt!r}")
    try:
        return RecordingWriter(output, fmt)
    except RecordingError as err:
        raise fail(str(err)) from None
    except OSError as err:
        raise fail(f"cannot write {output}: {err.strerror or err}") from None


@record_app.command("mqtt")
def mqtt(  # noqa: PLR0917 - typer maps every parameter to an option
    output: OutputOption,
    mqtt_url: Annotated[
        str | None,
        typer.Option(
            "--mqtt",
            help="Broker URL mqtt[s]://[user:pass@]host[:port] (default: STACKWATCH_MQTT_URL).",
        ),
    ] = None,
    topic_prefix: Annotated[
        str | None,
        typer.Option(help="Topic prefix (default: STACKWATCH_MQTT_TOPIC_PREFIX)."),
    ] = None,
    count: Annotated[
        int | None, typer.Option("--count", "-n", min=1, help="Stop after this many readings.")
    ] = None,
    duration: Annotated[
        float | None,
        typer.Option("--duration", "-d", min=0.001, help="Stop after this many seconds."),
    ] = None,
    fmt: FormatOption = None,
    config: ConfigOption = None,
) -> None:
    """Record readings from the broker, checked like the collector checks them.

    Stops after --count readings, --duration seconds, or Ctrl-C.
    """
    settings = load_settings(config)
    plant_config = load_plant(settings.service)
    url = mqtt_url or settings.mqtt.url
    if url is None:
        raise fail("no broker: give --mqtt or set STACKWATCH_MQTT_URL")
    try:
        mqtt_settings = MqttSettings.model_validate(
            settings.mqtt.model_dump()
            | {"url": url, "topic_prefix": topic_prefix or settings.mqtt.topic_prefix}
        )
    except ValidationError as err:
        raise fail(f"invalid MQTT options:\n{err}") from None
    writer = _writer(output, fmt)

    async def run() -> RecordStats:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        return await record_mqtt(
            writer,
            plant_config,
            mqtt_url=url,
            settings=mqtt_settings,
            count=count,
            duration_s=duration,
            stop=stop,
        )

    try:
        with writer:
            stats = asyncio.run(run())
    except (aiomqtt.MqttError, ValueError) as err:
        raise fail(f"recording from {url} failed: {err}", code=1) from None
    typer.echo(f"wrote {stats.written} reading(s) to {output}", err=True)
    if stats.refused:
        summary = ", ".join(f"{n} {reason}" for reason, n in sorted(stats.refused.items()))
        typer.secho(f"messages refused: {summary}", err=True, fg=typer.colors.YELLOW)
        for message in stats.first_refusals:
            typer.secho(f"  {message}", err=True, fg=typer.colors.YELLOW)


def store(  # noqa: PLR0917 - typer maps every parameter to an option
    output: OutputOption,
    start: Annotated[
        str, typer.Option("--from", metavar="TIME", help="Start (ISO-8601 with offset), included.")
    ],
    end: Annotated[
        str, typer.Option("--to", metavar="TIME", help="End (ISO-8601 with offset), excluded.")
    ],
    plant: Annotated[str | None, typer.Option("--plant", "-p", help="Only this plant.")] = None,
    stack: Annotated[str | None, typer.Option("--stack", "-s", help="Only this stack.")] = None,
    fmt: FormatOption = None,
) -> None:
    """Export the stored readings of [--from, --to) in time order, status kept."""
    start_ns, end_ns = parse_time("--from", start), parse_time("--to", end)
    if end_ns <= start_ns:
        raise fail("--to must be after --from")
    settings = load_settings()
    if settings.influx.url is None:
        db = settings.service.data_dir / "stackwatch.db"
        if not db.is_file():  # starting the store would create an empty one
            raise fail(f"no stored data: {db} does not exist (set STACKWATCH_DATA_DIR)")
    writer = _writer(output, fmt)

    async def run() -> int:
        backend = make_store(settings)
        await backend.start()
        try:
            return await record_store(
                writer, backend, start_ns=start_ns, end_ns=end_ns, plant=plant, stack=stack
            )
        finally:
            await backend.close()

    try:
        with writer:
            written = asyncio.run(run())
    except StoreError as err:
        raise fail(f"the store failed: {err}", code=1) from None
    typer.echo(f"wrote {written} reading(s) to {output}", err=True)


record_app.command("store")(store)
record_app.command("influx", hidden=True)(store)
