"""``stackwatch audit``: verify the alert audit trail and show its entries.

``verify`` exits 0 and prints ``OK: N entries, head SEQ HASH`` when every entry and the chain
between them check out, 1 with one line per problem when not, 2 when the log cannot be read.
Keep the printed head somewhere else: ``verify --expect-head "SEQ HASH"`` later proves that no
entries were cut off the end (which the chain alone cannot show). The log defaults to
``$STACKWATCH_DATA_DIR/audit.jsonl``; a keyed log needs its key, read from
``STACKWATCH_ALERTS_AUDIT_KEY`` (or the variable named by ``--key-env``).

Wiring: ``app.add_typer(audit_app, name="audit")`` in ``stackwatch.cli``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from alerts.audit import AuditEntry, AuditKind, AuditSettings, read, verify
from stackwatch.settings import ServiceSettings

AUDIT_FILE = "audit.jsonl"
_DATA_WIDTH = 60  # characters of an entry's data shown in the table

audit_app = typer.Typer(
    help="Verify the alert audit trail and show its entries.",
    no_args_is_help=True,
    add_completion=False,
)


class _DataDirSettings(BaseSettings):
    """Only ``STACKWATCH_DATA_DIR``, with the service's default, so that an unrelated bad
    setting does not stop an operator from checking the log."""

    model_config = SettingsConfigDict(
        env_prefix="STACKWATCH_", env_file=".env", env_ignore_empty=True, extra="ignore"
    )

    data_dir: Path = ServiceSettings.model_fields["data_dir"].default


def default_audit_file() -> Path:
    """``$STACKWATCH_DATA_DIR/audit.jsonl`` (the service's data directory default applies)."""
    return _DataDirSettings().data_dir / AUDIT_FILE


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(message, err=True, fg=typer.colors.RED)
    return typer.Exit(code)


def _key(key_env: str | None) -> SecretStr | None:
    if key_env is None:
        return AuditSettings().key
    value = os.environ.get(key_env)
    if not value:
        raise _fail(f"--key-env: environment variable {key_env} is not set")
    return SecretStr(value)


def _parse_head(text: str) -> tuple[int, str]:
    parts = text.replace(":", " ").split()
    if len(parts) != 2 or not parts[0].isdigit():
        raise _fail(f"--expect-head: expected 'SEQ HASH', got {text!r}")
    return int(parts[0]), parts[1].lower()


FileOption = Annotated[
    Path | None,
    typer.Option("--file", help="Audit log (default: $STACKWATCH_DATA_DIR/audit.jsonl)."),
]


@audit_app.command("verify")
def verify_command(
    file: FileOption = None,
    key_env: Annotated[
        str | None,
        typer.Option(
            "--key-env",
            metavar="VAR",
            help="Environment variable holding the HMAC key "
            "(default: STACKWATCH_ALERTS_AUDIT_KEY, if set).",
        ),
    ] = None,
    expect_head: Annotated[
        str | None,
        typer.Option(
            "--expect-head",
            metavar="'SEQ HASH'",
            help="A head printed by an earlier verify: the log must still contain it.",
        ),
    ] = None,
    max_problems: Annotated[
        int, typer.Option(min=0, help="List at most this many problems (0: all).")
    ] = 100,
) -> None:
    """Check that no entry was edited, inserted, removed or reordered."""
    path = file or default_audit_file()
    anchor = _parse_head(expect_head) if expect_head else None
    key = _key(key_env)
    try:
        report = verify(path, key=key, expect_head=anchor)
    except OSError as err:
        raise _fail(f"cannot read the audit log {path}: {err.strerror or err}") from None
    seq, head = report.head
    if report.ok:
        typer.echo(f"OK: {report.entries} entries, head {seq} {head}")
        return
    problems = report.problems
    typer.echo(f"FAILED: {path}: {report.entries} entries, {len(problems)} problem(s)")
    if report.hint:
        typer.echo(f"hint: {report.hint}")
    shown = problems if max_problems == 0 else problems[:max_problems]
    for problem in shown:
        typer.echo(str(problem))
    if len(shown) < len(problems):
        typer.echo(f"... and {len(problems) - len(shown)} more (--max-problems 0 lists all)")
    raise typer.Exit(1)


def _row(entry: AuditEntry) -> list[str]:
    data = json.dumps(entry.data, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    if len(data) > _DATA_WIDTH:
        data = data[: _DATA_WIDTH - 1] + "…"
    return [str(entry.seq), entry.ts, entry.kind, entry.actor, entry.subject, data]


def _table(rows: list[list[str]]) -> str:
    header = ["SEQ", "TS", "KIND", "ACTOR", "SUBJECT", "DATA"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *rows]
    )


@audit_app.command("show")
def show_command(  # noqa: PLR0917 - typer maps every parameter to an option
    file: FileOption = None,
    kind: Annotated[AuditKind | None, typer.Option(help="Only entries of this kind.")] = None,
    subject: Annotated[
        str | None, typer.Option(help="Only entries about this alert fingerprint, id or file.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many entries.")] = 20,
    oldest_first: Annotated[
        bool, typer.Option("--oldest-first", help="Oldest entries first (default newest).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON entry per line.")] = False,
) -> None:
    """Print entries (newest first) as a table or JSON lines; does not verify."""
    path = file or default_audit_file()
    if not path.is_file():
        raise _fail(f"no audit log at {path}")
    entries = read(path, kind=kind, subject=subject, limit=limit, newest_first=not oldest_first)
    if as_json:
        for entry in entries:
            typer.echo(json.dumps(entry.to_dict(), ensure_ascii=False, separators=(",", ":")))
    elif entries:
        typer.echo(_table([_row(e) for e in entries]))
    else:
        typer.echo("no entries")


if __name__ == "__main__":
    audit_app()
