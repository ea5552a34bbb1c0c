"""Helpers for fault tests: raw daemon processes, CPU and log probes, ledger truth, figures."""

from __future__ import annotations

import json
import mailbox
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.cli import CorrlogHome, Result

FIGURES_ENV = "CORRLOG_FIGURES"  # append each test's figures as a JSON line to this file


def corrlog_argv(home: CorrlogHome, *args: str, log_format: str = "json") -> list[str]:
    """`python -m corrlog --config C --log-format F ARGS`."""
    return [
        sys.executable,
        "-m",
        "corrlog",
        "--config",
        str(home.config),
        "--log-format",
        log_format,
        *args,
    ]


def spawn_daemon(
    home: CorrlogHome,
    log: Path,
    *,
    umask: int | None = None,
    prefix: list[str] | None = None,
    options: tuple[str, ...] = (),
) -> subprocess.Popen[bytes]:
    """Start `corrlog [OPTIONS] run` without waiting; its stdout and stderr are appended to `log`.

    `umask` runs it under that umask; `prefix` runs it through a wrapper (e.g. setpriv).
    """
    argv = corrlog_argv(home, *options, "run")
    if umask is not None:
        argv = ["sh", "-c", f'umask {umask:03o}; exec "$@"', "sh", *argv]
    argv = [*(prefix or []), *argv]
    with log.open("ab") as handle:
        return subprocess.Popen(argv, stdout=handle, stderr=handle, env=home.env())


def run_cli(
    home: CorrlogHome, *args: str, umask: int | None = None, timeout: float = 120
) -> Result:
    """Run `corrlog ARGS` (optionally under a given umask) and capture everything."""
    argv = corrlog_argv(home, *args)
    if umask is not None:
        argv = ["sh", "-c", f'umask {umask:03o}; exec "$@"', "sh", *argv]
    proc = subprocess.run(argv, capture_output=True, env=home.env(), timeout=timeout, check=False)
    return Result(proc.returncode, proc.stdout, proc.stderr.decode("utf-8", "replace"))


def kill_9(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL and reap."""
    proc.kill()
    proc.wait(timeout=10)


def log_lines(path: Path) -> list[dict[str, Any]]:
    """Every JSON log line in a file written by the daemon or the CLI."""
    if not path.exists():
        return []
    found = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                found.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return found


def events(path: Path, event: str) -> list[dict[str, Any]]:
    """Log lines of one event."""
    return [line for line in log_lines(path) if line.get("event") == event]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc, USER_HZ = 100)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def query(home: CorrlogHome, sql: str, *args: object) -> list[tuple[Any, ...]]:
    """Rows from the home's database (read-only; empty when it does not exist yet)."""
    path = home.data / "corrlog.db"
    if not path.exists():
        return []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return [tuple(row) for row in conn.execute(sql, args)]
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


def scalar(home: CorrlogHome, sql: str, *args: object) -> int:
    """A single integer from the home's database (0 when there is none yet)."""
    rows = query(home, sql, *args)
    return int(rows[0][0]) if rows and rows[0][0] is not None else 0


def imap_uids_in_ledger(home: CorrlogHome, account: str, folder: str) -> Counter[int]:
    """How often each UID of a folder was recorded in the ledger (any UIDVALIDITY)."""
    prefix = f"imap:{account}/{folder};"
    found: Counter[int] = Counter()
    for (origin,) in query(home, "SELECT origin FROM ledger WHERE origin LIKE ?", prefix + "%"):
        found[int(origin.rsplit("UID=", 1)[1])] += 1
    return found


def note_revisions_in_ledger(home: CorrlogHome) -> Counter[tuple[str, str]]:
    """How often each (note path, sha256) revision was recorded by an ingest or seen entry."""
    rows = query(
        home,
        "SELECT detail, sha256 FROM ledger WHERE origin LIKE 'notes:%' AND event != 'delete'",
    )
    return Counter((json.loads(detail)["path"], sha) for detail, sha in rows)


def leftover_temp_files(home: CorrlogHome) -> list[str]:
    """Half-written archive files (archive/tmp/put-*), as names."""
    return sorted(p.name for p in (home.data / "archive" / "tmp").glob("put-*"))


def archive_objects(home: CorrlogHome) -> list[str]:
    """Names (sha256) of every object file in the archive."""
    root = home.data / "archive"
    return sorted(p.parent.name + p.name for p in root.glob("[0-9a-f][0-9a-f]/*"))


@dataclass
class Figures:
    """What a fault test did, printed so docs/RELIABILITY.md can quote it."""

    scenario: str
    runs: int = 0
    faults: int = 0
    items: int = 0
    lost: int = 0
    duplicated: int = 0
    extra: dict[str, object] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def report(self) -> str:
        """Print one `figures:` line (and append it as JSON to $CORRLOG_FIGURES if set)."""
        seconds = round(time.monotonic() - self.started, 1)
        data = {
            "scenario": self.scenario,
            "runs": self.runs,
            "faults": self.faults,
            "items": self.items,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "seconds": seconds,
            **self.extra,
        }
        line = "figures: " + ", ".join(f"{k}={v}" for k, v in data.items())
        print(f"\n{line}")
        target = os.environ.get(FIGURES_ENV)
        if target:
            with Path(target).open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(data) + "\n")
        return line


def lost_and_duplicated(expected: Iterable[object], seen: Counter[Any]) -> tuple[int, int]:
    """(expected items never recorded, recordings beyond the first of each item)."""
    wanted = set(expected)
    lost = sum(1 for item in wanted if seen[item] == 0)
    duplicated = sum(count - 1 for count in seen.values() if count > 1)
    return lost, duplicated


def rng(seed: int | None = None) -> random.Random:
    """A random source whose seed is printed, so a failing run can be replayed (`CORRLOG_TEST_SEED=N`)."""
    replay = os.environ.get("CORRLOG_TEST_SEED")
    if seed is None and replay:
        seed = int(replay)
    chosen = seed if seed is not None else random.SystemRandom().randrange(1 << 32)
    print(f"\nrandom seed: {chosen}")
    return random.Random(chosen)


def daemon_config(home: CorrlogHome, *, poll: str = "2s", debounce: float = 0.2) -> None:
    """Short daemon intervals for tests (a `[daemon]` table before `[notes]`)."""
    table = f'[daemon]\npoll_interval = "{poll}"\ncheck_interval = "1m"\ndebounce = {debounce}\n\n'
    home.config.write_text(home.config.read_text().replace("[notes]", table + "[notes]", 1))


def capture_all(home: CorrlogHome) -> None:
    """Archive every message, not only client mail."""
    home.config.write_text(
        home.config.read_text().replace('capture = "clients"', 'capture = "all"', 1)
    )


def append_many(server: Any, user: str, folder: str, raws: list[bytes], chunk: int = 250) -> None:
    """APPEND many messages quickly (MULTIAPPEND over one connection)."""
    client = server.client(user)
    try:
        for start in range(0, len(raws), chunk):
            client.multiappend(folder, raws[start : start + chunk])
    finally:
        client.logout()


def deliver_while_down(server: Any, user: str, raws: list[bytes]) -> None:
    """Drop messages into a stopped Dovecot's INBOX Maildir (new/), owned like its other files."""
    root = Path(server.root) / "mail" / user / "Maildir"
    owner = root.stat()
    box = mailbox.Maildir(str(root), create=False)
    for raw in raws:
        key = box.add(raw)
        os.chown(root / "new" / key, owner.st_uid, owner.st_gid)


def repeated_entries(home: CorrlogHome) -> list[tuple[str, str, int]]:
    """(origin, sha256, count) of every item recorded more than once at the same origin."""
    rows = query(
        home,
        "SELECT origin, sha256, COUNT(*) FROM ledger WHERE event != 'delete'"
        " AND origin IS NOT NULL AND sha256 IS NOT NULL"
        " GROUP BY origin, sha256 HAVING COUNT(*) > 1",
    )
    return [(str(o), str(s), int(c)) for o, s, c in rows]


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_ready(proc: subprocess.Popen[bytes], log: Path, timeout: float, after: int = 0) -> None:
    """Wait until the daemon logs its (after+1)-th `ready`; fail if it exits first."""
    deadline = time.monotonic() + timeout
    while len(events(log, "ready")) <= after:
        if proc.poll() is not None:
            raise AssertionError(f"daemon exited with {proc.returncode}:\n{tail(log)}")
        if time.monotonic() > deadline:
            raise AssertionError(f"daemon not ready after {timeout}s:\n{tail(log)}")
        time.sleep(0.05)


def tail(path: Path, chars: int = 4000) -> str:
    """The end of a log file, for failure messages."""
    return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"


def stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> int:
    """SIGTERM and wait; SIGKILL if it does not exit in time (then fail)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_9(proc)
        raise AssertionError(f"daemon ignored SIGTERM for {timeout}s") from None


def within(condition: Callable[[], object], timeout: float, interval: float = 0.05) -> bool:
    """Poll `condition` until it is truthy (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True
