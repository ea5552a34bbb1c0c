"""The lean search client finds the same config and data dir as the CLI, and speaks the protocol."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corrlog.config import load_settings, resolve_config_path
from corrlog.entry import _search_args, lean_config_path, lean_data_dir, terminal_width
from corrlog.searchd import Caller, Reply, parse_request
from corrlog.searchproto import PROTOCOL, dumps, loads


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean environment with HOME in a temp dir; returns HOME."""
    for name in list(os.environ):
        if name.upper().startswith("CORRLOG_") or name.startswith("XDG_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize(
    ("explicit", "variables"),
    [
        ("/etc/corrlog.toml", {}),
        ("~/my.toml", {"CORRLOG_CONFIG": "/ignored.toml"}),
        ("", {"CORRLOG_CONFIG": "~/from-env.toml"}),
        (None, {"CORRLOG_CONFIG": ""}),
        (None, {"XDG_CONFIG_HOME": "/xdg"}),
        (None, {}),
    ],
)
def test_config_path_is_resolved_like_the_cli(
    env: Path, monkeypatch: pytest.MonkeyPatch, explicit: str | None, variables: dict[str, str]
) -> None:
    """--config, $CORRLOG_CONFIG, $XDG_CONFIG_HOME and the default, in the CLI's order."""
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    expected = resolve_config_path(explicit, os.environ)
    assert Path(lean_config_path(explicit, dict(os.environ))) == expected


CONFIGS = {
    "template": 'data_dir = "~/data"  # where\nme = ["me@example.org"]\n\n[notes]\npaths = ["~/n"]\n',
    "literal": "# comment\ndata_dir = '/srv/corrlog'\n",
    "absent": 'me = ["me@example.org"]\n[daemon]\ndebounce = 0.2\n',
    "after-table": '[notes]\npaths = ["~/n"]\n',
    "needs-a-parser": 'me = """\ndata_dir = "/not/this"\n"""\ndata_dir = "/and/this"\n',
    "escaped": 'data_dir = "/tmp/a\\u0062c"\n',
    "multi-line-array": 'me = [\n  "a@example.org",\n]\ndata_dir = "/srv/x"\n',
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize(
    "variables",
    [
        {},
        {"XDG_DATA_HOME": "/xdg-data"},
        {"CORRLOG_DATA_DIR": "~/env"},
        {"corrlog_data_dir": "/lc"},
    ],
    ids=["plain", "xdg", "env", "lowercase-env"],
)
def test_data_dir_is_the_one_load_settings_picks(
    env: Path, monkeypatch: pytest.MonkeyPatch, name: str, variables: dict[str, str]
) -> None:
    """The lean reading of data_dir agrees with pydantic-settings for the cases it answers."""
    config = env / "corrlog.toml"
    config.write_text(CONFIGS[name])
    for variable, value in variables.items():
        monkeypatch.setenv(variable, value)
    expected = load_settings(config).data_dir
    assert Path(str(lean_data_dir(str(config), dict(os.environ)))) == expected


@pytest.mark.parametrize(
    "text",
    ['data_dir = "relative/path"\n', "data_dir = 7\n", "data_dir = [\n", "this is not toml\n"],
)
def test_a_config_the_cli_rejects_is_left_to_the_cli(env: Path, text: str) -> None:
    """A relative or non-string data_dir, or broken TOML: no guess, the full CLI reports it."""
    config = env / "corrlog.toml"
    config.write_text(text)
    assert lean_data_dir(str(config), dict(os.environ)) is None


def test_a_missing_config_is_left_to_the_cli(env: Path) -> None:
    """No config file: the CLI's error, not a search."""
    assert lean_data_dir(str(env / "nope.toml"), dict(os.environ)) is None


@pytest.mark.parametrize("columns", [None, "abc", "0", "-3", "77"])
def test_terminal_width_is_shutils(monkeypatch: pytest.MonkeyPatch, columns: str | None) -> None:
    """COLUMNS, else the terminal, else 100: what render_table used to ask shutil for."""
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    expected = shutil.get_terminal_size((100, 20)).columns
    assert terminal_width(dict(os.environ)) == expected


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["search", "okapi"], (None, ["okapi"])),
        (["--config", "/c.toml", "search", "-f", "x"], ("/c.toml", ["-f", "x"])),
        (["--config=/c.toml", "search"], ("/c.toml", [])),
        (["search", "okapi", "--help"], None),
        (["search", "-h"], None),
        (["-v", "search", "okapi"], None),
        (["-q", "--config", "/c.toml", "search", "x"], ("/c.toml", ["x"])),
        (["--quiet", "search", "x"], (None, ["x"])),
        (["--log-format", "json", "search", "okapi"], None),
        (["--config"], None),
        (["show", "abc"], None),
        ([], None),
    ],
)
def test_only_plain_searches_are_sent(
    argv: list[str], expected: tuple[str | None, list[str]] | None
) -> None:
    """Global options other than --config and -q, help, and other commands go to the full CLI."""
    assert _search_args(argv) == expected


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
        max_leaves=20,
    )
)
def test_the_framing_is_json(value: object) -> None:
    """dumps is json.dumps (compact) plus a newline; loads reads it back."""
    data = dumps(value)
    assert data == (json.dumps(value, separators=(",", ":")) + "\n").encode()
    assert loads(data) == value


@pytest.mark.parametrize("data", [b"", b"{", b'{"a": 1} x', b"NaN", b"\xff\n"])
def test_loads_refuses_anything_but_one_json_value(data: bytes) -> None:
    """Garbage is a ValueError, never another exception."""
    with pytest.raises(ValueError):
        loads(data)


FACTS = {"isatty": True, "width": 120, "no_color": False, "utc_offset": 3600}


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        ({"protocol": PROTOCOL, "argv": ["a"], **FACTS}, (["a"], Caller(True, 120, 3600))),
        (
            {"protocol": PROTOCOL, "argv": [], **FACTS, "no_color": True, "width": 10**9},
            ([], Caller(False, 10_000, 3600)),
        ),
        ({"protocol": PROTOCOL + 1, "argv": ["a"], **FACTS}, Reply(fallback=True)),
        ([1, 2], Reply(fallback=True)),
        (
            {"protocol": PROTOCOL, "argv": [1], **FACTS},
            Reply(stderr="corrlog: error: the search request is malformed\n", exit=2),
        ),
        (
            {"protocol": PROTOCOL, "argv": ["a"], **FACTS, "utc_offset": 10**6},
            Reply(stderr="corrlog: error: the search request is malformed\n", exit=2),
        ),
    ],
)
def test_requests_are_checked(request_: object, expected: object) -> None:
    """Well-formed requests give argv and caller facts; others a reply saying why."""
    assert parse_request(dumps(request_)) == expected
