"""The systemd units pass `systemd-analyze verify` and start a command line the CLI accepts."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNITS = sorted((ROOT / "systemd").glob("*.service")) + sorted((ROOT / "systemd").glob("*.timer"))


def exec_start(unit: Path) -> list[str]:
    """The ExecStart command line of a unit, split like systemd does."""
    line = next(line for line in unit.read_text().splitlines() if line.startswith("ExecStart="))
    argv = shlex.split(line.removeprefix("ExecStart="))
    return argv[1:] if Path(argv[0]).name == "env" else argv


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_unit_passes_systemd_analyze_verify(unit: Path, tmp_path: Path) -> None:
    """Each unit verifies cleanly once ExecStart points at this checkout's corrlog."""
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze not installed (scripts/test.sh installs it)")
    corrlog = Path(sys.executable).with_name("corrlog")
    copy = tmp_path / unit.name
    text = "\n".join(
        f"ExecStart={corrlog} {shlex.join(exec_start(unit)[1:])}"
        if line.startswith("ExecStart=")
        else line
        for line in unit.read_text().splitlines()
    )
    copy.write_text(text + "\n")
    for other in UNITS:
        if other.name != unit.name:
            (tmp_path / other.name).write_text(other.read_text())
    result = subprocess.run(
        [tool, "verify", "--man=no", str(copy)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("unit", [u for u in UNITS if u.suffix == ".service"], ids=lambda p: p.name)
def test_exec_start_is_a_command_line_the_cli_accepts(unit: Path) -> None:
    """The unit's arguments parse: the same command with --help exits 0."""
    args = exec_start(unit)[1:]
    result = subprocess.run(
        [sys.executable, "-m", "corrlog", *args, "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
