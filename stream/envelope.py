"""What travels from a source to the writer: readings plus the acknowledgement to send once
they are durable (``ack`` is called exactly once, only after the storage write succeeded)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from stream.model import Reading


def _no_ack() -> None:
    return None


@dataclass(frozen=True, slots=True)
class Envelope:
    """Readings of one source message and the callback that acknowledges that message."""

    readings: Sequence[Reading]
    ack: Callable[[], None] = _no_ack
