"""User mistakes through the real CLI: one clear line, the right exit code, never a traceback."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from support.cli import CorrlogHome


def assert_one_line_error(result_stderr: str, *needles: str) -> None:
    """The error is one `corrlog: error:` line containing every needle, with no traceback."""
    assert "Traceback" not in result_stderr
    errors = [line for line in result_stderr.splitlines() if line.startswith("corrlog: error:")]
    assert len(errors) == 1, result_stderr
    for needle in needles:
        assert needle in errors[0], errors[0]


def test_missing_config_names_the_file_and_the_remedy(home: CorrlogHome) -> None:
    """A missing config file exits 2 and says how to create it."""
    missing = home.root / "nope.toml"
    result = home.run("--config", str(missing), "search", "x", config=False)
    assert result.code == 2
    assert_one_line_error(result.stderr, str(missing), "init")


def test_bad_duration_names_the_key(home: CorrlogHome) -> None:
    """A bad `default_interval` exits 2 naming the key and the accepted form."""
    text = home.config.read_text().replace('default_interval = "7d"', 'default_interval = "7 days"')
    home.config.write_text(text)
    result = home.run("sync")
    assert result.code == 2
    assert_one_line_error(result.stderr, "default_interval", "7d")


def test_unknown_key_is_reported(home: CorrlogHome) -> None:
    """A misspelt key is an error, not silently ignored."""
    home.config.write_text('default_intreval = "3d"\n' + home.config.read_text())
    result = home.run("sync")
    assert result.code == 2
    assert_one_line_error(result.stderr, "default_intreval", "unknown key")


def test_invalid_toml_names_the_line(home: CorrlogHome) -> None:
    """A TOML syntax error exits 2 and names the file and line."""
    home.config.write_text("data_dir = \n")
    result = home.run("sync")
    assert result.code == 2
    assert_one_line_error(result.stderr, str(home.config), "line 1")


def test_env_override_error_names_the_key(home: CorrlogHome) -> None:
    """A bad CORRLOG_* value is reported like a bad file value."""
    result = home.run("sync", env=home.env(CORRLOG_DEFAULT_INTERVAL="soon"))
    assert result.code == 2
    assert_one_line_error(result.stderr, "default_interval")


def test_env_overrides_the_file(home: CorrlogHome) -> None:
    """CORRLOG_NOTES__PATHS replaces the notes folders of the file."""
    other = home.root / "other-notes"
    other.mkdir()
    (other / "n.md").write_text("# Elsewhere\nA capybara note.\n")
    env = home.env(CORRLOG_NOTES__PATHS=str(other))
    assert home.run("sync", env=env).code == 0
    found = home.run("search", "capybara", "--format", "ids", env=env)
    assert len(found.out.split()) == 1


def test_bad_queries_exit_2_with_a_hint(home: CorrlogHome) -> None:
    """Syntax errors in queries are one line and exit code 2."""
    home.note("n.md", "# N\nhello\n")
    home.ok("sync")
    cases = {
        '"unclosed': "quote",
        "(hello": "parenthesis",
        "foo:bar": "unknown field 'foo'",
        "date:[garbage to 2023]": "date",
        "hello OR": "OR needs a word after it",
        "AND hello": "AND needs a word before it",
        "date:2026-13-45": "cannot read date:2026-13-45",
        "hello date:garbage": "cannot read date:garbage",
        "the": "too common or too short",
    }
    for text, needle in cases.items():
        result = home.run("search", text)
        assert result.code == 2, text
        assert_one_line_error(result.stderr, needle)


def test_bad_since_date_is_a_usage_error(home: CorrlogHome) -> None:
    """--since with an unreadable date exits 2."""
    home.ok("sync")
    result = home.run("search", "x", "--since", "last tuesday")
    assert result.code == 2
    assert_one_line_error(result.stderr, "2026-11-30")


def test_unknown_id_is_a_usage_error(home: CorrlogHome) -> None:
    """show of an id that does not exist exits 2 and says how to find ids."""
    home.ok("sync")
    result = home.run("show", "deadbeef0000")
    assert result.code == 2
    assert_one_line_error(result.stderr, "deadbeef0000", "corrlog search")


def test_search_before_any_sync_says_what_to_do(home: CorrlogHome) -> None:
    """Searching an empty data dir explains that nothing is synced yet."""
    result = home.run("search", "x")
    assert result.code == 1
    assert_one_line_error(result.stderr, "corrlog sync")


def test_init_never_overwrites_and_sets_permissions(home: CorrlogHome) -> None:
    """A second init leaves the config alone; data dirs are 0700 and the config 0600."""
    home.config.write_text(home.config.read_text() + "\n# mine\n")
    result = home.ok("init")
    assert "left unchanged" in result.out
    assert home.config.read_text().endswith("# mine\n")
    assert stat.S_IMODE(home.config.stat().st_mode) == 0o600
    for directory in (home.data, home.data / "archive", home.notes):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory


def test_data_files_are_owner_only(home: CorrlogHome) -> None:
    """After a sync every file under the data dir is 0600 and every dir 0700."""
    home.note("n.md", "# N\nhello\n")
    home.ok("sync")
    for path in home.data.rglob("*"):
        if path.is_relative_to(home.notes):
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))


@pytest.mark.parametrize(
    ("xdg", "expected"),
    [
        ("xdg-data", "{root}/xdg-data/corrlog"),  # $XDG_DATA_HOME/corrlog
        ("", "~/.local/share/corrlog"),  # unset: the template's portable default
        ("relative/dir", "~/.local/share/corrlog"),  # not absolute: ignored, as XDG says
    ],
)
def test_init_puts_the_data_where_xdg_says(
    tmp_path: Path, home: CorrlogHome, xdg: str, expected: str
) -> None:
    """Without --data-dir, init writes $XDG_DATA_HOME/corrlog (when absolute) into the config,
    notes folder included, and creates the folders there."""
    config = tmp_path / "fresh" / "corrlog.toml"
    data = str(home.root / xdg) if xdg.startswith("xdg") else xdg
    result = home.run(
        "--config", str(config), "init", env=home.env(XDG_DATA_HOME=data), config=False
    )
    assert 0 == result.code, result.stderr
    written = expected.format(root=home.root)
    text = config.read_text()
    assert f'data_dir = "{written}"' in text
    assert f'paths = ["{written}/notes"]' in text
    assert Path(written.replace("~", str(home.root), 1)).joinpath("notes").is_dir()
