"""The notes source: find note files under the configured folders, skipping editor junk."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from corrlog.logging import first_time, get_logger

NOTE_SUFFIXES = frozenset({".md", ".markdown", ".txt"})
_JUNK = re.compile(r"(^\.|^#.*#$|~$|\.sw[a-p]$|\.tmp$|^4913$|\.bak$|\.orig$)", re.I)


@dataclass(frozen=True, slots=True)
class NoteFile:
    """A note file as found on disk (nothing read yet)."""

    root: Path
    path: Path
    mtime_ns: int
    size: int

    @property
    def relative(self) -> Path:
        """The path below its notes folder."""
        return self.path.relative_to(self.root)


def is_note_name(name: str) -> bool:
    """Whether a file name is a note (right suffix, not an editor temp, swap or hidden file)."""
    if _JUNK.search(name):
        return False
    return Path(name).suffix.lower() in NOTE_SUFFIXES


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def scan(root: Path) -> Iterator[NoteFile]:
    """Every note file below `root`, recursively; unreadable places are logged and skipped."""
    log = get_logger(source="notes", root=str(root))
    if not root.is_dir():
        if first_time("notes-missing", str(root)):
            log.warning("notes folder missing; create it or fix [notes] paths", path=str(root))
        return

    def on_error(exc: OSError) -> None:
        if first_time("folder", str(exc.filename), str(exc.strerror)):
            log.warning("cannot read folder; skipped", path=exc.filename, reason=exc.strerror)

    for directory, subdirs, files in os.walk(root, onerror=on_error):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in sorted(files):
            if not is_note_name(name):
                continue
            if not _utf8(name):
                log.warning(
                    "note file name is not valid UTF-8; skipped (rename it)",
                    path=os.fsencode(Path(directory) / name).decode("utf-8", "replace"),
                )
                continue
            path = Path(directory) / name
            try:
                stat = path.stat()
            except OSError as exc:
                if first_time("stat", str(path), str(exc.strerror)):
                    log.warning("cannot stat note; skipped", path=str(path), reason=exc.strerror)
                continue
            if path.is_file():
                yield NoteFile(root=root, path=path, mtime_ns=stat.st_mtime_ns, size=stat.st_size)
