"""End to end over a real Mosquitto and InfluxDB 1.x: the broker's limit and what StackWatch
sustains against it, measured in one run on one broker with the same payloads.

1. **Limits**: ``mosquitto_pub -l`` → ``mosquitto_sub -C N`` (QoS 1) is the broker's limit on
   this machine (``c_limit``, the denominator of every ratio); a bare paho-mqtt + orjson
   subscriber is the Python limit; InfluxDB fed pre-encoded write batches of the service's
   points back to back is the store's limit (``influxdb_limit``, readings/s;
   :mod:`bench.storelimit`).
2. **Stages** (:mod:`bench.e2e_worker`, each its own process, fed at QoS 1 by a paho publisher
   process at full speed): ``collector``, ``+detection``, ``+compliance``, ``+storage``
   (InfluxDB), then ``service``: the real ``stackwatch run`` process (alerts, PEMS, API).
   Each gets a fresh topic prefix, client id and database. The rate is readings/s from the
   first message received until the last reading was acknowledged; the service's (sampled
   from its ``/metrics`` every 100 ms) is the sustained rate, from a fifth of its readings
   stored on (``service_readings``, 100 000 by default), so its start-up (loading the open
   days, their first compliance evaluation) is not counted. The publisher is several times
   faster, so the broker holds a backlog throughout and this is the rate the stage keeps up
   with. Runs are many write batches long (5 000 readings each by default), or the batch
   granularity would show. CPU % is process CPU time over that wall time (100 % = one core;
   the service's includes its collector process), RSS the peak (the service's: the sum of
   both processes' peaks); ``publisher`` is the feeding publisher's own rate (a stage near it
   is publisher-bound). Detection in these runs starts from **warm models**: a checkpoint
   of the plant's models after their warm-up (:mod:`bench.warmstate`, built once in this
   process), whose time line the runs' readings continue. A plant runs warm nearly all the
   time, and warm models cost more per reading (the consistency model and the calibrated
   likelihoods only score once warm), so a run from cold models would measure the cheaper
   regime.
3. **Latency**: the whole service in one process (:mod:`bench.e2e_worker` ``service``) fed
   by :class:`~bench.mqttload.PacedPublisher` at 25 %, 50 % and 90 % of the service's
   measured rate, from warm models; ``ts`` is the publisher's wall clock less a fixed
   offset that continues the warm models' time line, so publish → stored and publish →
   scored are write time − (``ts`` + offset); publish → alert is a rate-of-change fault (a
   NOx jump) until its notification arrives on the MQTT alert topic (the alert flush
   interval, 1 s by default, is part of it).
4. **Scale**: ``+compliance`` with 100, 1 000 and 10 000 sensors: throughput at full speed
   (and its peak RSS, which includes the backlog the collector holds), then a run paced at
   half that rate for memory: peak RSS, RSS per added sensor (slope from the smallest plant)
   and the detection checkpoint size per sensor. These runs start from cold models (a warm
   checkpoint of 10 000 sensors would take minutes to build), so their rates are not
   comparable with the stage rates; the paced runs' models have seen ``scale_steps``
   readings per sensor.
5. **Batched**: the service with 50 readings per message.

The plant is generated (:mod:`bench.plantgen`): 8 analysers per stack, 10 stacks per plant,
1 000 sensors unless ``--set sensors=N``. ``--set`` also takes ``readings`` (per stage run),
``service_readings``, ``batch_readings``, ``store_batches`` (write batches for the store's
limit), ``c_messages``, ``paho_messages``, ``latency_s`` (per
rate), ``alert_flush_s``, ``scale=100,1000,10000``, ``scale_steps`` (readings per sensor in the
paced memory runs) and ``profile=PATH``: py-spy samples the service during its full-speed
run and the top functions go to PATH (needs ``pip install py-spy``; see :mod:`bench.pyspy`).

Each number is one run (the broker and the stage share two cores, so repeats would mostly
measure the neighbours); rerun on a quiet machine for numbers to compare.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from bench import BenchOptions, BenchResult, Metric, benchmark
from bench.e2e_worker import STALL_S, rss_peak_kib, tree_total
from bench.mqttload import (
    AlertListener,
    PacedPublisher,
    c_limit,
    paho_limit,
    publisher_result,
    sensor_messages,
    start_publisher,
    write_messages,
)
from bench.plantgen import GeneratedPlant, alerts_yaml, generate_plant
from bench.pyspy import profiled, pyspy_executable
from bench.storelimit import influx_limit, write_bodies
from bench.warmstate import warm_checkpoint
from stackwatch.settings import ServiceSettings
from tests.servers import InfluxServer, MosquittoServer, free_port, influxdb, mosquitto

ROOT = Path(__file__).resolve().parent.parent
STEP_MS = 1000
WARMUP_SHARE = 0.2
"""Share of a service run's readings stored before its sustained rate is measured."""
MIN_SUSTAINED_S = 2.0
"""A shorter sustained window is a sample or two of 100 ms: rates and CPU would be noise."""
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_WAIT_S = 60.0
_COUNTERS = ("stackwatch_messages_received_total", "stackwatch_readings_stored_total")


@dataclass(frozen=True)
class Sizes:
    """Workload sizes (``--quick`` shrinks them, ``--set`` overrides)."""

    sensors: int
    c_messages: int
    paho_messages: int
    readings: int
    service_readings: int
    batch_readings: int
    store_batches: int
    latency_s: float
    scale: tuple[int, ...]
    scale_steps: int

    @classmethod
    def of(cls, options: BenchOptions) -> Sizes:
        quick = options.quick
        scale = options.params.get("scale")
        try:
            counts = tuple(int(n) for n in scale.split(",")) if scale else ()
        except ValueError:
            raise ValueError(f"--set scale={scale}: give sensor counts like 100,1000") from None
        if scale and (len(counts) < 2 or min(counts) < 1):  # a slope needs two
            raise ValueError(f"--set scale={scale}: give at least two positive sensor counts")
        return cls(
            sensors=int(options.number("sensors", 1000)),
            c_messages=int(options.number("c_messages", 30_000 if quick else 200_000)),
            paho_messages=int(options.number("paho_messages", 10_000 if quick else 100_000)),
            readings=int(options.number("readings", 6_000 if quick else 50_000)),
            service_readings=int(options.number("service_readings", 40_000 if quick else 100_000)),
            batch_readings=int(options.number("batch_readings", 20_000 if quick else 200_000)),
            store_batches=int(options.number("store_batches", 8 if quick else 40)),
            latency_s=options.number("latency_s", 0.75 if quick else 4.0),
            scale=tuple(sorted(counts)) or ((100, 1000) if quick else (100, 1000, 10_000)),
            scale_steps=int(options.number("scale_steps", 3 if quick else 5)),
        )


@dataclass(frozen=True)
class StageRun:
    """One stage's numbers."""

    rate: float  # readings/s
    cpu_pct: float
    rss_mib: float
    pub_rate: float  # messages/s of the feeding publisher
    state_bytes: int = 0
    # Where the machine's CPU went meanwhile (full service runs): the 2-core budget.
    broker_cpu_pct: float = float("nan")
    influx_cpu_pct: float = float("nan")
    machine_busy_pct: float = float("nan")  # all cores: 200 % is a saturated 2-core machine


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def _machine_busy_s() -> float:
    """CPU seconds spent on all cores (not idle, not waiting for I/O) since boot."""
    jiffies = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(jiffies[:8]) - jiffies[3] - jiffies[4]) / _CLK_TCK


def _wait(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {timeout} s")
        time.sleep(0.02)


def _percentiles_ms(latency_ns: np.ndarray) -> tuple[float, float]:
    if latency_ns.size == 0:
        return float("nan"), float("nan")
    p50, p99 = np.percentile(latency_ns, [50, 99]) / 1e6
    return float(p50), float(p99)


def service_counters(http: httpx.Client, port: int) -> tuple[int, int]:
    """(messages received, readings stored) from a running service's ``/metrics``."""
    found = dict.fromkeys(_COUNTERS, 0)
    for line in http.get(f"http://127.0.0.1:{port}/metrics").text.splitlines():
        name, _, value = line.partition(" ")
        if name in found:
            found[name] = int(float(value))
    return found[_COUNTERS[0]], found[_COUNTERS[1]]


class Harness:
    """The servers of one run, plus what is needed to start stages against them."""

    def __init__(
        self,
        tmp: Path,
        broker: MosquittoServer,
        influx: InfluxServer,
        sizes: Sizes,
        profile: Path | None = None,
    ) -> None:
        self.profile = profile
        self.tmp = tmp
        self.broker = broker
        self.influx = influx
        self.sizes = sizes
        self._runs = 0
        self._plants: dict[int, tuple[GeneratedPlant, Path]] = {}
        self._warm: dict[int, Path] = {}
        # The warm runs' readings start here, right after their models' warm-up data; every
        # run has its own database, so all can replay the same stretch of time. It ends
        # about now: the longest run's steps back from the start of the benchmark.
        longest = max(sizes.readings, sizes.service_readings, sizes.batch_readings)
        steps = -(-longest // sizes.sensors) + 50
        self._warm_start_ms = (time.time_ns() // 1_000_000 // STEP_MS - steps) * STEP_MS

    # -- plumbing ------------------------------------------------------------------------

    def plant(self, n: int) -> tuple[GeneratedPlant, Path]:
        if n not in self._plants:
            plant = generate_plant(n)
            path = self.tmp / f"plant-{n}.yaml"
            path.write_text(plant.yaml)
            self._plants[n] = (plant, path)
        return self._plants[n]

    def _workdir(self, name: str) -> tuple[Path, str]:
        self._runs += 1
        run = f"{name}-{self._runs}"
        workdir = self.tmp / run
        workdir.mkdir()
        return workdir, run

    def env(self, run: str, config: Path, workdir: Path, **extra: str) -> dict[str, str]:
        prefix = f"bench/{run}"
        return {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "STACKWATCH_MODE": "demo",
            "STACKWATCH_CONFIG": str(config),
            "STACKWATCH_DATA_DIR": str(workdir / "data"),
            "STACKWATCH_LOG_FORMAT": "json",
            "STACKWATCH_LOG_LEVEL": "WARNING",
            "STACKWATCH_MQTT_URL": self.broker.url,
            "STACKWATCH_MQTT_TOPIC_PREFIX": prefix,
            "STACKWATCH_MQTT_DEADLETTER_TOPIC": f"{prefix}/deadletter",
            "STACKWATCH_MQTT_CLIENT_ID": f"sw-{run}",
            "STACKWATCH_INFLUX_URL": self.influx.url,
            "STACKWATCH_INFLUX_DATABASE": f"bench_{run.replace('-', '_')}",
            "STACKWATCH_API_PORT": str(free_port()),
            **extra,
        }

    def warm_models(self, n_sensors: int, path: Path) -> None:
        """Put the checkpoint of warm detection models of the ``n_sensors`` plant at ``path``
        (:mod:`bench.warmstate`; built once per plant), for readings from the warm start."""
        built = self._warm.get(n_sensors)
        if built is None:
            plant, config = self.plant(n_sensors)
            built = self.tmp / f"warm-{n_sensors}.state"
            warm = warm_checkpoint(
                plant, config, built, end_ms=self._warm_start_ms, step_ms=STEP_MS
            )
            if warm < n_sensors:
                raise RuntimeError(f"only {warm} of {n_sensors} sensors warm after the warm-up")
            self._warm[n_sensors] = built
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built, path)

    def _messages(
        self, n_sensors: int, prefix: str, readings: int, per_message: int, *, warm: bool
    ) -> Path:
        """The run's messages: from the warm start (after the warm models' data), or cold,
        ending now."""
        plant, _ = self.plant(n_sensors)
        steps = -(-readings // n_sensors) + per_message
        start_ms = self._warm_start_ms if warm else (time.time_ns() // 1_000_000) - steps * STEP_MS
        msgs = sensor_messages(
            plant, prefix, readings=readings, start_ms=start_ms, per_message=per_message
        )
        path = self.tmp / f"{prefix.replace('/', '_')}.msgs"
        write_messages(msgs, path)
        return path

    @contextmanager
    def _process(
        self, args: list[str], env: Mapping[str, str], workdir: Path
    ) -> Iterator[subprocess.Popen[bytes]]:
        with (workdir / "process.log").open("wb") as log:
            proc = subprocess.Popen(args, env=env, cwd=workdir, stdout=log, stderr=log)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)

    def _failed(self, proc: subprocess.Popen[bytes], workdir: Path) -> RuntimeError:
        log = (workdir / "process.log").read_text(errors="replace")[-3000:]
        return RuntimeError(f"{proc.args!r} exited {proc.returncode}:\n{log}")

    def _healthy(self, proc: subprocess.Popen[bytes], port: int, workdir: Path) -> None:
        def ok() -> bool:
            if proc.poll() is not None:
                raise self._failed(proc, workdir)
            try:
                return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        _wait(ok, _WAIT_S, "service healthy")

    # -- 1. limits -----------------------------------------------------------------------

    def limits(self) -> tuple[float, float, float]:
        """(C clients, bare paho) messages/s on the stage payloads, and the readings/s
        InfluxDB alone takes (:mod:`bench.storelimit`)."""
        s = self.sizes
        payloads = write_messages(
            sensor_messages(
                self.plant(s.sensors)[0], "x", readings=s.c_messages, start_ms=1_765_000_000_000
            )[: s.c_messages],
            self.tmp / "limit.msgs",
        )
        c = c_limit(self.broker.port, "bench/c", payloads, s.c_messages)
        lines = payloads.read_bytes().splitlines(keepends=True)[: s.paho_messages]
        short = self.tmp / "paho.payloads"
        short.write_bytes(b"".join(lines))
        py = paho_limit(self.broker.port, "bench/paho", short, len(lines))
        batch = ServiceSettings.model_fields["write_batch_size"].default  # the writer's
        bodies = write_bodies(self.plant(s.sensors)[0].sensors, batch, s.store_batches)
        self.influx.create_database("bench_store_limit")
        store = influx_limit(self.influx.url, "bench_store_limit", bodies, batch)
        return c, py, store

    # -- 2. stages -----------------------------------------------------------------------

    def stage(
        self,
        stage: str,
        n_sensors: int,
        readings: int,
        paced: float | None = None,
        *,
        warm: bool = False,
    ) -> StageRun:
        """One :mod:`bench.e2e_worker` stage fed at full speed, or at ``paced`` readings/s
        (whole time steps of every sensor: ``readings`` is rounded up to them); with
        ``warm`` (full speed only), detection starts from warm models."""
        workdir, run = self._workdir(stage)
        plant, config = self.plant(n_sensors)
        env = self.env(run, config, workdir)
        prefix = env["STACKWATCH_MQTT_TOPIC_PREFIX"]
        if warm:
            if paced is not None:
                raise ValueError("a paced run publishes live: its models cannot be pre-warmed")
            self.warm_models(n_sensors, workdir / "detection.state")
        if paced is None:
            messages = self._messages(n_sensors, prefix, readings, 1, warm=warm)
            expected = sum(1 for _ in messages.open("rb"))
        else:
            expected = -(-readings // n_sensors) * n_sensors
        args = [sys.executable, "-m", "bench.e2e_worker", stage, str(expected), str(workdir)]
        with self._process(args, env, workdir) as proc:

            def ready() -> bool:
                if proc.poll() is not None:
                    raise self._failed(proc, workdir)
                return (workdir / "ready").exists()

            _wait(ready, _WAIT_S, f"{stage} subscribed")
            if paced is None:
                pub_log = workdir / "publisher.log"
                pub = start_publisher(self.broker.port, messages, pub_log)
                pub_rate = publisher_result(pub, pub_log)
            else:
                publisher = PacedPublisher(self.broker.port, plant, prefix)
                try:
                    publisher.run(paced, float("inf"), limit=expected)
                finally:
                    publisher.close()
                pub_rate = paced
            proc.wait(600)
            if proc.returncode != 0:
                raise self._failed(proc, workdir)
        doc = json.loads((workdir / "result.json").read_text())
        if doc["readings"] < expected:
            raise RuntimeError(
                f"stage {stage} stopped after {doc['readings']} of {expected} readings "
                f"({doc['rejected']} rejected); see {workdir}"
            )
        wall_s = (doc["done_ns"] - doc["first_ns"]) / 1e9
        return StageRun(
            rate=doc["readings"] / wall_s,
            cpu_pct=100 * (doc["done_cpu_s"] - doc["first_cpu_s"]) / wall_s,
            rss_mib=doc["rss_peak_kib"] / 1024,
            pub_rate=pub_rate,
            state_bytes=doc["detection_state_bytes"],
        )

    def service(self, n_sensors: int, readings: int, per_message: int = 1) -> StageRun:
        """The real ``stackwatch run`` process; progress from its ``/metrics``."""
        workdir, run = self._workdir(f"service{per_message}")
        _, config = self.plant(n_sensors)
        env = self.env(run, config, workdir)
        prefix = env["STACKWATCH_MQTT_TOPIC_PREFIX"]
        self.warm_models(n_sensors, workdir / "data" / "models" / "detection.state")
        messages = self._messages(n_sensors, prefix, readings, per_message, warm=True)
        expected = sum(1 for _ in messages.open("rb")) * per_message
        port = int(env["STACKWATCH_API_PORT"])
        args = [sys.executable, "-m", "stackwatch.cli", "run"]
        with self._process(args, env, workdir) as proc, httpx.Client(timeout=5) as http:
            self._healthy(proc, port, workdir)

            pub_log = workdir / "publisher.log"
            pub = start_publisher(self.broker.port, messages, pub_log)
            profile = self.profile if per_message == 1 else None
            with profiled(proc.pid, profile) if profile else contextlib.nullcontext():
                samples = self._progress(
                    proc, workdir, functools.partial(service_counters, http, port), expected
                )
            # The sum of both processes' peaks: an upper bound of the peak of the sum.
            rss = round(tree_total(proc.pid, rss_peak_kib))
            pub_rate = publisher_result(pub, pub_log)
        # Sustained: from the moment a fifth of the readings is stored, so the start-up work
        # (loading the open days from the store, their first compliance evaluation, model
        # warm-up) does not count against the rate the service keeps up with.
        done = samples[-1]
        first = next(s for s in samples if s[2] >= expected * WARMUP_SHARE)
        if done[0] - first[0] < MIN_SUSTAINED_S:  # a few write batches: use the whole run
            first = next(s for s in samples if s[2] > 0)
        wall_s = done[0] - first[0]

        def pct(i: int) -> float:
            return 100 * (done[i] - first[i]) / wall_s

        return StageRun(
            rate=(done[2] - first[2]) / wall_s,
            cpu_pct=pct(3),
            rss_mib=rss / 1024,
            pub_rate=pub_rate,
            broker_cpu_pct=pct(4),
            influx_cpu_pct=pct(5),
            machine_busy_pct=pct(6),
        )

    def _progress(
        self,
        proc: subprocess.Popen[bytes],
        workdir: Path,
        counters: Callable[[], tuple[int, int]],
        expected: int,
    ) -> list[tuple[float, int, int, float, float, float, float]]:
        """Samples (time, messages received, readings stored, CPU s of the service, of the
        broker, of InfluxDB, busy CPU s of the machine) every 100 ms until ``expected``
        readings are stored."""
        samples: list[tuple[float, int, int, float, float, float, float]] = []
        progress_at = time.monotonic()
        while not samples or samples[-1][2] < expected:
            if proc.poll() is not None:
                raise self._failed(proc, workdir)
            sample = (
                time.perf_counter(),
                *counters(),
                tree_total(proc.pid, _cpu_s),
                _cpu_s(self.broker.proc.pid),
                _cpu_s(self.influx.proc.pid),
                _machine_busy_s(),
            )
            if samples and sample[1:3] != samples[-1][1:3]:
                progress_at = time.monotonic()
            elif time.monotonic() - progress_at > STALL_S:
                raise TimeoutError(f"service stalled at {sample[2]} of {expected} readings")
            samples.append(sample)
            time.sleep(0.1)  # sampling period: each /metrics scrape costs the service CPU
        return samples

    # -- 3. latency ----------------------------------------------------------------------

    def latency(
        self, max_rate: float, fractions: tuple[float, ...], alert_flush_s: float
    ) -> list[tuple[float, float, float, float, float, float, float]]:
        """Per fraction of ``max_rate``: (rate, stored p50, p99, scored p50, p99, alert p50,
        alert max) in readings/s and ms."""
        s = self.sizes
        plant, config = self.plant(s.sensors)
        workdir, run = self._workdir("latency")
        alerts = workdir / "alerts.yaml"
        env = self.env(
            run,
            config,
            workdir,
            STACKWATCH_ALERTS_CONFIG=str(alerts),
            STACKWATCH_ALERTS_FLUSH_INTERVAL_S=str(alert_flush_s),
        )
        prefix = env["STACKWATCH_MQTT_TOPIC_PREFIX"]
        alerts.write_text(alerts_yaml(self.broker.url, prefix))
        port = int(env["STACKWATCH_API_PORT"])
        args = [sys.executable, "-m", "bench.e2e_worker", "service", "0", str(workdir)]
        phases: list[tuple[float, int, int, int]] = []  # rate, first ts, last ts, injections
        self.warm_models(s.sensors, workdir / "data" / "models" / "detection.state")
        with self._process(args, env, workdir) as proc:
            self._healthy(proc, port, workdir)
            listener = AlertListener(self.broker.port, prefix)
            # Live readings continue the warm models' time line: data time is the wall clock
            # less this offset (latencies add it back).
            offset = time.time_ns() - self._warm_start_ms * 1_000_000
            publisher = PacedPublisher(self.broker.port, plant, prefix, data_offset_ns=offset)
            try:
                publisher.run(max_rate * fractions[0], s.latency_s / 2)  # warm-up, not counted
                for fraction in fractions:
                    rate = max_rate * fraction
                    before = len(publisher.injections)
                    first, last = publisher.run(rate, s.latency_s, faults=3)
                    phases.append((rate, first, last, before))
                wanted = {
                    (i.sensor.plant, i.sensor.stack, i.sensor.sensor) for i in publisher.injections
                }
                with contextlib.suppress(TimeoutError):  # missing ones are reported as nan
                    _wait(lambda: wanted <= set(listener.first_firing()), 30, "alerts")
            finally:
                publisher.close()
                listener.close()
            proc.send_signal(signal.SIGTERM)
            proc.wait(120)
        data = np.load(workdir / "latency.npz")
        fired = listener.first_firing()
        out = []
        for k, (rate, first, last, before) in enumerate(phases):
            row: list[float] = [rate]
            for kind in ("stored", "scored"):
                ts, at = data[f"{kind}_ts"], data[f"{kind}_at"]
                mask = (ts >= first) & (ts <= last)
                row += _percentiles_ms(at[mask] - (ts[mask] + offset))
            end = phases[k + 1][3] if k + 1 < len(phases) else len(publisher.injections)
            alert_ns = [
                fired[key] - i.published_ns
                for i in publisher.injections[before:end]
                if (key := (i.sensor.plant, i.sensor.stack, i.sensor.sensor)) in fired
            ]
            if alert_ns and len(alert_ns) == end - before:
                row += [float(np.median(alert_ns)) / 1e6, max(alert_ns) / 1e6]
            else:
                row += [float("nan"), float("nan")]
            out.append((row[0], row[1], row[2], row[3], row[4], row[5], row[6]))
        return out


def _stage_metrics(
    name: str, r: StageRun, limit: float, target: float | None = None
) -> list[Metric]:
    return [
        Metric(f"{name}_rate", r.rate, "readings/s", target),
        Metric(f"{name}_vs_c_limit", r.rate / limit, "x"),
        Metric(f"{name}_cpu", r.cpu_pct, "%"),
        Metric(f"{name}_rss_peak", r.rss_mib, "MiB"),
        Metric(f"{name}_publisher", r.pub_rate, "msg/s"),
    ]


@benchmark("e2e", "end to end over Mosquitto + InfluxDB vs the C-client limit, in one run")
def run(options: BenchOptions) -> BenchResult:
    s = Sizes.of(options)
    alert_flush_s = options.number("alert_flush_s", 1.0)
    profile = Path(options.params["profile"]) if "profile" in options.params else None
    if profile is not None:
        pyspy_executable()  # fail now, not after the limits and stages
    fractions = (0.25, 0.5, 0.9)
    metrics: list[Metric] = []
    params: dict[str, object] = {
        "sensors": s.sensors,
        "c_messages": s.c_messages,
        "paho_messages": s.paho_messages,
        "readings": s.readings,
        "service_readings": s.service_readings,
        "batch_readings": s.batch_readings,
        "store_batches": s.store_batches,
        "latency_s": s.latency_s,
        "scale": list(s.scale),
        "alert_flush_s": alert_flush_s,
        "qos": 1,
    }
    with tempfile.TemporaryDirectory(prefix="stackwatch-bench-") as tmp_name:
        tmp = Path(tmp_name)
        with mosquitto(tmp / "mosquitto") as broker, influxdb(tmp / "influxdb") as influx:
            h = Harness(tmp, broker, influx, s, profile)

            started = time.perf_counter()

            def log(text: str) -> None:
                at = time.perf_counter() - started
                print(f"  e2e [{at:5.1f} s] {text}", file=sys.stderr, flush=True)

            c, py, store = h.limits()
            log(f"limits: C {c:,.0f} msg/s, paho {py:,.0f} msg/s, InfluxDB {store:,.0f} readings/s")
            metrics += [
                Metric("c_limit", c, "msg/s"),
                Metric("paho_limit", py, "msg/s"),
                Metric("paho_vs_c_limit", py / c, "x"),
                Metric("influxdb_limit", store, "readings/s"),
            ]
            for stage in ("collector", "detection", "compliance", "storage"):
                r = h.stage(stage, s.sensors, s.readings, warm=stage != "collector")
                log(f"{stage}: {r.rate:,.0f} readings/s, {r.cpu_pct:.0f} % CPU")
                metrics += _stage_metrics(stage, r, c)
            svc = h.service(s.sensors, s.service_readings)
            log(f"service: {svc.rate:,.0f} readings/s, {svc.cpu_pct:.0f} % CPU")
            metrics += _stage_metrics("service", svc, c, target=30_000)
            metrics += [
                Metric("service_vs_influxdb_limit", svc.rate / store, "x"),
                Metric("service_broker_cpu", svc.broker_cpu_pct, "%"),
                Metric("service_influxdb_cpu", svc.influx_cpu_pct, "%"),
                Metric("service_machine_busy", svc.machine_busy_pct, "% of 200"),
            ]
            log(
                f"meanwhile: Mosquitto {svc.broker_cpu_pct:.0f} %, InfluxDB "
                f"{svc.influx_cpu_pct:.0f} %, machine {svc.machine_busy_pct:.0f} % of 200 %"
            )
            batch = h.service(s.sensors, s.batch_readings, per_message=50)
            log(f"service, 50 per message: {batch.rate:,.0f} readings/s")
            metrics += _stage_metrics("batch50_service", batch, c, target=100_000)
            metrics += [
                Metric("batch50_vs_influxdb_limit", batch.rate / store, "x"),
                Metric("batch50_broker_cpu", batch.broker_cpu_pct, "%"),
                Metric("batch50_influxdb_cpu", batch.influx_cpu_pct, "%"),
                Metric("batch50_machine_busy", batch.machine_busy_pct, "% of 200"),
            ]

            for rate, st50, st99, sc50, sc99, al50, almax in h.latency(
                svc.rate, fractions, alert_flush_s
            ):
                pct = round(100 * rate / svc.rate)
                log(f"latency at {pct} % ({rate:,.0f}/s): scored p99 {sc99:.1f} ms")
                metrics += [
                    Metric(f"latency{pct}_rate", rate, "readings/s"),
                    Metric(f"latency{pct}_stored_p50", st50, "ms"),
                    Metric(f"latency{pct}_stored_p99", st99, "ms"),
                    Metric(f"latency{pct}_scored_p50", sc50, "ms"),
                    Metric(f"latency{pct}_scored_p99", sc99, "ms"),
                    Metric(f"latency{pct}_alert_p50", al50, "ms"),
                    Metric(f"latency{pct}_alert_max", almax, "ms"),
                ]

            # Throughput at full speed; memory from a run paced at half that rate, so the
            # broker's backlog (held in the collector's queue) does not count as model memory.
            memory: list[tuple[int, StageRun]] = []
            for n in s.scale:
                readings = max(s.readings, n * s.scale_steps)
                r = h.stage("compliance", n, readings)  # cold, as the paced run that follows
                m = h.stage("compliance", n, n * s.scale_steps, paced=r.rate / 2)
                memory.append((n, m))
                log(
                    f"{n} sensors: {r.rate:,.0f} readings/s; paced at {m.pub_rate:,.0f}/s: "
                    f"{m.rss_mib:.0f} MiB, {m.state_bytes / n:,.0f} B/sensor checkpoint"
                )
                metrics += [
                    Metric(f"scale{n}_rate", r.rate, "readings/s"),
                    Metric(f"scale{n}_rss_peak_backlog", r.rss_mib, "MiB"),
                    Metric(f"scale{n}_rss_peak_paced", m.rss_mib, "MiB"),
                    Metric(f"scale{n}_state_per_sensor", m.state_bytes / n / 1024, "KiB"),
                ]
            base_n, base = memory[0]
            for n, m in memory[1:]:
                per_sensor = (m.rss_mib - base.rss_mib) * 1024 / (n - base_n)
                metrics.append(Metric(f"scale{n}_rss_per_sensor", per_sensor, "KiB"))
    return BenchResult(metrics, params)
