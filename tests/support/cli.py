"""Run the real `corrlog` command in a subprocess against a temp home."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Result:
    """What one CLI run produced."""

    code: int
    stdout: bytes
    stderr: str

    @property
    def out(self) -> str:
        """Standard output as text."""
        return self.stdout.decode("utf-8", "replace")


@dataclass
class CorrlogHome:
    """A temp directory with a config file, a data dir and a notes folder."""

    root: Path
    config: Path
    data: Path
    notes: Path

    @classmethod
    def create(cls, root: Path) -> CorrlogHome:
        """Run `corrlog init` in `root` and return the paths."""
        home = cls(root, root / "config" / "corrlog.toml", root / "data", root / "data" / "notes")
        result = home.run("init", "--data-dir", str(home.data))
        assert result.code == 0, result.stderr
        return home

    def env(self, **extra: str) -> dict[str, str]:
        """A clean environment: HOME in the temp dir, no CORRLOG_* from outside."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("CORRLOG_")}
        env.update(HOME=str(self.root), XDG_CONFIG_HOME=str(self.root / "xdg-config"))
        env.update(XDG_DATA_HOME=str(self.root / "xdg-data"))
        env.update(extra)
        return env

    def run(self, *args: str, env: dict[str, str] | None = None, config: bool = True) -> Result:
        """Run `python -m corrlog [--config C] ARGS` and capture its output."""
        argv = [sys.executable, "-m", "corrlog"]
        if config:
            argv += ["--config", str(self.config)]
        proc = subprocess.run(
            [*argv, *args], capture_output=True, env=env or self.env(), timeout=120, check=False
        )
        return Result(proc.returncode, proc.stdout, proc.stderr.decode("utf-8", "replace"))

    def ok(self, *args: str) -> Result:
        """Run and assert exit code 0."""
        result = self.run(*args)
        assert result.code == 0, f"corrlog {' '.join(args)} -> {result.code}\n{result.stderr}"
        return result

    def note(self, relative: str, text: str | bytes) -> Path:
        """Write a note file below the notes folder."""
        path = self.notes / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, str):
            path.write_text(text, encoding="utf-8")
        else:
            path.write_bytes(text)
        return path
