"""Configuration: where the file is found, how it is read, and how CORRLOG_* overrides it."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from corrlog.config import read_toml, resolve_config_path, settings_from_mapping
from corrlog.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "config" / "corrlog.example.toml"
TEMPLATE = REPO / "src" / "corrlog" / "templates" / "corrlog.toml"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No CORRLOG_* or XDG_* variables from the outside; HOME is a temp dir."""
    for name in list(os.environ):
        if name.startswith(("CORRLOG_", "XDG_")):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


# resolve_config_path


def test_explicit_path_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An explicit --config path beats $CORRLOG_CONFIG and $XDG_CONFIG_HOME."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    environ = {"CORRLOG_CONFIG": str(tmp_path / "env.toml")}
    assert tmp_path / "cli.toml" == resolve_config_path(tmp_path / "cli.toml", environ)


def test_explicit_path_expands_tilde(clean_env: Path) -> None:
    """A `~` in an explicit path is the home directory."""
    assert clean_env / "c.toml" == resolve_config_path("~/c.toml", {})


def test_env_variable_beats_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --config, $CORRLOG_CONFIG beats $XDG_CONFIG_HOME."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    environ = {"CORRLOG_CONFIG": str(tmp_path / "env.toml")}
    assert tmp_path / "env.toml" == resolve_config_path(None, environ)


def test_empty_env_variable_is_ignored(tmp_path: Path) -> None:
    """An empty $CORRLOG_CONFIG falls through to the XDG default."""
    environ = {"CORRLOG_CONFIG": "", "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    expected = tmp_path / "xdg" / "corrlog" / "corrlog.toml"
    assert expected == resolve_config_path(None, environ)


def test_xdg_config_home(tmp_path: Path) -> None:
    """Without --config or $CORRLOG_CONFIG, the file is $XDG_CONFIG_HOME/corrlog/corrlog.toml."""
    environ = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    assert tmp_path / "xdg" / "corrlog" / "corrlog.toml" == resolve_config_path(None, environ)


def test_home_config_fallback(clean_env: Path) -> None:
    """Without any of the above, the file is ~/.config/corrlog/corrlog.toml."""
    assert clean_env / ".config" / "corrlog" / "corrlog.toml" == resolve_config_path(None, {})


def test_xdg_config_home_from_given_environ(tmp_path: Path, clean_env: Path) -> None:
    """XDG_CONFIG_HOME is taken from the mapping passed in, like CORRLOG_CONFIG is."""
    environ = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    assert tmp_path / "xdg" / "corrlog" / "corrlog.toml" == resolve_config_path(None, environ)


# read_toml


def test_read_toml(tmp_path: Path) -> None:
    """A valid TOML file is read into a dict."""
    path = tmp_path / "c.toml"
    path.write_text('default_interval = "5d"\n[notes]\npaths = ["/n"]\n', encoding="utf-8")
    assert {"default_interval": "5d", "notes": {"paths": ["/n"]}} == read_toml(path)


def test_missing_file_names_path_and_remedy(tmp_path: Path) -> None:
    """A missing file is a ConfigError naming it and suggesting `corrlog --config PATH init`."""
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as caught:
        read_toml(path)
    message = str(caught.value)
    assert str(path) in message
    assert f"corrlog --config {path} init" in message


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    """Malformed TOML is a ConfigError naming the file and the line of the mistake."""
    path = tmp_path / "c.toml"
    path.write_text('capture = "all"\n\ndefault_interval = 7d\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        read_toml(path)
    message = str(caught.value)
    assert str(path) in message
    assert "line 3" in message


def test_unreadable_path_is_config_error(tmp_path: Path) -> None:
    """A path that cannot be read as a file (a directory) is a ConfigError naming it."""
    with pytest.raises(ConfigError, match="cannot read config") as caught:
        read_toml(tmp_path)
    assert str(tmp_path) in str(caught.value)


# settings_from_mapping


def test_defaults(clean_env: Path) -> None:
    """An empty mapping gives the documented defaults."""
    settings = settings_from_mapping({})
    assert clean_env / ".local" / "share" / "corrlog" == settings.data_dir
    assert timedelta(days=7) == settings.default_interval
    assert "clients" == settings.capture
    assert frozenset() == settings.my_addresses
    assert [settings.data_dir / "notes"] == settings.notes_paths


def test_data_dir_follows_xdg_data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default data dir is $XDG_DATA_HOME/corrlog when that is set."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert tmp_path / "data" / "corrlog" == settings_from_mapping({}).data_dir


def test_notes_paths_default_under_configured_data_dir(tmp_path: Path) -> None:
    """Without [notes] paths, the notes folder is `notes` under the configured data dir."""
    settings = settings_from_mapping({"data_dir": str(tmp_path / "d")})
    assert [tmp_path / "d" / "notes"] == settings.notes_paths


def test_file_values(tmp_path: Path, clean_env: Path) -> None:
    """Values from the file are validated and converted (durations, ~ paths)."""
    data = {
        "data_dir": "~/d",
        "default_interval": "1w3d",
        "capture": "all",
        "notes": {"paths": [str(tmp_path / "a"), "~/b"]},
    }
    settings = settings_from_mapping(data)
    assert clean_env / "d" == settings.data_dir
    assert timedelta(days=10) == settings.default_interval
    assert "all" == settings.capture
    assert [tmp_path / "a", clean_env / "b"] == settings.notes_paths


def test_env_overrides_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """CORRLOG_DEFAULT_INTERVAL beats default_interval from the file."""
    monkeypatch.setenv("CORRLOG_DEFAULT_INTERVAL", "3d")
    settings = settings_from_mapping({"default_interval": "5d"})
    assert timedelta(days=3) == settings.default_interval


def test_env_nested_paths_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    """CORRLOG_NOTES__PATHS as a comma list overrides [notes] paths from the file."""
    monkeypatch.setenv("CORRLOG_NOTES__PATHS", "/a, /b ,")
    settings = settings_from_mapping({"notes": {"paths": ["/file"]}})
    assert [Path("/a"), Path("/b")] == settings.notes_paths


def test_env_nested_paths_json(monkeypatch: pytest.MonkeyPatch, clean_env: Path) -> None:
    """CORRLOG_NOTES__PATHS as a JSON list is read as a list of paths."""
    monkeypatch.setenv("CORRLOG_NOTES__PATHS", '["/a", "~/b"]')
    assert [Path("/a"), clean_env / "b"] == settings_from_mapping({}).notes_paths


def test_env_bad_json_list(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CORRLOG_NOTES__PATHS that starts like JSON but is not is a ConfigError naming the key."""
    monkeypatch.setenv("CORRLOG_NOTES__PATHS", '["/a"')
    with pytest.raises(ConfigError, match=r"notes\.paths: not a JSON list"):
        settings_from_mapping({})


def test_env_me_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    """CORRLOG_ME is a comma list; my_addresses holds them lower-cased."""
    monkeypatch.setenv("CORRLOG_ME", "Me@Example.COM, other@x.example")
    settings = settings_from_mapping({"me": ["file@x.example"]})
    assert frozenset({"me@example.com", "other@x.example"}) == settings.my_addresses


def test_my_addresses_lower_cased_and_stripped() -> None:
    """my_addresses lower-cases, strips and drops blank entries from `me`."""
    settings = settings_from_mapping({"me": [" Bob@Work.Example ", "bob@work.example", " "]})
    assert frozenset({"bob@work.example"}) == settings.my_addresses


def test_config_path_variable_is_not_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """$CORRLOG_CONFIG (where the file is) does not trip the unknown-key check."""
    monkeypatch.setenv("CORRLOG_CONFIG", "/somewhere/corrlog.toml")
    assert timedelta(days=7) == settings_from_mapping({}).default_interval


@pytest.mark.parametrize(
    ("data", "key"),
    [({"bogus": 1}, "bogus"), ({"notes": {"pathz": []}}, "notes.pathz")],
)
def test_unknown_key_named(data: dict[str, object], key: str) -> None:
    """An unknown key (top level or in a table) is a ConfigError naming it and the origin."""
    with pytest.raises(ConfigError) as caught:
        settings_from_mapping(data, origin="/etc/c.toml")
    message = str(caught.value)
    assert f"{key}: unknown key" in message
    assert "/etc/c.toml" in message


@pytest.mark.parametrize("value", ["7x", "0d", 7])
def test_bad_duration_names_key(value: object) -> None:
    """A bad default_interval is a ConfigError naming `default_interval` with the duration hint."""
    with pytest.raises(ConfigError, match="default_interval: ") as caught:
        settings_from_mapping({"default_interval": value})
    assert "Value error" not in str(caught.value)


@pytest.mark.parametrize(
    "data",
    [{"data_dir": "rel/dir"}, {"notes": {"paths": ["/ok", "notes"]}}],
)
def test_relative_path_rejected(data: dict[str, object]) -> None:
    """A relative path is a ConfigError saying it must be absolute or start with ~."""
    with pytest.raises(ConfigError, match="is relative; use an absolute path"):
        settings_from_mapping(data)


def test_bad_capture_value() -> None:
    """`capture` must be `clients` or `all`."""
    with pytest.raises(ConfigError, match="capture: "):
        settings_from_mapping({"capture": "everything"})


def test_bad_env_value_points_at_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad value from CORRLOG_DEFAULT_INTERVAL is reported as coming from the environment."""
    monkeypatch.setenv("CORRLOG_DEFAULT_INTERVAL", "soon")
    with pytest.raises(ConfigError) as caught:
        settings_from_mapping({"default_interval": "7d"}, origin="/etc/c.toml")
    assert "CORRLOG_DEFAULT_INTERVAL" in str(caught.value)


# the shipped example


def test_example_matches_template() -> None:
    """config/corrlog.example.toml is byte-identical to the template `corrlog init` writes."""
    assert TEMPLATE.read_bytes() == EXAMPLE.read_bytes()


def test_example_loads(clean_env: Path) -> None:
    """The example config loads without error and gives the documented values."""
    settings = settings_from_mapping(read_toml(EXAMPLE), origin=str(EXAMPLE))
    assert clean_env / ".local" / "share" / "corrlog" == settings.data_dir
    assert timedelta(days=7) == settings.default_interval
    assert [settings.data_dir / "notes"] == settings.notes_paths


# [index]


def test_index_engine_default_and_choice(clean_env: Path) -> None:
    """The index engine is Whoosh unless `[index] engine` picks tantivy."""
    assert "whoosh" == settings_from_mapping({}).index.engine
    assert "tantivy" == settings_from_mapping({"index": {"engine": "tantivy"}}).index.engine


def test_bad_index_engine_names_the_key(clean_env: Path) -> None:
    """An unknown engine is one ConfigError line naming index.engine and the choices."""
    with pytest.raises(ConfigError) as caught:
        settings_from_mapping({"index": {"engine": "lucene"}}, origin="/etc/c.toml")
    message = str(caught.value)
    assert "index.engine" in message
    assert "'whoosh' or 'tantivy'" in message
    assert 1 == len(message.splitlines())
