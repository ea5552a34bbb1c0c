"""Switching the index engine: reindex into tantivy finds what Whoosh found; a missing package is one line."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from corrlog.cli import finish_pass, make_pipeline
from corrlog.config import load_settings
from corrlog.daemon import Daemon
from corrlog.datadir import DataDir
from support.cli import CorrlogHome
from support.mail import write_maildir

FIXTURES = Path(__file__).parent / "fixtures" / "mail"
QUERIES = (
    "plaintextonlyword",  # a rare word
    "approved Friday",  # two words, ANDed
    '"café menu"',  # a phrase
    "from:acme-widgets.example",  # an address domain
    "fulltext:xylocarpish",  # a word only in quoted text
)


def use_engine(home: CorrlogHome, engine: str) -> None:
    """Append (or replace) the `[index]` table of the home's config."""
    text = home.config.read_text().split("\n[index]\n")[0]
    home.config.write_text(f'{text}\n[index]\nengine = "{engine}"\n')


def found(home: CorrlogHome, query: str) -> list[str]:
    """The ids a query finds, in result order."""
    return [hit["id"] for hit in json.loads(home.ok("search", query, "--format", "json").out)]


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> CorrlogHome:
    """The mail fixtures synced into the default (Whoosh) index, capture = all."""
    home = CorrlogHome.create(tmp_path_factory.mktemp("switch"))
    home.config.write_text(
        home.config.read_text().replace('capture = "clients"', 'capture = "all"')
    )
    write_maildir(home.data / "maildir", [p.read_bytes() for p in sorted(FIXTURES.glob("*.eml"))])
    home.ok("sync")
    return home


def test_reindex_into_tantivy_finds_the_same(synced: CorrlogHome) -> None:
    """After `[index] engine = "tantivy"` and `corrlog reindex`, each query finds the same ids."""
    use_engine(synced, "whoosh")
    expected = {query: sorted(found(synced, query)) for query in QUERIES}
    assert all(expected.values()), expected
    use_engine(synced, "tantivy")
    doctor = synced.run("doctor", "--offline")
    assert "the index is missing" in doctor.out
    assert "corrlog reindex" in doctor.out
    synced.ok("reindex")
    assert expected == {query: sorted(found(synced, query)) for query in QUERIES}
    assert (synced.data / "index-tantivy" / "meta.json").is_file()
    assert (synced.data / "index").is_dir()  # the Whoosh index is left alone


def test_show_reads_the_tantivy_index(synced: CorrlogHome) -> None:
    """`corrlog show` gets addresses and text from the configured engine's index."""
    use_engine(synced, "tantivy")
    synced.ok("reindex")
    (record_id,) = found(synced, "plaintextonlyword")
    shown = json.loads(synced.ok("show", record_id, "--format", "json").out)
    assert shown["from"]
    assert "plaintextonlyword" in shown["text"]


def test_daemon_start_rebuilds_the_new_engines_index(synced: CorrlogHome) -> None:
    """The daemon's start-up check builds the newly configured engine's missing index."""
    use_engine(synced, "tantivy")
    datadir = DataDir(synced.data, "tantivy")
    if datadir.index_dir.exists():
        for path in datadir.index_dir.iterdir():
            path.unlink()
        datadir.index_dir.rmdir()
    daemon = Daemon(lambda: load_settings(synced.config), make_pipeline, finish_pass, {})
    daemon._check_store(datadir)
    with datadir.open() as session:
        assert session.index.problem(session.state.expected_docs()) is None
        assert session.index.doc_count() > 0


def write_old_layout_index(directory: Path) -> None:
    """A tantivy index as corrlog made it before one analysis served both engines."""
    import shutil

    import tantivy

    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(mode=0o700)
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("id", tokenizer_name="raw")
    builder.add_text_field("body", tokenizer_name="en_stem")
    tantivy.Index(builder.build(), path=str(directory))


def test_an_index_with_the_old_analysis_asks_for_reindex(synced: CorrlogHome) -> None:
    """A tantivy index from before the shared analysis: one line naming reindex, then fixed."""
    use_engine(synced, "tantivy")
    write_old_layout_index(synced.data / "index-tantivy")
    result = synced.run("search", "plaintextonlyword")
    assert 0 != result.code
    assert "older corrlog" in result.stderr
    assert "corrlog reindex" in result.stderr
    assert 1 == len(result.stderr.strip().splitlines())
    assert "older corrlog" in synced.run("doctor", "--offline").out
    synced.ok("reindex")
    assert 1 == len(found(synced, "plaintextonlyword"))


def test_daemon_start_rebuilds_an_index_with_the_old_analysis(synced: CorrlogHome) -> None:
    """The daemon's start-up check finds the old layout and rebuilds the index."""
    use_engine(synced, "tantivy")
    datadir = DataDir(synced.data, "tantivy")
    write_old_layout_index(datadir.index_dir)
    with datadir.open() as session:
        assert "older corrlog" in str(session.index.problem(session.state.expected_docs()))
    daemon = Daemon(lambda: load_settings(synced.config), make_pipeline, finish_pass, {})
    daemon._check_store(datadir)
    with datadir.open() as session:
        assert session.index.problem(session.state.expected_docs()) is None
    assert 1 == len(found(synced, "plaintextonlyword"))


def test_missing_tantivy_is_one_line(synced: CorrlogHome, tmp_path: Path) -> None:
    """With tantivy configured but not importable, search says how to install it (exit 2)."""
    use_engine(synced, "tantivy")
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "tantivy.py").write_text('raise ImportError("simulated: not installed")\n')
    result = synced.run("search", "invoice", env=synced.env(PYTHONPATH=str(fake)))
    assert 2 == result.code
    expected = "the tantivy engine needs the tantivy package: pip install 'corrlog[tantivy]'"
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert 1 == len(result.stderr.strip().splitlines())


def test_tantivy_files_are_private(synced: CorrlogHome) -> None:
    """Everything the tantivy engine writes through the CLI is 0600 in a 0700 folder."""
    use_engine(synced, "tantivy")
    synced.ok("reindex")
    directory = synced.data / "index-tantivy"
    assert 0o700 == stat.S_IMODE(directory.stat().st_mode)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in directory.iterdir()}
    assert modes
    assert {0o600} == set(modes.values()), modes
