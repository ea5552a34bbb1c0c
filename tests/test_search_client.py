"""The lean client finds the same config and data dir as the CLI, and speaks the protocol."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corrlog.config import load_settings, resolve_config_path
from corrlog.entry import _sendable, lean_config_path, lean_data_dir, settings_facts, terminal_width
from corrlog.searchd import Caller, Reply, SearchCall, SyncCall, parse_request
from corrlog.searchproto import PROTOCOL, dumps, loads, settings_environ


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
        (["search", "okapi"], ("search", None, ["okapi"])),
        (["--config", "/c.toml", "search", "-f", "x"], ("search", "/c.toml", ["-f", "x"])),
        (["--config=/c.toml", "search"], ("search", "/c.toml", [])),
        (["search", "okapi", "--help"], None),
        (["search", "-h"], None),
        (["-v", "search", "okapi"], None),
        (["-q", "--config", "/c.toml", "search", "x"], ("search", "/c.toml", ["x"])),
        (["--quiet", "search", "x"], ("search", None, ["x"])),
        (["--log-format", "json", "search", "okapi"], None),
        (["--config"], None),
        (["show", "abc"], None),
        ([], None),
    ],
)
def test_only_plain_searches_are_sent(
    argv: list[str], expected: tuple[str, str | None, list[str]] | None
) -> None:
    """Global options other than --config and -q, help, and other commands go to the full CLI."""
    assert _sendable(argv) == expected


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["sync"], ("sync", None, [])),
        (["-q", "--config=/c.toml", "sync"], ("sync", "/c.toml", [])),
        (["sync", "--source", "work"], ("sync", None, ["--source", "work"])),
        (["sync", "--source=work"], ("sync", None, ["--source", "work"])),
        (["sync", "--source"], None),
        (["sync", "--source="], None),
        (["sync", "--source", ""], None),
        (["sync", "--source", "-x"], None),
        (["sync", "--source", "a", "--source", "b"], None),
        (["sync", "--help"], None),
        (["sync", "-h"], None),
        (["sync", "extra"], None),
        (["sync", "--no-such-option"], None),
        (["-v", "sync"], None),
        (["--log-format", "json", "sync"], None),
    ],
)
def test_only_plain_syncs_are_sent(
    argv: list[str], expected: tuple[str, str | None, list[str]] | None
) -> None:
    """`sync` and `sync --source NAME` are sent (in one spelling); anything else is the CLI's."""
    assert _sendable(argv) == expected


def test_settings_facts_name_the_clis_config_and_the_variables_settings_read(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The config path as the CLI resolves it, made absolute; CORRLOG_* in any case, HOME and
    XDG_DATA_HOME; not the config variable, the debug switch, empty values or anything else."""
    monkeypatch.chdir(env)
    environ = {
        "HOME": str(env),
        "XDG_DATA_HOME": "/xdg-data",
        "XDG_CONFIG_HOME": "/xdg-config",
        "CORRLOG_ME": "me@example.org",
        "corrlog_data_dir": "/lc",
        "CORRLOG_CAPTURE": "",
        "CORRLOG_CONFIG": "/elsewhere.toml",
        "CORRLOG_DEBUG_SEARCH_PATH": "1",
        "PATH": "/bin",
    }
    facts = settings_facts("relative.toml", environ)
    assert facts == {
        "config": str(resolve_config_path("relative.toml", environ).absolute()),
        "environ": {
            "HOME": str(env),
            "XDG_DATA_HOME": "/xdg-data",
            "CORRLOG_ME": "me@example.org",
            "corrlog_data_dir": "/lc",
        },
    }
    assert settings_environ(environ) == facts["environ"]


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
SEARCH = {"protocol": PROTOCOL, "command": "search"}
SYNC = {"protocol": PROTOCOL, "command": "sync", "config": "/c.toml", "environ": {"HOME": "/h"}}
MALFORMED_SEARCH = Reply(stderr="corrlog: error: the search request is malformed\n", exit=2)
MALFORMED_SYNC = Reply(stderr="corrlog: error: the sync request is malformed\n", exit=2)


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (SEARCH | {"argv": ["a"], **FACTS}, SearchCall(["a"], Caller(True, 120, 3600))),
        (
            SEARCH | {"argv": [], **FACTS, "no_color": True, "width": 10**9},
            SearchCall([], Caller(False, 10_000, 3600)),
        ),
        ({"protocol": PROTOCOL + 1, "argv": ["a"], **FACTS}, Reply(fallback=True)),
        ({"protocol": PROTOCOL - 1, "argv": ["a"], **FACTS}, Reply(fallback=True)),
        ([1, 2], Reply(fallback=True)),
        (SEARCH | {"argv": [1], **FACTS}, MALFORMED_SEARCH),
        (SEARCH | {"argv": ["a"], **FACTS, "utc_offset": 10**6}, MALFORMED_SEARCH),
        (
            {"protocol": PROTOCOL, "command": "reindex", "argv": []},
            Reply(
                stderr="corrlog: error: the request names no command the daemon answers\n", exit=2
            ),
        ),
        (
            {"protocol": PROTOCOL, "argv": ["a"], **FACTS},
            Reply(
                stderr="corrlog: error: the request names no command the daemon answers\n", exit=2
            ),
        ),
        (SYNC | {"argv": []}, SyncCall(None, "/c.toml", {"HOME": "/h"})),
        (SYNC | {"argv": ["--source", "work"]}, SyncCall("work", "/c.toml", {"HOME": "/h"})),
        (SYNC | {"argv": ["--source=work"]}, MALFORMED_SYNC),
        (SYNC | {"argv": ["--source", ""]}, MALFORMED_SYNC),
        (SYNC | {"argv": ["--source"]}, MALFORMED_SYNC),
        (SYNC | {"argv": ["extra"]}, MALFORMED_SYNC),
        (SYNC | {"argv": None}, MALFORMED_SYNC),
        (SYNC | {"argv": [], "config": "relative.toml"}, MALFORMED_SYNC),
        (SYNC | {"argv": [], "config": None}, MALFORMED_SYNC),
        (SYNC | {"argv": [], "environ": ["HOME"]}, MALFORMED_SYNC),
        (SYNC | {"argv": [], "environ": {"HOME": 1}}, MALFORMED_SYNC),
    ],
)
def test_requests_are_checked(request_: object, expected: object) -> None:
    """Well-formed requests give the command's call; others a reply saying why."""
    assert parse_request(dumps(request_)) == expected
