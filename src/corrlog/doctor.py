"""`corrlog doctor`: check config, permissions, database, ledger, index and servers; say what to do."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

from corrlog.config import Settings
from corrlog.datadir import DataDir
from corrlog.errors import ConfigError, CorrlogError
from corrlog.ledger import Ledger, chain_problems
from corrlog.sources.imap import ImapConnection
from corrlog.state import State


@dataclass(frozen=True, slots=True)
class Check:
    """One finding: what was checked, whether it is fine, and what to do if not."""

    name: str
    ok: bool
    detail: str
    remedy: str = ""


def run_checks(settings: Settings, *, servers: bool = True) -> Iterator[Check]:
    """Every check, in order; each is independent of the others' failures."""
    datadir = DataDir(settings.data_dir, settings.index.engine)
    yield _permissions(datadir.root)
    yield from _notes(settings)
    db_ok = yield from _database(datadir)
    if db_ok:
        yield from _ledger_and_index(datadir)
    if servers:
        for account in settings.imap:
            yield _imap(account)


def _permissions(root: Path) -> Check:
    if not root.exists():
        return Check("data dir", False, f"{root} does not exist", "run 'corrlog init'")
    loose = [
        p
        for p in [root, *root.rglob("*")]
        if not p.is_symlink() and stat.S_IMODE(p.stat().st_mode) & 0o077 and "notes" not in p.parts
    ]
    if loose:
        return Check(
            "permissions",
            False,
            f"{len(loose)} files or folders readable by others, e.g. {loose[0]}",
            f"chmod -R go-rwx {root}",
        )
    return Check("permissions", True, f"{root} is private (0700/0600)")


def _notes(settings: Settings) -> Iterator[Check]:
    for path in settings.notes_paths:
        if path.is_dir():
            yield Check("notes folder", True, str(path))
        else:
            yield Check(
                "notes folder",
                False,
                f"{path} is missing",
                f"mkdir -p {path}, or fix [notes] paths",
            )


def _database(datadir: DataDir) -> Generator[Check, None, bool]:
    if not datadir.db_path.exists():
        yield Check("database", True, "nothing archived yet")
        return False
    try:
        conn = sqlite3.connect(f"file:{datadir.db_path}?mode=ro", uri=True)
        try:
            result = [row[0] for row in conn.execute("PRAGMA quick_check")]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        yield Check(
            "database", False, f"{datadir.db_path}: {exc}", "restore corrlog.db from a backup"
        )
        return False
    if result != ["ok"]:
        yield Check(
            "database",
            False,
            f"{datadir.db_path}: {'; '.join(result[:3])}",
            "restore corrlog.db from a backup",
        )
        return False
    yield Check("database", True, str(datadir.db_path))
    return True


def _ledger_and_index(datadir: DataDir) -> Iterator[Check]:
    try:
        with datadir.open() as session:
            problems = list(chain_problems(Ledger(session.conn).entries()))
            if problems:
                yield Check(
                    "ledger",
                    False,
                    problems[0],
                    "run 'corrlog verify'; restore corrlog.db from a backup",
                )
            else:
                yield Check("ledger", True, f"chain of {session.ledger.count()} entries intact")
            issue = session.index.problem(State(session.conn).expected_docs())
            if issue:
                yield Check("index", False, issue, "run 'corrlog reindex'")
            else:
                yield Check("index", True, f"{session.index.doc_count()} documents")
    except ConfigError as exc:  # the configured engine cannot be used (not installed)
        yield Check(
            "index",
            False,
            str(exc),
            "pip install 'corrlog[tantivy]', or set [index] engine = \"whoosh\"",
        )
    except CorrlogError as exc:
        yield Check("database", False, str(exc), "restore corrlog.db from a backup")


def _imap(account: object) -> Check:
    name = getattr(account, "name", "?")
    try:
        with ImapConnection(account) as conn:  # type: ignore[arg-type]
            folders = conn.folders()
    except CorrlogError as exc:
        return Check(
            f"imap {name}", False, str(exc), "check host, port, tls, ca_file and the password"
        )
    return Check(f"imap {name}", True, f"login ok; folders {', '.join(folders)}")
