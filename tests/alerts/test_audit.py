"""The audit trail: round trip, tamper detection, crash recovery, concurrency, failures."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import subprocess
import sys
import tempfile
import threading
from enum import IntEnum
from pathlib import Path

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from alerts.audit import (
    GENESIS,
    AuditEntry,
    AuditError,
    AuditKind,
    AuditLog,
    Problem,
    read,
    verify,
)
from alerts.model import Alert, Severity, State, Transition
from stream.model import NS_PER_S

T0 = 1_700_000_000 * NS_PER_S
KEY = SecretStr("correct horse battery staple")


class FakeClock:
    def __init__(self, now_ns: int = T0) -> None:
        self.now_ns = now_ns

    def __call__(self) -> int:
        return self.now_ns

    def advance(self, seconds: float) -> None:
        self.now_ns += round(seconds * NS_PER_S)


def alert(state: State, **changes: object) -> Alert:
    fields: dict[str, object] = {
        "fingerprint": "0123456789abcdef",
        "rule": "limit_breach",
        "labels": {"plant": "demo", "stack": "boiler1", "pollutant": "nox"},
        "severity": Severity.CRITICAL,
        "state": state,
        "summary": "NOx 212 mg/m³ above 200",
        "started_ns": T0,
        "updated_ns": T0,
        "value": 212.0,
        "threshold": 200.0,
    }
    fields.update(changes)
    return Alert(**fields)  # type: ignore[arg-type]


def write_sample(path: Path, key: SecretStr | None = None) -> list[AuditEntry]:
    """Five entries: config load, firing, acknowledgement (with comment), two notifications."""
    clock = FakeClock()
    with AuditLog(path, key=key, clock=clock) as log:
        entries = [log.record(AuditKind.CONFIG_LOADED, "system", "plants.yaml", {"stacks": 1})]
        clock.advance(60)
        entries.append(log.record_transition(Transition(alert(State.FIRING), State.PENDING, T0)))
        clock.advance(60)
        acked = alert(State.ACKNOWLEDGED, acknowledged_by="jdoe", ack_comment="burner tuned")
        entries.append(
            log.record_transition(
                Transition(acked, State.FIRING, clock.now_ns, actor="jdoe", comment="burner tuned")
            )
        )
        clock.advance(1)
        entries.append(
            log.record(AuditKind.NOTIFICATION_SENT, "system", "n-1", {"receiver": "ops"})
        )
        entries.append(
            log.record(AuditKind.NOTIFICATION_SUPPRESSED, "system", "n-2", {"reason": "silenced"})
        )
    return entries


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")[:-1]


def write_lines(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def canonical(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def rehash(obj: dict[str, object]) -> dict[str, object]:
    """What an attacker without the key can do: recompute a plain SHA-256 hash."""
    body = canonical({k: v for k, v in obj.items() if k != "hash"})
    return {**obj, "hash": hashlib.sha256(body).hexdigest()}


# --- round trip -----------------------------------------------------------------------------


def test_append_verify_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "audit" / "audit.jsonl"  # the directory is created
    entries = write_sample(path)

    report = verify(path)
    assert report.ok, report.problems
    assert report.entries == 5
    assert report.head == (5, entries[-1].hash)
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev == GENESIS
    assert all(b.prev == a.hash for a, b in itertools.pairwise(entries))
    # each line is the canonical JSON of its entry, and reads back equal
    assert lines_of(path) == [canonical(e.to_dict()) for e in entries]
    assert read(path, newest_first=False) == entries
    assert entries[0].ts == "2023-11-14T22:13:20+00:00"
    assert entries[0].ts_ns == T0


def test_transitions_and_acknowledgements_are_recorded(tmp_path: Path) -> None:
    entries = write_sample(tmp_path / "a.jsonl")
    firing, ack = entries[1], entries[2]
    assert firing.kind == AuditKind.ALERT_TRANSITION
    assert firing.actor == "system"
    assert firing.subject == "0123456789abcdef"
    assert firing.data["from"] == "pending"
    assert firing.data["to"] == "firing"
    assert firing.data["labels"] == {"plant": "demo", "stack": "boiler1", "pollutant": "nox"}
    assert firing.data["value"] == 212.0
    assert "comment" not in firing.data
    assert ack.kind == AuditKind.ACKNOWLEDGEMENT
    assert ack.actor == "jdoe"
    assert ack.data["comment"] == "burner tuned"
    assert ack.data["at_ns"] == T0 + 120 * NS_PER_S


def test_data_is_stored_as_the_json_it_reads_back_as(tmp_path: Path) -> None:
    class Level(IntEnum):
        HIGH = 2

    path = tmp_path / "a.jsonl"
    with AuditLog(path, clock=FakeClock()) as log:
        entry = log.record(
            AuditKind.CONFIG_CHANGED,
            "ad\udc80min",  # a lone surrogate (from a badly decoded request) cannot be UTF-8
            "plants.yaml",
            {
                "nan": math.nan,
                "inf": -math.inf,
                "pair": (1, 2),
                "set": {"b", "a"},
                "level": Level.HIGH,
                "state": State.FIRING,
                Severity.INFO: "enum key",
                "path": Path("/etc/plants.yaml"),
            },
        )
    assert entry.data == {
        "nan": "nan",
        "inf": "-inf",
        "pair": [1, 2],
        "set": ["a", "b"],
        "level": 2,
        "state": "firing",
        "info": "enum key",
        "path": "/etc/plants.yaml",
    }
    assert entry.actor == "ad?min"
    assert verify(path).ok
    assert read(path) == [entry]


# --- tampering ------------------------------------------------------------------------------


def test_editing_an_ack_comment_is_detected_naming_the_entry(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    write_sample(path)
    lines = lines_of(path)
    ack = json.loads(lines[2])
    ack["data"]["comment"] = "no action needed"  # rewritten in canonical form, hash kept
    lines[2] = canonical(ack)
    write_lines(path, lines)

    report = verify(path)
    assert not report.ok
    assert report.problems == [Problem(3, 3, "hash mismatch (entry edited, or a different key)")]
    assert report.hint is None


def test_a_hand_edit_that_keeps_the_json_equal_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    write_sample(path)
    lines = lines_of(path)
    lines[1] = json.dumps(json.loads(lines[1]), sort_keys=True).encode()  # spaces added
    write_lines(path, lines)

    report = verify(path)
    assert [(p.seq, p.reason) for p in report.problems] == [
        (2, "not in canonical form (edited by hand?)")
    ]


def test_deleting_a_line_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    write_sample(path)
    lines = lines_of(path)
    del lines[2]
    write_lines(path, lines)

    report = verify(path)
    assert not report.ok
    assert [(p.line, p.seq) for p in report.problems] == [(3, 4)]
    assert "seq 4 where 3 was expected" in report.problems[0].reason
    assert "prev does not match the hash of entry 2" in report.problems[0].reason


def test_swapping_two_lines_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    write_sample(path)
    lines = lines_of(path)
    lines[1], lines[2] = lines[2], lines[1]
    write_lines(path, lines)

    report = verify(path)
    assert [(p.line, p.seq) for p in report.problems] == [(2, 3), (3, 2), (4, 4)]
    assert all("hash mismatch" not in p.reason for p in report.problems)  # entries intact


def test_inserting_a_forged_entry_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    entries = write_sample(path)
    lines = lines_of(path)
    # a well-formed entry with a correct hash, chained to entry 2, claiming seq 3
    forged = rehash({**json.loads(lines[2]), "actor": "mallory", "prev": entries[1].hash})
    lines.insert(2, canonical(forged))
    write_lines(path, lines)

    report = verify(path)
    assert not report.ok
    # the forgery itself is consistent; the real entry 3 after it no longer is
    assert [(p.line, p.seq) for p in report.problems] == [(4, 3)]
    assert "seq 3 where 4 was expected" in report.problems[0].reason


def test_with_a_key_recomputed_sha256_hashes_are_detected(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    write_sample(path, key=KEY)
    assert verify(path, key=KEY).ok
    lines = lines_of(path)
    # the attacker edits entry 3 and re-chains everything after it with plain SHA-256
    prev = json.loads(lines[1])["hash"]
    for i in range(2, len(lines)):
        obj = json.loads(lines[i])
        if i == 2:
            obj["data"]["comment"] = "no action needed"
        obj = rehash({**obj, "prev": prev})
        prev = obj["hash"]
        lines[i] = canonical(obj)
    write_lines(path, lines)

    report = verify(path, key=KEY)
    assert [p.seq for p in report.problems] == [3, 4, 5]
    assert all("hash mismatch" in p.reason for p in report.problems)


def test_without_a_key_a_rewritten_suffix_needs_the_head_anchor(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    entries = write_sample(path)
    anchor = (5, entries[-1].hash)
    lines = lines_of(path)
    obj = rehash({**json.loads(lines[4]), "actor": "mallory"})
    lines[4] = canonical(obj)
    write_lines(path, lines)

    assert verify(path).ok  # the documented limit of an unkeyed chain
    report = verify(path, expect_head=anchor)
    assert [(p.seq, p.reason) for p in report.problems] == [
        (5, "hash differs from the expected head")
    ]


def test_truncation_at_the_end_is_detected_only_with_an_anchor(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    entries = write_sample(path)
    write_lines(path, lines_of(path)[:3])

    assert verify(path).ok
    assert verify(path, expect_head=(3, entries[2].hash)).ok  # an older anchor still holds
    report = verify(path, expect_head=(5, entries[4].hash))
    assert not report.ok
    assert report.problems[0].seq == 5
    assert "missing: the log ends at seq 3" in report.problems[0].reason


def test_a_wrong_or_missing_key_is_hinted(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    write_sample(path, key=KEY)

    for key in (None, SecretStr("wrong")):
        report = verify(path, key=key)
        assert not report.ok
        assert len(report.problems) == 5
        assert report.hint is not None
        assert "wrong or missing key" in report.hint


def test_an_unreadable_line_is_reported_once_and_the_chain_resumes(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    write_sample(path)
    lines = lines_of(path)
    lines[1] = b'{"seq": 2, "oops"'
    write_lines(path, lines)

    report = verify(path)
    assert len(report.problems) == 1
    assert report.problems[0].line == 2
    assert report.problems[0].seq is None
    assert report.problems[0].reason.startswith("not valid JSON")


def test_verify_of_a_missing_log_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        verify(tmp_path / "nope.jsonl")


# --- crash recovery, reopen, single writer --------------------------------------------------


def test_a_torn_last_line_is_truncated_and_recorded_on_open(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    entries = write_sample(path)
    torn = b'{"actor":"system","data":{"receiver":"o'
    with path.open("ab") as f:
        f.write(torn)  # a crash in the middle of an append
    report = verify(path)
    assert [(p.line, p.seq) for p in report.problems] == [(6, None)]
    assert "incomplete last line" in report.problems[0].reason

    clock = FakeClock(T0 + 3600 * NS_PER_S)
    with AuditLog(path, clock=clock) as log:
        assert log.head()[0] == 6
    recovered = read(path, limit=1)[0]
    assert recovered.kind == AuditKind.AUDIT_RECOVERED
    assert recovered.seq == 6
    assert recovered.prev == entries[-1].hash
    assert recovered.ts_ns == clock.now_ns
    assert recovered.data["truncated_bytes"] == len(torn)
    assert recovered.data["truncated_text"] == torn.decode()
    assert verify(path).ok
    assert lines_of(path)[:5] == [canonical(e.to_dict()) for e in entries]


def test_a_log_that_is_only_a_torn_line_recovers_from_the_start(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"actor":"sys')
    with AuditLog(path, clock=FakeClock()) as log:
        entry = log.record(AuditKind.CONFIG_LOADED, "system", "plants.yaml")
    first, second = read(path, newest_first=False)
    assert first.kind == AuditKind.AUDIT_RECOVERED
    assert first.prev == GENESIS
    assert second == entry
    assert verify(path).ok


def test_reopening_continues_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    entries = write_sample(path, key=KEY)
    with AuditLog(path, key=KEY, clock=FakeClock()) as log:
        assert log.head() == (5, entries[-1].hash)
        entry = log.record(AuditKind.SILENCE_CREATED, "jdoe", "silence-1", {"hours": 2})
        assert log.head() == (6, entry.hash)
    assert entry.seq == 6
    assert entry.prev == entries[-1].hash
    report = verify(path, key=KEY)
    assert report.ok
    assert report.head == (6, entry.hash)


def test_an_empty_log_has_the_genesis_head(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    with AuditLog(path) as log:
        assert log.head() == (0, GENESIS)
    assert path.read_bytes() == b""
    report = verify(path, expect_head=(0, GENESIS))
    assert (report.ok, report.entries, report.head) == (True, 0, (0, GENESIS))


def test_a_second_writer_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    with AuditLog(path) as log:
        with pytest.raises(AuditError, match="in use") as err:
            AuditLog(path)
        assert not err.value.retryable
        log.record(AuditKind.CONFIG_LOADED, "system", "plants.yaml")
    with AuditLog(path) as log:  # released on close
        assert log.head()[0] == 1


def test_appending_after_close_fails(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "a.jsonl")
    log.close()
    log.close()
    with pytest.raises(AuditError, match="closed"):
        log.record(AuditKind.CONFIG_LOADED, "system", "plants.yaml")


def test_an_unreadable_last_entry_refuses_to_open(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    write_sample(path)
    lines = lines_of(path)
    lines[-1] = b"garbage"
    write_lines(path, lines)
    path.write_bytes(path.read_bytes() + b'{"seq":6')  # and a torn tail after it
    before = path.read_bytes()
    with pytest.raises(AuditError, match="last entry is unreadable"):
        AuditLog(path)
    with AuditLog(path.with_name("other.jsonl")):  # the refusal released its lock and file
        pass
    assert path.read_bytes() == before  # nothing was changed, not even the torn tail


def test_a_wrong_key_refuses_to_open(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    write_sample(path, key=KEY)
    size = path.stat().st_size
    for key in (None, SecretStr("rotated")):
        with pytest.raises(AuditError, match="does not match with this key"):
            AuditLog(path, key=key)
    assert path.stat().st_size == size


def test_a_failed_append_leaves_no_partial_line(tmp_path: Path) -> None:
    """A real write failure (file size limit, EFBIG) in a child process: the append raises a
    retryable error, the partial line is removed, the failure and the recovery are each
    logged once, and the next append continues the chain."""
    script = """
import json, resource, signal, sys
from pathlib import Path
from structlog.testing import capture_logs
from alerts.audit import AuditError, AuditKind, AuditLog, verify
path = Path(sys.argv[1])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
out = {}
with capture_logs() as logs, AuditLog(path) as log:
    log.record(AuditKind.CONFIG_LOADED, "system", "plants.yaml")
    size = path.stat().st_size
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size + 100, hard))
    errors = []
    for _ in range(2):
        try:
            log.record(AuditKind.CONFIG_CHANGED, "system", "plants.yaml", {"x": "y" * 500})
        except AuditError as err:
            errors.append(err.retryable)
    out["errors"] = errors
    out["size_unchanged"] = path.stat().st_size == size
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    out["seq"] = log.record(AuditKind.CONFIG_CHANGED, "system", "plants.yaml").seq
    out["events"] = [e["event"] for e in logs]
out["ok"] = verify(path).ok
print(json.dumps(out))
"""
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "a.jsonl")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=Path(__file__).parents[2],
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out == {
        "errors": [True, True],
        "size_unchanged": True,
        "seq": 2,
        "events": ["audit_append_failed", "audit_append_recovered"],
        "ok": True,
    }


# --- concurrency ----------------------------------------------------------------------------


def test_concurrent_appends_from_threads_form_one_valid_chain(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    threads, per_thread = 8, 40
    start = threading.Barrier(threads)
    returned: list[AuditEntry] = []
    returned_lock = threading.Lock()

    with AuditLog(path) as log:

        def worker(n: int) -> None:
            start.wait(timeout=10)
            for i in range(per_thread):
                entry = log.record(AuditKind.NOTIFICATION_SENT, f"t{n}", f"n-{n}-{i}", {"i": i})
                with returned_lock:
                    returned.append(entry)

        pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join(timeout=30)
            assert not t.is_alive()

    report = verify(path)
    assert report.ok, report.problems[:3]
    assert report.entries == threads * per_thread
    stored = read(path, limit=threads * per_thread, newest_first=False)
    assert [e.seq for e in stored] == list(range(1, threads * per_thread + 1))
    assert sorted(stored, key=lambda e: e.seq) == sorted(returned, key=lambda e: e.seq)
    for n in range(threads):  # each thread's entries are in its own order
        mine = [e.data["i"] for e in stored if e.actor == f"t{n}"]
        assert mine == list(range(per_thread))


# --- reading for the API --------------------------------------------------------------------


def test_read_filters_and_pages(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    entries = write_sample(path)  # ts: T0, T0+60s, T0+120s, T0+121s, T0+121s

    assert read(path) == entries[::-1]
    assert read(path, limit=2) == [entries[4], entries[3]]
    assert read(path, limit=2, offset=2) == [entries[2], entries[1]]
    assert read(path, limit=2, offset=1, newest_first=False) == [entries[1], entries[2]]
    assert read(path, kind=AuditKind.ACKNOWLEDGEMENT) == [entries[2]]
    assert read(path, subject="0123456789abcdef", newest_first=False) == entries[1:3]
    assert read(path, since_ns=T0 + 60 * NS_PER_S, until_ns=T0 + 121 * NS_PER_S) == [
        entries[2],
        entries[1],
    ]
    assert read(path, limit=0) == []
    assert read(path, offset=10) == []
    assert read(tmp_path / "missing.jsonl") == []
    with pytest.raises(ValueError, match="negative"):
        read(path, limit=-1)


def test_read_skips_lines_that_are_not_entries(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    entries = write_sample(path)
    lines = lines_of(path)
    lines[0] = b"not json"
    path.write_bytes(b"".join(line + b"\n" for line in lines) + b'{"seq":6')  # torn tail
    assert read(path, newest_first=False) == entries[1:]


# --- properties -----------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)
specs = st.lists(
    st.tuples(
        st.sampled_from(AuditKind),
        st.text(max_size=8),
        st.text(max_size=8),
        st.dictionaries(st.text(max_size=4), json_values, max_size=3),
    ),
    min_size=1,
    max_size=5,
)
_DIGITS = b"0123456789"
_LETTERS = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


@settings(max_examples=150, deadline=None)
@given(specs=specs, keyed=st.booleans(), data=st.data())
def test_any_log_verifies_and_any_single_byte_change_is_detected(
    specs: list[tuple[AuditKind, str, str, dict[str, object]]],
    keyed: bool,
    data: st.DataObject,
) -> None:
    key = KEY if keyed else None
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "audit.jsonl"
        clock = FakeClock()
        with AuditLog(path, key=key, clock=clock) as log:
            written = []
            for kind, actor, subject, payload in specs:
                written.append(log.record(kind, actor, subject, payload))
                clock.advance(0.001)
        report = verify(path, key=key)
        assert report.ok, report.problems
        assert report.entries == len(specs)
        assert read(path, limit=len(specs), newest_first=False) == written

        content = bytearray(path.read_bytes())
        lines = content.split(b"\n")[:-1]
        line = data.draw(st.integers(0, len(lines) - 1), label="line")
        start = sum(len(x) + 1 for x in lines[:line])
        pos = start + data.draw(st.integers(0, len(lines[line])), label="offset (incl. newline)")
        old = content[pos]
        # often a byte of the same class, so that the JSON stays valid and only the hash or
        # the chain can tell
        similar = _DIGITS if old in _DIGITS else _LETTERS if old in _LETTERS else None
        candidates = st.integers(0, 255)
        if similar is not None:
            candidates = st.sampled_from(similar) | candidates
        new = data.draw(candidates.filter(lambda b: b != old), label="new byte")
        content[pos] = new
        path.write_bytes(bytes(content))
        tampered = verify(path, key=key)
        assert not tampered.ok
        event(tampered.problems[0].reason.split(" (")[0].split(";")[0])
