"""Content-addressed archive of raw item bytes: one file per sha256, written atomically."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from corrlog.errors import CorrlogError

_SHA = re.compile(r"[0-9a-f]{64}")


def sha256_hex(data: bytes) -> str:
    """The hex sha256 of `data`."""
    return hashlib.sha256(data).hexdigest()


class ArchiveError(CorrlogError):
    """The archive could not be read or written."""


class Archive:
    """Raw bytes stored under `root/ab/cdef…` by their sha256; files 0600, dirs 0700."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._tmp = root / "tmp"

    def ensure(self) -> None:
        """Create the archive directories (0700)."""
        for directory in (self.root, self._tmp):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            directory.chmod(0o700)

    def path(self, sha256: str) -> Path:
        """Where the object with this hash lives."""
        if not _SHA.fullmatch(sha256):
            raise ArchiveError(f"{sha256!r} is not a sha256 hex digest")
        return self.root / sha256[:2] / sha256[2:]

    def has(self, sha256: str) -> bool:
        """Whether the object is stored."""
        return self.path(sha256).exists()

    def put(self, data: bytes) -> str:
        """Store `data` (a no-op when already stored) and return its sha256."""
        return self.put_many([data])[0]

    def put_many(self, items: list[bytes]) -> list[str]:
        """Store a batch durably and return the hashes, in order.

        Each new object is written to a temp file and fsynced, renamed into its bucket, and
        each bucket touched is fsynced once at the end (not once per object): when this
        returns, every object survives a crash.
        """
        digests = [sha256_hex(data) for data in items]
        touched: set[Path] = set()
        try:
            for digest, data in zip(digests, items, strict=True):
                target = self.path(digest)
                if target.exists():
                    continue
                self._write_atomically(target, data)
                touched.add(target.parent)
            for directory in sorted(touched):
                _fsync_dir(directory)
        except OSError as exc:
            raise ArchiveError(
                f"cannot write to the archive at {self.root}: {exc.strerror}; "
                "free some space or fix permissions, then sync again"
            ) from None
        return digests

    def _write_atomically(self, target: Path, data: bytes) -> None:
        """Temp file, fsync, rename; the caller fsyncs the target's directory."""
        target.parent.mkdir(mode=0o700, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp, prefix="put-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            Path(tmp_name).chmod(0o600)
            Path(tmp_name).replace(target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                Path(tmp_name).unlink()
            raise

    def get(self, sha256: str) -> bytes:
        """The stored bytes; ArchiveError when missing."""
        try:
            return self.path(sha256).read_bytes()
        except FileNotFoundError:
            raise ArchiveError(f"archived object {sha256} is missing from {self.root}") from None

    def iter_hashes(self) -> Iterator[str]:
        """Every object name found on disk (the name, not a re-computed hash)."""
        for bucket in sorted(self.root.glob("[0-9a-f][0-9a-f]")):
            for item in sorted(bucket.iterdir()):
                yield bucket.name + item.name

    def clean_tmp(self) -> int:
        """Remove half-written temp files left by a crash; return how many."""
        removed = 0
        for leftover in self._tmp.glob("put-*"):
            leftover.unlink(missing_ok=True)
            removed += 1
        return removed


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
