"""The data directory: where the archive, database and index live, and the single-writer lock."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from corrlog.archive import Archive
from corrlog.db import connect
from corrlog.errors import CorrlogError, LockError
from corrlog.index import SearchIndex, index_dirname, open_index
from corrlog.ledger import Clock, Ledger, utc_now
from corrlog.logging import get_logger
from corrlog.state import State


@dataclass
class Session:
    """Open handles on one data directory."""

    conn: sqlite3.Connection
    archive: Archive
    ledger: Ledger
    state: State
    index: SearchIndex

    def close(self) -> None:
        """Close the database connection."""
        self.conn.close()


class DataDir:
    """Paths under the data directory and how to open them."""

    def __init__(self, root: Path, engine: str = "whoosh") -> None:
        self.root = root
        self.engine = engine
        self.archive_dir = root / "archive"
        self.db_path = root / "corrlog.db"
        self.index_dir = root / index_dirname(engine)  # each engine its own: switching never mixes
        self.lock_path = root / "write.lock"

    def ensure(self) -> None:
        """Create the data directory tree with owner-only permissions."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.root.chmod(0o700)
        Archive(self.archive_dir).ensure()

    def initialised(self) -> bool:
        """Whether anything has been synced here yet."""
        return self.db_path.exists()

    @contextlib.contextmanager
    def open(self, *, create: bool = False, clock: Clock = utc_now) -> Iterator[Session]:
        """Open the archive, ledger, state and index; `create` makes them when missing."""
        if create:
            self.ensure()
        elif not self.initialised():
            raise CorrlogError(f"nothing archived yet in {self.root}; run 'corrlog sync' first")
        search_index = open_index(self.index_dir, self.engine)
        conn = connect(self.db_path)
        session = Session(
            conn=conn,
            archive=Archive(self.archive_dir),
            ledger=Ledger(conn, clock),
            state=State(conn),
            index=search_index,
        )
        if create and not session.index.exists():
            session.index.create()
        try:
            yield session
        finally:
            session.close()

    @contextlib.contextmanager
    def write_lock(self, timeout: float = 600.0) -> Iterator[None]:
        """Hold the single-writer lock; wait (saying so once) while another process has it."""
        self.ensure()
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            _acquire(fd, self.lock_path, timeout)
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            yield
        finally:
            os.close(fd)


def _acquire(fd: int, path: Path, timeout: float) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        pass
    holder = path.read_text(errors="replace").strip() or "unknown"
    get_logger().info("another corrlog process is writing; waiting", pid=holder, lock=str(path))
    deadline = time.monotonic() + timeout
    delay = 0.05
    while time.monotonic() < deadline:
        time.sleep(delay)
        delay = min(delay * 2, 1.0)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            continue
    raise LockError(
        f"another corrlog process (pid {holder}) kept the write lock {path} for {timeout:.0f}s; "
        "try again when it has finished"
    )
