"""Time the eight benchmark queries through a running `corrlog run` (whole processes, median).

    .venv/bin/python bench/daemon_queries.py CONFIG [--runs 15]

Start `corrlog --config CONFIG run` first. Each query is checked to be answered by
the daemon (CORRLOG_DEBUG_SEARCH_PATH=1), then timed `--runs` times.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tools import LIMIT, QUERIES

BINARY = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "corrlog"


def main() -> int:
    """Print each query's median and the median of the eight."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    medians = []
    for q in QUERIES:
        argv = [str(BINARY), "--config", args.config, "-q", "search", q.corrlog]
        argv += ["--limit", str(LIMIT), *(["--sort", "date"] if q.by_date else [])]
        probe = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            env={**os.environ, "CORRLOG_DEBUG_SEARCH_PATH": "1"},
        )
        path = "daemon" if "answered by the daemon" in probe.stderr else "own process"
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            subprocess.run(argv, capture_output=True, check=False)
            times.append((time.perf_counter() - start) * 1000)
        medians.append(statistics.median(times))
        print(
            f"{q.label:20s} {medians[-1]:7.1f} ms  answered by the {path}, exit {probe.returncode}"
        )
    print(f"median of the 8: {statistics.median(medians):.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
