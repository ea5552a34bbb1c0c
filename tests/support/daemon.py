"""Run `corrlog run` as a real subprocess and watch its log and status."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from support.cli import CorrlogHome


def wait_for(
    condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.05
) -> Any:
    """Poll `condition` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class DaemonProcess:
    """A `corrlog run` subprocess with JSON logs in a file."""

    def __init__(self, home: CorrlogHome, name: str = "daemon") -> None:
        self.home = home
        self.log_path = home.root / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> DaemonProcess:
        """Start and wait until it logs `ready`."""
        argv = [
            sys.executable,
            "-m",
            "corrlog",
            "--config",
            str(self.home.config),
            "--log-format",
            "json",
            "run",
        ]
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=log, env=self.home.env()
        )
        log.close()
        wait_for(
            lambda: self.events("ready") or self.proc.poll() is not None, timeout, "daemon ready"
        )  # type: ignore[union-attr]
        assert self.proc.poll() is None, self.log_path.read_text()
        return self

    @property
    def pid(self) -> int:
        """The daemon's pid."""
        assert self.proc is not None
        return self.proc.pid

    def lines(self) -> list[dict[str, Any]]:
        """Every JSON log line so far."""
        if not self.log_path.exists():
            return []
        found = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    found.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return found

    def events(self, event: str) -> list[dict[str, Any]]:
        """Log lines whose event is `event`."""
        return [line for line in self.lines() if line.get("event") == event]

    def signal(self, signum: int) -> None:
        """Send a signal."""
        os.kill(self.pid, signum)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM and wait; return the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)


def count(home: CorrlogHome, sql: str, *args: object) -> int:
    """A COUNT from the home's database (0 when it does not exist yet)."""
    path: Path = home.data / "corrlog.db"
    if not path.exists():
        return 0
    conn = sqlite3.connect(path, timeout=30)
    try:
        return int(conn.execute(sql, args).fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()
