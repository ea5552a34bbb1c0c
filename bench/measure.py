"""Measuring processes: wall time, CPU time and peak RSS of one child, and sampling a running one.

Peak RSS comes from `os.wait4()` on the child itself: the kernel reports the
largest resident set of that process and of the descendants it waited for, so
no `/usr/bin/time` is needed and runs never see each other's peaks (unlike
`RUSAGE_CHILDREN`, which only ever grows).
"""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class Measured:
    """One finished process."""

    argv: list[str]
    returncode: int
    wall_s: float
    user_s: float
    sys_s: float
    maxrss_kb: int
    stdout: str = ""
    stderr: str = ""

    @property
    def cpu_s(self) -> float:
        """User plus system CPU time."""
        return self.user_s + self.sys_s

    def check(self, what: str, ok: Sequence[int] = (0,)) -> Measured:
        """Raise with the tail of stderr when the exit code is not one of `ok`."""
        if self.returncode not in ok:
            tail = "\n".join(self.stderr.strip().splitlines()[-15:])
            raise RuntimeError(f"{what} failed with exit code {self.returncode}: {tail}")
        return self


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    capture: bool = False,
    timeout: float | None = None,
) -> Measured:
    """Run `argv` to completion; stdout is captured when asked, else discarded."""
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
    ):
        started = time.perf_counter()
        proc = subprocess.Popen(
            list(argv),
            env=dict(env) if env is not None else None,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out if capture else subprocess.DEVNULL,
            stderr=err,
        )
        timer = None
        if timeout:
            timer = threading.Timer(timeout, _kill, (proc.pid,))
            timer.start()
        try:
            _pid, status, usage = os.wait4(proc.pid, 0)
        finally:
            if timer:
                timer.cancel()
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Measured(
            argv=list(argv),
            returncode=proc.returncode,
            wall_s=wall,
            user_s=usage.ru_utime,
            sys_s=usage.ru_stime,
            maxrss_kb=usage.ru_maxrss,
            stdout=out.read().decode("utf-8", "replace") if capture else "",
            stderr=err.read().decode("utf-8", "replace"),
        )


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def proc_cpu_ticks(pid: int) -> int:
    """utime + stime of a live process (all its threads), in clock ticks."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


def proc_rss_kb(pid: int) -> int:
    """Current resident set size of a live process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@dataclass
class IdleSample:
    """CPU and memory of a process over a window."""

    seconds: float
    cpu_s: float
    cpu_percent: float
    rss_kb: list[int] = field(default_factory=list)

    @property
    def rss_max_kb(self) -> int:
        """The largest RSS seen."""
        return max(self.rss_kb, default=0)

    @property
    def rss_median_kb(self) -> float:
        """The median RSS seen."""
        return statistics.median(self.rss_kb) if self.rss_kb else 0.0


def sample_idle(pid: int, seconds: float, every: float = 1.0) -> IdleSample:
    """CPU used (from /proc/PID/stat) and RSS (sampled every `every` s) over `seconds`."""
    rss = [proc_rss_kb(pid)]
    ticks0 = proc_cpu_ticks(pid)
    started = time.monotonic()
    deadline = started + seconds
    while (now := time.monotonic()) < deadline:
        time.sleep(min(every, deadline - now))
        rss.append(proc_rss_kb(pid))
    ticks1 = proc_cpu_ticks(pid)
    elapsed = time.monotonic() - started
    cpu = (ticks1 - ticks0) / CLK_TCK
    return IdleSample(elapsed, cpu, 100.0 * cpu / elapsed, rss)


def dir_size(path: Path) -> int:
    """Bytes allocated on disk below `path` (like `du`), 0 when missing."""
    if not path.exists():
        return 0
    total = 0
    for directory, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += (Path(directory) / name).lstat().st_blocks * 512
    return total


def loadavg() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
