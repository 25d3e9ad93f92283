"""``python -m bench [NAME ...] [--quick] [--repeat N] [--set K=V] [--results DIR] [--check]``.

Runs the selected benchmarks (all by default), writes ``<results>/<name>.json`` for each and
prints a table. ``--check`` exits 1 when a metric misses its target (for a dedicated machine;
targets are never asserted in the test suite).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bench import (
    RESULTS_DIR,
    BenchOptions,
    format_table,
    load_benchmarks,
    result_document,
    write_result,
)
from stackwatch.logs import configure_logging


def main(argv: list[str] | None = None) -> int:
    configure_logging("ERROR")  # expected warnings (a backtest's compliance events) are noise here
    registry = load_benchmarks()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="small workloads (a smoke run)")
    parser.add_argument("--repeat", type=int, default=3, help="best of N timings (default 3)")
    parser.add_argument("--results", type=Path, default=RESULTS_DIR, help="output directory")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="benchmark parameter, e.g. --set days=5 (repeatable)",
    )
    args = parser.parse_args(argv)

    if args.list:
        for bench in registry.values():
            when = "" if bench.default else " (only when named)"
            print(f"{bench.name}: {bench.description}{when}")
        return 0
    unknown = [n for n in args.names if n not in registry]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(registry)}")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    params = dict(item.partition("=")[::2] for item in args.set)
    if any(not key or not value for key, value in params.items()):
        parser.error("--set takes KEY=VALUE")
    options = BenchOptions(quick=args.quick, repeat=args.repeat, params=params)
    documents = []
    for name in args.names or [n for n, b in registry.items() if b.default]:
        bench = registry[name]
        print(f"running {name}: {bench.description} ...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        result = bench.run(options)
        document = result_document(bench, result, time.perf_counter() - start)
        path = write_result(document, args.results)
        print(f"  wrote {path}", file=sys.stderr)
        documents.append(document)
    print(format_table(documents))
    missed = [m for d in documents for m in d["metrics"] if m["met"] is False]
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
