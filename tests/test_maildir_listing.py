"""Incremental Maildir passes: unchanged directories are not listed again, and nothing is missed."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC
from pathlib import Path

import pytest

from corrlog import mailsync
from corrlog.config import ContractConfig, MaildirSource
from corrlog.datadir import DataDir
from corrlog.pipeline import Pipeline
from corrlog.sources import maildir
from support.mail import CLIENT, FRIEND, ME, message, write_maildir

HOUR_NS = 3600 * 10**9


def settle(root: Path) -> None:
    """Age every cur/new directory by an hour, as if the last change was long ago."""
    for directory in [*root.rglob("cur"), *root.rglob("new")]:
        mtime = directory.stat().st_mtime_ns - HOUR_NS
        os.utime(directory, ns=(mtime, mtime))


class Passes:
    """Maildir passes over one root into one data dir, counting directory listings."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = tmp_path / "mail"
        self.datadir = DataDir(tmp_path / "data")
        self.listed: list[Path] = []
        self.unlistable: set[Path] = set()  # root reads everything: listing errors are injected
        self.contracts = [ContractConfig(id="acme-site", client="Acme", emails=[CLIENT])]
        real = maildir._listdir

        def spy(directory: Path) -> list[str]:
            self.listed.append(directory)
            if directory in self.unlistable:
                raise PermissionError(13, "Permission denied", str(directory))
            return real(directory)

        monkeypatch.setattr(maildir, "_listdir", spy)

    def run(self, extra: list[ContractConfig] | None = None) -> mailsync.MailReport:
        """One pass with the Acme contract (and `extra` ones) in the config."""
        self.listed.clear()
        with self.datadir.open(create=True) as session:
            contracts = [*self.contracts, *(extra or [])]
            pipeline = Pipeline.load(session, contracts, frozenset({ME}), UTC)
            return mailsync.sync_maildir(pipeline, MaildirSource(name="m", path=self.root))


@pytest.fixture
def passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Passes:
    """Two folders of client mail, settled."""
    p = Passes(tmp_path, monkeypatch)
    write_maildir(p.root, [message(n) for n in range(3)])
    write_maildir(p.root / "Archive", [message(n) for n in range(3, 6)])
    return p


def test_a_pass_with_nothing_new_lists_no_directory(passes: Passes) -> None:
    """Directories read in full and settled are skipped by the next pass."""
    settle(passes.root)
    assert passes.run().archived == 6
    assert len(passes.listed) == 4  # cur and new of two folders
    assert passes.run().examined == 0
    assert passes.listed == []


def test_a_new_message_changes_its_directory_and_is_found(passes: Passes) -> None:
    """Delivery into one folder lists that folder only, and the message is archived once."""
    settle(passes.root)
    passes.run()
    write_maildir(passes.root / "Archive", [message(99)])
    report = passes.run()
    assert report.archived == 1
    assert {p.parent.name for p in passes.listed} == {"Archive"}


def test_a_directory_changed_moments_ago_is_listed_again(passes: Passes) -> None:
    """A recent mtime is not trusted (a file may land within the same tick): listed next time."""
    passes.run()  # fresh directories: mtimes within the last 2 s
    passes.run()
    assert len(passes.listed) == 4


def test_new_client_addresses_rescan_unchanged_directories(passes: Passes) -> None:
    """Mail skipped as personal is captured once its sender becomes a client, folders unchanged."""
    write_maildir(passes.root, [message(n, sender=FRIEND) for n in range(10, 12)])
    settle(passes.root)
    first = passes.run()
    assert (first.archived, first.private) == (6, 2)
    pal = ContractConfig(id="pal-app", client="Pal", emails=[FRIEND])
    again = passes.run([pal])
    assert again.archived == 2
    assert len(passes.listed) == 4


def test_a_stopped_pass_does_not_mark_directories_read(
    passes: Passes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a pass that committed everything it listed may skip those directories next time."""
    settle(passes.root)
    with passes.datadir.open(create=True) as session, monkeypatch.context() as patch:
        patch.setattr(mailsync, "MAILDIR_BATCH", 2)
        patch.setattr(mailsync, "_stopping", StopAfter(2))
        pipeline = Pipeline.load(session, passes.contracts, frozenset({ME}), UTC)
        report = mailsync.sync_maildir(pipeline, MaildirSource(name="m", path=passes.root))
    assert report.archived == 2
    assert passes.run().archived == 4
    assert len(passes.listed) == 4


class StopAfter:
    """A `_stopping` that says stop after `n` batches have started."""

    def __init__(self, n: int) -> None:
        self.left = n

    def __call__(self, _stop: object) -> bool:
        self.left -= 1
        return self.left < 0


def test_an_unreadable_directory_is_read_once_its_permissions_are_fixed(passes: Passes) -> None:
    """A listing error is not a read: the directory is listed again, even with its mtime unchanged."""
    settle(passes.root)
    passes.unlistable.add(passes.root / "Archive" / "new")
    first = passes.run()
    passes.unlistable.clear()  # chmod changes the ctime, not the mtime
    assert first.archived == 3
    assert passes.run().archived == 3


def test_an_unreadable_message_is_archived_once_it_can_be_read(passes: Passes) -> None:
    """A file that cannot be read keeps its directory from being skipped next time."""
    new = passes.root / "Archive" / "new"
    victim = sorted(new.iterdir())[0]
    data = victim.read_bytes()
    victim.unlink()
    victim.mkdir()  # reading it fails with IsADirectoryError, as with EACCES or EIO
    settle(passes.root)
    first = passes.run()
    assert (first.archived, first.unreadable) == (5, 1)
    before = new.stat().st_mtime_ns
    victim.rmdir()
    victim.write_bytes(data)
    os.utime(new, ns=(before, before))  # readable again, directory mtime as it was
    assert passes.run().archived == 1


def test_listed_files_are_named_by_folder_key_and_path(tmp_path: Path) -> None:
    """A listed file's key drops the flags suffix; its path is its directory joined to its
    name; dot-files are left out."""
    root = tmp_path / "mail"
    for sub in ("cur", "new", "tmp"):
        (root / "inbox" / sub).mkdir(parents=True)
    (root / "inbox" / "cur" / "17.M1P2.host:2,S").write_bytes(b"x")
    (root / "inbox" / "new" / "18.M3P4.host").write_bytes(b"y")
    (root / "inbox" / "cur" / ".hidden").write_bytes(b"z")
    files = [d.file(name) for d in maildir.listed(root) for name in d.names]
    found = [(f.folder, f.key, f.path) for f in files]
    assert [
        ("inbox", "18.M3P4.host", root / "inbox" / "new" / "18.M3P4.host"),
        ("inbox", "17.M1P2.host", root / "inbox" / "cur" / "17.M1P2.host:2,S"),
    ] == found


def test_maildir_unexamined_answers_the_new_keys_among_those_asked(passes: Passes) -> None:
    """maildir_unexamined gives the keys asked that were never examined (and, on a rescan,
    those examined but not captured), in one query however many keys are asked."""
    passes.run()
    with passes.datadir.open() as session:
        state = session.state
        every = _examined(session.conn, "m")
        unknown = [f"unknown-{n}" for n in range(40_000)]
        assert set(unknown) == state.maildir_unexamined("m", [*sorted(every), *unknown])
        assert set() == state.maildir_unexamined("m", sorted(every))
        assert set(every) == state.maildir_unexamined("other", sorted(every))
        skipped = sorted(every)[0]
        state.set_maildir_file("m", skipped, "", captured=False)
        assert set() == state.maildir_unexamined("m", sorted(every))
        assert {skipped} == state.maildir_unexamined("m", sorted(every), recheck_skipped=True)
        assert 0 == _examined(session.conn, "m")[skipped]


def _examined(conn: sqlite3.Connection, source: str) -> dict[str, int]:
    """Every examined key of a source, and whether it was captured."""
    rows = conn.execute("SELECT key, captured FROM maildir_files WHERE source = ?", (source,))
    return {key: int(captured) for key, captured in rows}
