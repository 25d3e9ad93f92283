"""Where a benchmarked process spends its time: py-spy, sampled while a block runs.

py-spy is not a dependency: install it into the environment (``pip install py-spy``) to
profile (``python -m bench e2e --set profile=PATH``). :func:`profiled` records the process
with ``py-spy record --format raw`` (non-blocking: the process is not paused to sample) until
the block ends; :func:`summarise` turns the collapsed stacks into the functions with the most
samples, by own time and including callees, with line numbers folded into functions (lines
py-spy could not read cleanly, which non-blocking sampling produces now and then, are
skipped).

>>> stacks = ["main (a.py:1);f (a.py:5);g (b.py:2) 3", "main (a.py:1);f (a.py:6) 1", "h (c.py:9) 1"]
>>> print(summarise(stacks, 2))
own time (5 samples)
   60.0 %  g (b.py)
   20.0 %  f (a.py)
including callees (without the entry chain: main (a.py) ...)
   60.0 %  g (b.py)
   20.0 %  h (c.py)
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

_LINE = re.compile(r":\d+\)$")


def pyspy_executable() -> str:
    """The ``py-spy`` next to this interpreter or on PATH; RuntimeError if there is none."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    exe = shutil.which("py-spy", path=path)
    if exe is None:
        raise RuntimeError("profiling needs py-spy: pip install py-spy (not a dependency)")
    return exe


def summarise(lines: Iterable[str], top: int = 25) -> str:
    """The ``top`` functions by own samples and by samples including callees."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in lines:
        stack, _, count_text = line.rstrip().rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_LINE.sub(")", f) for f in stack.split(";")]
        samples += count
        own[frames[-1]] += count
        for frame in dict.fromkeys(frames):  # a recursive function counts once per sample
            total[frame] += count
    out = [f"own time ({samples} samples)"]
    out += [f"  {100 * c / samples:5.1f} %  {f}" for f, c in own.most_common(top)]
    # The frames on every stack of the busiest thread (runpy → main → the event loop) say
    # nothing: leave them out.
    entry = max(total.values(), default=0)
    chain = [f for f, c in total.items() if c == entry]
    out.append(f"including callees (without the entry chain: {chain[0] if chain else '-'} ...)")
    inner = [(f, c) for f, c in total.most_common() if c < entry][:top]
    out += [f"  {100 * c / samples:5.1f} %  {f}" for f, c in inner]
    return "\n".join(out)


@contextmanager
def profiled(pid: int, out: Path, rate: int = 100) -> Iterator[None]:
    """Sample process ``pid`` while the block runs; write the summary to ``out`` (and the
    collapsed stacks next to it, ``.raw``, for a flame graph)."""
    raw = out.with_suffix(".raw")
    with out.with_suffix(".log").open("wb") as log:
        proc = subprocess.Popen(
            [
                pyspy_executable(),
                "record",
                "--pid",
                str(pid),
                "--rate",
                str(rate),
                "--nonblocking",
                "--format",
                "raw",
                "--output",
                str(raw),
            ],
            stdout=log,
            stderr=log,
        )
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if raw.exists():
        out.write_text(summarise(raw.read_text(errors="replace").splitlines()) + "\n")
