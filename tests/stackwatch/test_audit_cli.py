"""``stackwatch audit verify`` / ``show`` against real log files (via the ``audit_app``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner, Result

from alerts.audit import AuditEntry, AuditKind, AuditLog
from stackwatch.audit_cli import audit_app
from tests.alerts.test_audit import KEY, FakeClock, lines_of, write_lines, write_sample

runner = CliRunner()


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No .env or settings of the developer's shell leak into the commands."""
    monkeypatch.chdir(tmp_path)
    for var in ("STACKWATCH_DATA_DIR", "STACKWATCH_ALERTS_AUDIT_KEY", "OTHER_KEY"):
        monkeypatch.delenv(var, raising=False)


def cli(*args: str, env: dict[str, str] | None = None) -> Result:
    return runner.invoke(audit_app, list(args), env=env)


def test_verify_a_good_log(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    entries = write_sample(path)
    result = cli("verify", "--file", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout == f"OK: 5 entries, head 5 {entries[-1].hash}\n"


def test_verify_a_tampered_log_lists_each_problem(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_sample(path)
    lines = lines_of(path)
    lines[2] = lines[2].replace(b"burner tuned", b"nothing done")
    del lines[3]
    write_lines(path, lines)

    result = cli("verify", "--file", str(path))
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"FAILED: {path}: 4 entries, 2 problem(s)",
        "line 3 (seq 3): hash mismatch (entry edited, or a different key)",
        "line 4 (seq 5): seq 5 where 4 was expected; prev does not match the hash of entry 3",
    ]


def test_verify_defaults_to_the_data_dir(tmp_path: Path) -> None:
    write_sample(tmp_path / "data" / "audit.jsonl")
    result = cli("verify", env={"STACKWATCH_DATA_DIR": str(tmp_path / "data")})
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("OK: 5 entries")

    # the service's default data directory is ./var
    write_sample(tmp_path / "var" / "audit.jsonl")
    assert cli("verify").exit_code == 0


def test_verify_a_keyed_log(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_sample(path, key=KEY)
    key = KEY.get_secret_value()

    good = cli("verify", "--file", str(path), env={"STACKWATCH_ALERTS_AUDIT_KEY": key})
    assert good.exit_code == 0, good.output
    assert key not in good.output
    other = cli("verify", "--file", str(path), "--key-env", "OTHER_KEY", env={"OTHER_KEY": key})
    assert other.exit_code == 0, other.output

    missing = cli("verify", "--file", str(path))
    assert missing.exit_code == 1
    assert missing.stdout.splitlines()[1].startswith("hint: no entry's hash matches")

    unset = cli("verify", "--file", str(path), "--key-env", "OTHER_KEY")
    assert unset.exit_code == 2
    assert "OTHER_KEY is not set" in unset.stderr


def test_verify_expect_head_detects_truncation(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    entries = write_sample(path)
    head = f"5 {entries[-1].hash}"
    assert cli("verify", "--file", str(path), "--expect-head", head).exit_code == 0

    write_lines(path, lines_of(path)[:4])
    assert cli("verify", "--file", str(path)).exit_code == 0  # the chain alone cannot tell
    result = cli("verify", "--file", str(path), "--expect-head", head)
    assert result.exit_code == 1
    assert "expected head seq 5 is missing: the log ends at seq 4" in result.stdout

    bad = cli("verify", "--file", str(path), "--expect-head", "five")
    assert bad.exit_code == 2


def test_verify_caps_the_problem_list(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_sample(path, key=KEY)
    result = cli("verify", "--file", str(path), "--max-problems", "2")  # no key: all 5 fail
    assert result.exit_code == 1
    assert result.stdout.splitlines()[-1] == "... and 3 more (--max-problems 0 lists all)"
    assert len(cli("verify", "--file", str(path), "--max-problems", "0").stdout.splitlines()) == 7


def test_verify_a_missing_log(tmp_path: Path) -> None:
    result = cli("verify", "--file", str(tmp_path / "nope.jsonl"))
    assert result.exit_code == 2
    assert "cannot read the audit log" in result.stderr


def test_show_table_json_and_filters(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    entries = write_sample(path)

    table = cli("show", "--file", str(path))
    assert table.exit_code == 0, table.output
    rows = table.stdout.splitlines()
    assert rows[0].split() == ["SEQ", "TS", "KIND", "ACTOR", "SUBJECT", "DATA"]
    assert [r.split()[0] for r in rows[1:]] == ["5", "4", "3", "2", "1"]
    assert rows[3].split()[2:5] == ["acknowledgement", "jdoe", "0123456789abcdef"]
    assert all(len(r.split("  ")[-1].strip()) <= 60 for r in rows[1:])  # data is shortened

    as_json = cli("show", "--file", str(path), "--json", "--limit", "2", "--oldest-first")
    assert as_json.exit_code == 0
    assert [AuditEntry(**json.loads(x)) for x in as_json.stdout.splitlines()] == entries[:2]

    acks = cli("show", "--file", str(path), "--json", "--kind", "acknowledgement")
    assert [json.loads(x)["seq"] for x in acks.stdout.splitlines()] == [3]
    about = cli("show", "--file", str(path), "--json", "--subject", "n-2")
    assert [json.loads(x)["seq"] for x in about.stdout.splitlines()] == [5]

    assert cli("show", "--file", str(path), "--kind", "bogus").exit_code == 2


def test_show_an_empty_and_a_missing_log(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path, key=SecretStr("k"), clock=FakeClock()):
        pass
    assert cli("show", "--file", str(path)).stdout == "no entries\n"
    silenced = cli("show", "--file", str(path), "--kind", AuditKind.SILENCE_CREATED)
    assert silenced.stdout == "no entries\n"
    missing = cli("show", "--file", str(tmp_path / "nope.jsonl"))
    assert missing.exit_code == 2
    assert "no audit log at" in missing.stderr
