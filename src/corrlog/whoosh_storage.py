"""Whoosh's file storage, reading index files through memory maps without copying them.

Whoosh maps each compound segment file, then opens every file inside it as a `BytesIO`
of the mapped bytes, and `BytesIO` copies what it is given: opening a searcher read the
whole index into memory. On the Enron index (383 MB) the first search of a process took
~0.26 s before it started and left the daemon at ~820 MB RSS. `MappedStorage` opens every
file as a `ViewFile` over a memoryview of its map instead: the same Whoosh reads, served
from the page cache, with only the pages a search touches resident (first search ~20 ms,
daemon ~100 MB). Nothing is written differently; writers use Whoosh's own methods.
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path
from typing import Any

from whoosh.filedb.filestore import FileStorage
from whoosh.filedb.structfile import BufferFile
from whoosh.index import _DEF_INDEX_NAME, Index

_LINE_CHUNK = 256
_PEEK = 4096  # bytes a peek returns at most (a posting block header is ~50)


def open_mapped(directory: str) -> Index:
    """`whoosh.index.open_dir(directory)`, its files read through `MappedStorage`."""
    return MappedStorage(directory).open_index(_DEF_INDEX_NAME)


class MappedStorage(FileStorage):  # type: ignore[misc]
    """A FileStorage whose files open as zero-copy views of a read-only memory map.

    `supports_mmap` is off so that a compound segment file asks the file for its parts
    (`subset`), which are views too, instead of mapping and copying them itself.
    """

    def __init__(self, path: str) -> None:
        super().__init__(path, supports_mmap=False)
        self._mapped: dict[str, tuple[int, int]] = {}  # file name: (inode, size) when mapped

    def open_file(self, name: str, **kwargs: Any) -> ViewFile:
        """The file `name` (FileNotFoundError when it is gone, as Whoosh's own)."""
        fd = os.open(self._fpath(name), os.O_RDONLY | os.O_CLOEXEC)
        try:
            info = os.fstat(fd)
            if info.st_size == 0:  # an empty file cannot be mapped
                return ViewFile(memoryview(b""), name=name, **kwargs)
            mapped = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
        finally:
            os.close(fd)  # the map keeps its own descriptor
        self._mapped[name] = (info.st_ino, info.st_size)
        return ViewFile(memoryview(mapped), name=name, **kwargs)

    def maps_intact(self) -> bool:
        """Whether no file mapped so far has changed size since.

        Reading a mapped page past the end of a file truncated since kills the process
        (SIGBUS). Whoosh never changes a file once written, so a new size is damage: the
        caller opens the index again, on the new sizes, and the damage is a read error. A
        file that is gone (a merged segment) or replaced (another inode) cannot shrink
        under the map.
        """
        for name, (inode, size) in list(self._mapped.items()):
            try:
                info = Path(self._fpath(name)).stat()
            except FileNotFoundError:
                continue
            if info.st_ino == inode and info.st_size != size:
                return False
        return True


class ViewFile(BufferFile):  # type: ignore[misc]
    """Whoosh's BufferFile, its sequential reads served by a `ViewCursor` instead of a
    `BytesIO` copy of the buffer, its parts views of the same buffer."""

    def __init__(self, buf: memoryview, name: str | None = None, onclose: Any = None) -> None:
        self._buf = buf
        self._name = name
        self.file = ViewCursor(buf)
        self.onclose = onclose
        self.is_real = False
        self.is_closed = False

    def subset(self, position: int, length: int, name: str | None = None) -> ViewFile:
        """The bytes at `position`, `length` long, as a file of their own (no copy)."""
        return ViewFile(self._buf[position : position + length], name=name or self._name)

    def close(self) -> None:
        """Close as Whoosh does, and release the view: a map is unmapped (and its
        descriptor closed) once every view of it is released, without waiting for the
        garbage collector to break the reference cycles between Whoosh's readers."""
        super().close()
        self._buf.release()


class ViewCursor:
    """The file methods Whoosh's StructFile and pickle use, over a memoryview."""

    def __init__(self, buf: memoryview) -> None:
        self._buf = buf
        self._pos = 0

    def read(self, size: int | None = -1) -> bytes:
        """Up to `size` bytes from the position (all that is left when negative or None)."""
        start, total = self._pos, len(self._buf)
        end = total if size is None or size < 0 else min(start + size, total)
        self._pos = max(start, end)
        return bytes(self._buf[start:end])

    def peek(self, size: int = 0) -> bytes:
        """Bytes from the position without moving it (at most _PEEK of them). pickle.load
        reads ahead with it, then reads only what it used: two calls per block header
        instead of one per pickle opcode (~20)."""
        start = self._pos
        return bytes(self._buf[start : start + min(max(size, 1), _PEEK)])

    def readline(self, size: int | None = -1) -> bytes:
        """The bytes up to and including the next newline (or `size` bytes, or the end)."""
        buf, start = self._buf, self._pos
        limit = len(buf) if size is None or size < 0 else min(start + size, len(buf))
        stop, scan = limit, start
        while scan < limit:
            found = bytes(buf[scan : min(scan + _LINE_CHUNK, limit)]).find(b"\n")
            if found >= 0:
                stop = scan + found + 1
                break
            scan += _LINE_CHUNK
        self._pos = max(start, stop)
        return bytes(buf[start:stop])

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """Move the position (as a file's seek; past the end reads nothing)."""
        if whence == os.SEEK_CUR:
            offset += self._pos
        elif whence == os.SEEK_END:
            offset += len(self._buf)
        elif whence != os.SEEK_SET:
            raise ValueError(f"invalid whence ({whence})")
        if offset < 0:
            raise ValueError(f"negative seek position {offset}")
        self._pos = offset
        return offset

    def tell(self) -> int:
        """The position."""
        return self._pos

    def close(self) -> None:
        """Nothing to release: the map goes when the last view of it does."""
