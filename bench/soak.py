"""Soak: the full ``stackwatch run`` at a fixed rate for a long time, against a real Mosquitto
and a real InfluxDB, watching memory, backlog and loss.

A generated plant (``sensors``, default 5 000 at 1 Hz, so 5 000 readings/s) is published by
:class:`bench.mqttload.PacedPublisher` (QoS 1, one reading per message, ``ts`` = the wall
clock) for ``minutes`` (default 10). Every 5 s the service's RSS (``/proc``, with its
collector process) and its backlog (messages received minus readings stored, from
``/metrics``) are sampled. At the end the
publisher stops, the service drains, and InfluxDB is asked how many readings it holds:

* ``rss_growth_pct``: RSS at the end against RSS after the warm-up (the first ``warmup``
  fraction of the run, default 20 %). The detection models of the generated plant warm up in
  ``detection_warmup_s`` (default 60 s, set in the plant file): until then each sensor keeps
  its raw scores to calibrate on, which is transient memory, not growth;
* ``backlog_max``: the largest backlog seen (it stays near zero when the service keeps up);
* ``lost`` and ``duplicates``: published minus stored, and stored minus published, as
  counted in InfluxDB (a reading is one point per series and timestamp, so a redelivery
  would overwrite, and extra points would mean duplicates under other keys).

``python -m bench soak [--set minutes=10] [--set rate=5000] [--set sensors=5000]
[--set detection_warmup_s=60]``;
``--quick`` runs one minute. Not part of ``make bench`` by default (it takes the whole
``minutes``): run it by name.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import yaml

from bench import BenchOptions, BenchResult, Metric, benchmark
from bench.e2e import Harness, Sizes, service_counters
from bench.e2e_worker import status_kib, tree_total
from bench.mqttload import PacedPublisher
from tests.servers import influxdb, mosquitto

_SAMPLE_S = 5.0
_DRAIN_S = 120.0


def _rss_kib(pid: int) -> int:
    """RSS of the service and its collector process together."""
    return round(tree_total(pid, lambda p: status_kib(p, "VmRSS")))


def _stored(http: httpx.Client, influx_url: str, database: str) -> int:
    resp = http.get(
        f"{influx_url}/query",
        params={"db": database, "q": 'SELECT count("value") FROM "readings"'},
    )
    series = resp.json()["results"][0].get("series")
    return int(series[0]["values"][0][1]) if series else 0


def soak(
    tmp: Path,
    *,
    minutes: float,
    rate: float,
    sensors: int,
    warmup: float,
    detection_warmup_s: float,
) -> tuple[BenchResult, list[tuple[float, int, int]]]:
    """Run the soak; returns the result and the samples (seconds, RSS KiB, backlog)."""
    with mosquitto(tmp / "mosquitto") as broker, influxdb(tmp / "influxdb") as influx:
        harness = Harness(tmp, broker, influx, Sizes.of(BenchOptions(quick=True)))
        plant, generated = harness.plant(sensors)
        config = tmp / "soak-plant.yaml"
        document = yaml.safe_load(generated.read_text())
        for p in document["plants"].values():
            for stack in p["stacks"].values():
                stack["detection"] = {"warmup_s": detection_warmup_s}
        config.write_text(yaml.safe_dump(document, sort_keys=False))
        workdir, run = harness._workdir("soak")
        env = harness.env(run, config, workdir)
        port = int(env["STACKWATCH_API_PORT"])
        database = env["STACKWATCH_INFLUX_DATABASE"]
        args = [sys.executable, "-m", "stackwatch.cli", "run"]
        samples: list[tuple[float, int, int]] = []
        with harness._process(args, env, workdir) as proc, httpx.Client(timeout=10) as http:
            harness._healthy(proc, port, workdir)
            publisher = PacedPublisher(broker.port, plant, env["STACKWATCH_MQTT_TOPIC_PREFIX"])
            duration = minutes * 60.0
            done = threading.Event()
            started = time.monotonic()

            def publish() -> None:
                try:
                    publisher.run(rate, duration)
                finally:
                    done.set()

            thread = threading.Thread(target=publish, name="soak-publisher")
            thread.start()
            try:
                while not done.wait(_SAMPLE_S):
                    if proc.poll() is not None:
                        raise harness._failed(proc, workdir)
                    received, stored = service_counters(http, port)
                    samples.append(
                        (time.monotonic() - started, _rss_kib(proc.pid), received - stored)
                    )
            finally:
                thread.join()
                publisher.close()
            published = publisher.published
            deadline = time.monotonic() + _DRAIN_S
            stored_now = 0
            while time.monotonic() < deadline:
                stored_now = _stored(http, influx.url, database)
                if stored_now >= published:
                    break
                time.sleep(1.0)  # polling InfluxDB while the service drains
            received, stored_metric = service_counters(http, port)
            rss_end = _rss_kib(proc.pid)
    after_warmup = [s for s in samples if s[0] >= warmup * minutes * 60.0]
    rss_warm = after_warmup[0][1] if after_warmup else samples[0][1]
    growth = 100.0 * (rss_end - rss_warm) / rss_warm if rss_warm else float("nan")
    metrics = [
        Metric("rate", published / (minutes * 60.0), "readings/s"),
        Metric("rss_after_warmup", rss_warm / 1024, "MiB"),
        Metric("rss_end", rss_end / 1024, "MiB"),
        Metric("rss_growth", growth, "%"),
        Metric("backlog_max", float(max((s[2] for s in samples), default=0)), "messages"),
        Metric("published", float(published), "readings"),
        Metric("stored", float(stored_now), "readings"),
        Metric("lost", float(max(0, published - stored_now)), "readings"),
        Metric("duplicates", float(max(0, stored_now - published)), "readings"),
    ]
    params = {"minutes": minutes, "rate": rate, "sensors": sensors, "warmup": warmup,
              "detection_warmup_s": detection_warmup_s, "received": received,
              "stored_metric": stored_metric}  # fmt: skip
    return BenchResult(metrics, params), samples


@benchmark(
    "soak", "full pipeline at a fixed rate for minutes: RSS growth, backlog, loss", default=False
)
def run(options: BenchOptions) -> BenchResult:
    minutes = options.number("minutes", 1.0 if options.quick else 10.0)
    rate = options.number("rate", 5000.0)
    sensors = int(options.number("sensors", rate))  # 1 Hz each
    warmup = options.number("warmup", 0.2)
    detection_warmup_s = options.number("detection_warmup_s", 60.0)
    with tempfile.TemporaryDirectory(prefix="stackwatch-soak-") as tmp:
        result, samples = soak(
            Path(tmp),
            minutes=minutes,
            rate=rate,
            sensors=sensors,
            warmup=warmup,
            detection_warmup_s=detection_warmup_s,
        )
    for t, rss, backlog in samples:
        print(f"  t={t:6.0f} s  rss={rss / 1024:7.1f} MiB  backlog={backlog}", file=sys.stderr)
    return result
