"""Compliance reports from simulated data: the demo plant through live compliance into a real
SqliteStore, then the monthly and daily reports through the API (ASGI) and the CLI.

February 2026 in Europe/Vienna, readings every 15 min from 1 February 00:00 to 27 February
12:00 (the month is in progress at NOW = 27 February 12:05). boiler1 NOx is multiplied by 2.5
on 10 and 11 February (validated daily means above 110 % of the daily ELV) and is in
malfunction from 08:00 to 13:00 on 5 February (5 invalid hours: an invalid day).
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
import yaml
from fastapi import Depends, FastAPI
from pypdf import PdfReader
from pypdf.generic import ContentStream
from typer.testing import CliRunner

from api.auth import require_token
from api.context import AppContext
from api.main import create_app
from api.reports.csv import MONTHLY_COLUMNS
from api.routes import reports
from api.settings import ApiSettings
from simulators.plant import PlantSimulator
from stackwatch.report_cli import report_app
from stream.compliance.live import LiveCompliance
from stream.compliance.points import DAILY, STA
from stream.model import NS_PER_S, Reading, Status, datetime_from_ns, ns_from_datetime
from stream.plant import PlantConfig
from stream.schema import reading_to_point
from stream.storage.sqlite import SqliteStore

DEMO = Path(__file__).parents[2] / "simulators" / "demo_plant.yaml"
TZ = ZoneInfo("Europe/Vienna")
START = ns_from_datetime(datetime(2026, 2, 1, tzinfo=TZ))
END = ns_from_datetime(datetime(2026, 2, 27, 12, tzinfo=TZ)) + 1  # the 12:00 readings too
NOW = ns_from_datetime(datetime(2026, 2, 27, 12, 5, tzinfo=TZ))
EXCEEDED = (date(2026, 2, 10), date(2026, 2, 11))
INVALID_DAY = date(2026, 2, 5)
SECTIONS = 6  # limited pollutants of the demo plant: boiler1 nox/so2/dust/co, gt1 nox/co
HOUR = 3600 * NS_PER_S


def config() -> PlantConfig:
    raw = yaml.safe_load(DEMO.read_text())
    for stack in raw["plants"]["demo"]["stacks"].values():
        for sensor in stack["sensors"].values():
            sensor["interval_s"] = 900
    return PlantConfig.model_validate(raw)


def readings(cfg: PlantConfig) -> Iterator[Reading]:
    for reading in PlantSimulator(cfg, seed=5, start_ns=START).stream(until_ns=END):
        r = reading
        if r.stack == "boiler1" and r.sensor == "nox":
            local = datetime_from_ns(r.ts_ns).astimezone(TZ)
            if local.date() in EXCEEDED:
                r = replace(r, value=r.value * 2.5)
            if local.date() == INVALID_DAY and 8 <= local.hour < 13:
                r = replace(r, status=Status.MALFUNCTION)
        yield r


async def build(path: Path) -> None:
    """What the service's writer does, one day of readings per batch: store the readings,
    then the compliance points live compliance derives from them."""
    cfg = config()
    store = SqliteStore(path)
    await store.start()
    try:
        live = LiveCompliance(cfg, store, lateness_s=0)
        days: dict[int, list[Reading]] = {}
        for r in readings(cfg):
            days.setdefault((r.ts_ns - START) // (24 * HOUR), []).append(r)
        for _, batch in sorted(days.items()):
            await store.write([reading_to_point(r) for r in batch])
            derived = await live.add(batch)
            if derived:
                await store.write(derived)
    finally:
        await store.close()


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The store file, built once for the module (on its own thread: its own event loop)."""
    path = tmp_path_factory.mktemp("reports") / "stackwatch.db"
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, build(path)).result()
    return path


@pytest.fixture
async def store(db: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(db)
    await s.start()
    yield s
    await s.close()


def app_for(store: SqliteStore) -> FastAPI:
    ctx = AppContext(
        config=config(),
        store=store,
        settings=ApiSettings(),
        demo=True,
        components=dict,
        now_ns=lambda: NOW,
    )
    app = create_app(ctx)
    if not any(getattr(r, "path", "").startswith("/reports") for r in app.routes):
        app.include_router(reports.router, dependencies=[Depends(require_token)])
    return app


@pytest.fixture
async def client(store: SqliteStore) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app_for(store))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def table(text: str) -> list[dict[str, str]]:
    return list(
        csv.DictReader(
            io.StringIO(
                "".join(line for line in text.splitlines(keepends=True) if not line.startswith("#"))
            )
        )
    )


def summary(text: str, stack: str, pollutant: str) -> dict[str, str]:
    for line in text.splitlines():
        if line.startswith(f"# summary: stack={stack}; pollutant={pollutant};"):
            return dict(p.split("=", 1) for p in line.removeprefix("# summary: ").split("; "))
    raise AssertionError(f"no summary line for {stack}/{pollutant}")


def day_of(ts_ns: int) -> date:
    return datetime_from_ns(ts_ns).astimezone(TZ).date()


async def test_monthly_csv_carries_the_stored_daily_results(
    client: httpx.AsyncClient, store: SqliteStore
) -> None:
    r = await client.get("/reports/demo/monthly", params={"month": "2026-02", "format": "csv"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert (
        r.headers["content-disposition"]
        == 'attachment; filename="stackwatch-demo-monthly-2026-02.csv"'
    )
    text = r.text
    assert "# plant: demo (Demo biomass plant); time zone Europe/Vienna" in text
    assert "# period: 2026-02 (2026-02-01 to 2026-02-28, in progress)" in text
    assert "# generated: 2026-02-27T11:05:00Z" in text
    rows = table(text)
    assert tuple(rows[0]) == MONTHLY_COLUMNS
    # 27 listed days (1 to 27 February: the 28th has not begun) per limited pollutant.
    assert len(rows) == 27 * SECTIONS
    stored = {
        (p.tags["stack"], p.tags["pollutant"], day_of(p.ts_ns).isoformat()): p.fields
        for p in await store.scan(DAILY, START, NOW)
    }
    assert len(stored) == 27 * SECTIONS
    for row in rows:
        fields = stored[(row["stack"], row["pollutant"], row["date"])]
        for column, name in (
            ("validated_mean_mg_nm3", "validated_mean"),
            ("measured_mean_mg_nm3", "measured_mean"),
            ("valid_hours", "valid_hours"),
        ):
            assert float(row[column]) == fields[name], (row, column)
        for column in ("valid_sta", "invalid_sta", "excluded_sta"):
            assert int(row[column]) == fields[column]
        for column in ("valid", "invalid_day", "complete"):
            assert row[column] == str(fields[column]).lower()
    nox = {
        row["date"]: row for row in rows if row["stack"] == "boiler1" and row["pollutant"] == "nox"
    }
    assert {d for d, row in nox.items() if row["exceeded"] == "true"} == {
        d.isoformat() for d in EXCEEDED
    }
    for d in EXCEEDED:
        assert nox[d.isoformat()]["status"] == "exceeded"
        assert float(nox[d.isoformat()]["validated_mean_mg_nm3"]) > 220.0
    assert nox[INVALID_DAY.isoformat()]["status"] == "invalid_day"
    assert nox[INVALID_DAY.isoformat()]["invalid_sta"] == "5"
    assert nox["2026-02-27"]["status"] == "incomplete"
    assert nox["2026-02-27"]["exceeded"] == ""  # not judged before the day is over
    assert nox["2026-02-01"]["daily_limit_mg_nm3"] == "220.0"  # LCP: 110 % of 200
    # No other pollutant exceeds or loses a day.
    others = [row for row in rows if (row["stack"], row["pollutant"]) != ("boiler1", "nox")]
    assert {row["status"] for row in others} == {"ok", "incomplete"}

    totals = summary(text, "boiler1", "nox")
    assert totals["days_exceeded"] == "2"
    assert totals["invalid_days"] == totals["invalid_days_year"] == "1"
    # Availability: valid STA over the hours due from 1 February 00:00 to 27 February 12:00.
    sta = await store.scan(STA, START, NOW, {"stack": "boiler1", "pollutant": "nox"})
    valid = sum(1 for p in sta if p.fields["state"] == "valid")
    due = 26 * 24 + 12
    assert valid == due - 5
    assert (totals["valid_sta"], totals["expected_sta"]) == (str(valid), str(due))
    assert totals["availability"] == f"{valid / due:.4%}"
    assert summary(text, "gt1", "co")["availability"] == "100.0000%"


async def test_monthly_pdf_has_the_plots_and_the_compliance_tables(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get("/reports/demo/monthly", params={"month": "2026-02"})  # pdf: default
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["content-disposition"].endswith(
        'filename="stackwatch-demo-monthly-2026-02.pdf"'
    )
    pdf = PdfReader(io.BytesIO(r.content))
    # Title page, one page per stack and pollutant, the events page.
    assert len(pdf.pages) == 1 + SECTIONS + 1
    assert pdf.metadata is not None and pdf.metadata.title is not None
    assert "Demo biomass plant, 2026-02" in pdf.metadata.title
    texts = [page.extract_text() for page in pdf.pages]

    title = texts[0]
    for expected in (
        "Monthly emission compliance report",
        "Demo biomass plant: February 2026",
        "2026-02-01 to 2026-02-28",
        "in progress",
        "Generated:  2026-02-27 11:05:00 UTC",
        "Software:  StackWatch ",
        "LCP, IED 2010/75/EU Annex V",
        "Compliance events in the period: 3",
    ):
        assert expected in title, expected

    nox = texts[1]
    assert nox.startswith("boiler1 / NOx") or "boiler1 / NOx" in nox
    for header in ("Day", "Validated mean", "Limit", "Exceeded", "Valid hours", "Invalid day"):
        assert header in nox
    lines = nox.splitlines()
    for d in EXCEEDED:
        [line] = [x for x in lines if x.startswith(d.strftime("%a %d %b"))]
        assert line.split()[-1] == "EXCEEDED" and " 220 yes " in line
    [invalid] = [x for x in lines if x.startswith(INVALID_DAY.strftime("%a %d %b"))]
    assert invalid.endswith("invalid day")
    assert "Days above the daily limit 2 (10 Feb, 11 Feb)" in nox
    assert "Invalid days in the month 1" in nox
    assert "Invalid days in 2026 so far 1" in nox
    assert "Availability 99.2% (631 valid of 636" in nox
    # The plot: its title, axis label and legend are on the page...
    assert "NOx validated daily means, February 2026" in nox
    assert "Day of the month (local days, Europe/Vienna)" in nox
    assert "limit applied: 110% of the daily ELV 200" in nox
    for page, text in zip(pdf.pages[1 : 1 + SECTIONS], texts[1 : 1 + SECTIONS], strict=True):
        assert "validated daily means" in text
        # ...and drawn: 27 bars (filled and stroked paths, B) and 27 measured-mean markers
        # (XObjects, Do); the title page has neither.
        ops = Counter(op for _, op in ContentStream(page.get_contents(), pdf).operations)
        assert ops[b"Do"] >= 27, ops
        assert ops[b"B"] >= 27, ops
    ops = Counter(op for _, op in ContentStream(pdf.pages[0].get_contents(), pdf).operations)
    assert ops[b"Do"] == ops[b"B"] == 0

    events = texts[-1]
    assert "Compliance events of the period" in events
    assert events.count("daily limit exceeded") == 2
    assert events.count("invalid day") >= 1


async def test_report_errors(client: httpx.AsyncClient) -> None:
    r = await client.get("/reports/nowhere/monthly", params={"month": "2026-02"})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    for path, params in (
        ("monthly", {"month": "2026-13"}),
        ("monthly", {"month": "2026-2"}),
        ("monthly", {"month": "2026-03"}),  # not started at NOW
        ("monthly", {"month": "1969-12"}),
        ("monthly", {"month": "2026-02", "format": "xlsx"}),
        ("daily", {"date": "2026-02-30"}),
        ("daily", {"date": "2026-02-28"}),  # tomorrow at NOW
        ("daily", {}),
    ):
        r = await client.get(f"/reports/demo/{path}", params=params)
        assert r.status_code == 422, (path, params)
        assert r.json()["error"]["code"] == "validation_error"
    spec = (await client.get("/openapi.json")).json()
    for kind in ("daily", "monthly"):
        responses = spec["paths"][f"/reports/{{plant}}/{kind}"]["get"]["responses"]
        assert set(responses["200"]["content"]) == {"text/csv", "application/pdf"}
        assert responses["404"]["content"]["application/json"]["schema"]["$ref"].endswith(
            "/ErrorOut"
        )


async def test_today_so_far_as_daily_csv(client: httpx.AsyncClient, store: SqliteStore) -> None:
    r = await client.get("/reports/demo/daily", params={"date": "2026-02-27", "format": "csv"})
    assert r.status_code == 200
    rows = [x for x in table(r.text) if x["stack"] == "boiler1" and x["pollutant"] == "nox"]
    assert len(rows) == 12  # the hours of the day that are over
    assert rows[0]["period_start"] == "2026-02-27T00:00:00+01:00"
    assert rows[-1]["period_end"] == "2026-02-27T12:00:00+01:00"
    assert summary(r.text, "boiler1", "nox")["day_status"] == "incomplete"


def test_cli_writes_the_daily_pdf_and_the_monthly_csv(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the default output file lands here; no stray .env
    runner = CliRunner()
    env = {"STACKWATCH_DATA_DIR": str(db.parent), "STACKWATCH_MODE": "demo"}

    result = runner.invoke(
        report_app,
        ["daily", "--plant", "demo", "--date", "2026-02-10", "--format", "pdf"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    pdf = PdfReader(tmp_path / "stackwatch-demo-daily-2026-02-10.pdf")
    assert len(pdf.pages) == 1 + SECTIONS + 1  # the day has one event: NOx above its limit
    text = "\n".join(page.extract_text() for page in pdf.pages)
    assert "Daily emission compliance report" in text
    assert "Demo biomass plant: Tuesday 10 February 2026" in text
    assert "NOx validated short-term averages (60 min), Tuesday 10 February 2026" in text
    for header in ("Period", "State", "Validated", "Limit", "Above limit"):
        assert header in text
    assert "Daily limit exceeded yes" in text
    assert "Invalid days in 2026 so far 1" in text  # 5 February, before the reported day
    assert "00:00–01:00" in text and "23:00–00:00" in text

    out = tmp_path / "feb.csv"
    result = runner.invoke(
        report_app,
        ["monthly", "-p", "demo", "-m", "2026-02", "-f", "csv", "-o", str(out)],
        env=env,
    )
    assert result.exit_code == 0, result.output
    rows = table(out.read_text())
    nox = {
        row["date"]: row for row in rows if row["stack"] == "boiler1" and row["pollutant"] == "nox"
    }
    # Generated now (after February): every day is listed; the 28th has no stored result.
    assert len(nox) == 28
    assert nox["2026-02-28"]["status"] == "no_data"
    assert nox["2026-02-10"]["status"] == "exceeded"

    result = runner.invoke(report_app, ["monthly", "-p", "nowhere", "-m", "2026-02"], env=env)
    assert result.exit_code == 2
    assert "plant 'nowhere' is not configured" in result.output
    result = runner.invoke(
        report_app,
        ["monthly", "-p", "demo", "-m", "2026-02"],
        env=env | {"STACKWATCH_DATA_DIR": str(tmp_path / "empty")},
    )
    assert result.exit_code == 2
    assert "no stored data" in result.output
    assert not (tmp_path / "empty").exists()
