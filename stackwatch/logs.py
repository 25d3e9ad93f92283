"""Structured logging: structlog for our events, stdlib logging of libraries routed through it."""

from __future__ import annotations

import logging
import sys

import structlog

from stackwatch.settings import LogFormat


def configure_logging(
    level: str = "INFO", fmt: LogFormat = LogFormat.CONSOLE, *, cache: bool = True
) -> None:
    """Key-value console logs for people, JSON lines for log shippers; both on stderr.

    ``cache=False`` for commands that may run inside another program (tests): a cached
    logger keeps this configuration for the life of the process."""
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if fmt is LogFormat.JSON
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        cache_logger_on_first_use=cache,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Libraries log at WARNING unless we debug; paho/aiomqtt/amqtt are chatty.
    for name in (
        "aiomqtt",
        "paho",
        "amqtt",
        "transitions",
        "httpx",
        "httpcore",
        "uvicorn",
        "uvicorn.error",
        "uvicorn.access",
    ):
        logging.getLogger(name).setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)
