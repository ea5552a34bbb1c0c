"""The project documents itself: module docstrings, command help with examples, README coverage."""

from __future__ import annotations

import ast
from pathlib import Path

import click
import pytest

from corrlog.cli import cli

ROOT = Path(__file__).resolve().parent.parent
MODULES = sorted((ROOT / "src" / "corrlog").rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_module_has_a_one_line_docstring(path: Path) -> None:
    """Each module opens with a docstring whose first line says what it is for."""
    docstring = ast.get_docstring(ast.parse(path.read_text()))
    assert docstring, f"{path} has no module docstring"
    assert docstring.splitlines()[0].endswith("."), docstring.splitlines()[0]


COMMANDS = sorted(cli.commands)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help_with_an_example(name: str) -> None:
    """`corrlog NAME --help` shows a description and at least one example."""
    command = cli.commands[name]
    with click.Context(command, info_name=name) as ctx:
        text = command.get_help(ctx)
    assert "Example" in text, f"corrlog {name} --help has no example"


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_is_in_the_readme(name: str) -> None:
    """The README's command table lists every command."""
    assert f"`corrlog {name}" in (ROOT / "README.md").read_text()
