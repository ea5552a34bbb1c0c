"""Content-addressed archive of raw item bytes: one file per sha256, written atomically."""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import platform
import re
import secrets
import sys
from collections.abc import Callable, Iterator
from itertools import count
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
        # Temp names unique to this object: no random name and retry per file (mkstemp)
        self._tmp_prefix = f"{self._tmp}{os.sep}put-{os.getpid()}-{secrets.token_hex(6)}-"
        self._tmp_count = count()
        self._buckets: set[Path] = set()  # bucket directories known to exist

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
        """Store a batch durably and return the hashes, in order; when this returns, every
        object survives a crash (objects already stored are not written again)."""
        digests = [sha256_hex(data) for data in items]
        todo: dict[Path, bytes] = {}
        for digest, data in zip(digests, items, strict=True):
            target = self.path(digest)
            if target not in todo and not target.exists():
                todo[target] = data
        created: list[Path] = []
        try:
            if len(todo) > 1 and SYNCFS is not None:
                self._put_batch(todo, SYNCFS, created)
            else:
                self._put_each(todo, created)
        except OSError as exc:
            # Objects renamed into place before the failure may not be durable; a retry
            # would find them and trust them. Only this call created them: remove them.
            for target in created:
                target.unlink(missing_ok=True)
            raise ArchiveError(
                f"cannot write to the archive at {self.root}: {exc.strerror}; "
                "free some space or fix permissions, then sync again"
            ) from None
        return digests

    def _put_each(self, todo: dict[Path, bytes], created: list[Path]) -> None:
        """Temp file, fsync, rename per object; each bucket directory fsynced once at the end,
        and the archive root when a bucket directory was created in it."""
        new_bucket = False
        for target, data in todo.items():
            tmp = self._write_tmp(data, sync=True)
            new_bucket |= self._move(tmp, target)
            created.append(target)
        for directory in sorted({target.parent for target in todo}):
            _fsync_dir(directory)
        if new_bucket:
            _fsync_dir(self.root)

    def _put_batch(
        self, todo: dict[Path, bytes], syncfs: Callable[[int], None], created: list[Path]
    ) -> None:
        """All temp files, one syncfs (their bytes are on disk), all renames, one more syncfs.

        Two flushes of the file system per batch instead of two fsyncs per object; a rename
        that survives a crash always points at complete bytes.
        """
        written: list[tuple[Path, Path]] = []
        fd = os.open(self.root, os.O_RDONLY)
        try:
            for target, data in todo.items():
                written.append((self._write_tmp(data, sync=False), target))
            syncfs(fd)
            for tmp, target in written:
                self._move(tmp, target)
                created.append(target)
            syncfs(fd)
        finally:
            os.close(fd)
            for tmp, _target in written:  # left only when something failed
                tmp.unlink(missing_ok=True)

    def _write_tmp(self, data: bytes, *, sync: bool) -> Path:
        """A complete temp file (0600) holding `data`; removed again if writing fails."""
        name = f"{self._tmp_prefix}{next(self._tmp_count)}"
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                if sync:
                    os.fsync(fd)
            finally:
                os.close(fd)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                Path(name).unlink()
            raise
        return Path(name)

    def _move(self, tmp: Path, target: Path) -> bool:
        """Rename a finished temp file to its place; whether its bucket directory was created."""
        made = False
        if target.parent not in self._buckets:
            try:
                target.parent.mkdir(mode=0o700)
                made = True
            except FileExistsError:
                pass
            self._buckets.add(target.parent)
        tmp.replace(target)
        return made

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


def _linux_syncfs() -> Callable[[int], None] | None:
    """syncfs(2) on Linux >= 5.8 (older kernels do not report writeback errors through it)."""
    release = platform.release().split(".")
    if sys.platform != "linux" or not all(x.isdigit() for x in release[:2]):
        return None
    if (int(release[0]), int(release[1])) < (5, 8):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    function.argtypes, function.restype = [ctypes.c_int], ctypes.c_int

    def syncfs(fd: int) -> None:
        if function(fd) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))

    return syncfs


SYNCFS = _linux_syncfs()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
