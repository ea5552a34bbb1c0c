"""The Maildir source: every folder with cur/ and new/ below a path; files are only ever read."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from corrlog.logging import get_logger


@dataclass(frozen=True, slots=True)
class MaildirFile:
    """A message file: its folder (relative to the source path), stable key and path."""

    folder: str
    key: str
    path: Path


def message_key(name: str) -> str:
    """A file's stable key: its name without the `:2,FLAGS` info that changes with flags."""
    for separator in (":2,", "!2,", ":1,"):
        if separator in name:
            return name.split(separator, 1)[0]
    return name


def folders(root: Path) -> Iterator[Path]:
    """Every Maildir below (and including) `root`: directories that hold cur/ and new/."""
    for directory, subdirs, _files in os.walk(root):
        here = Path(directory)
        if {"cur", "new"} <= set(subdirs):
            yield here
        subdirs[:] = sorted(d for d in subdirs if d not in ("cur", "new", "tmp"))


def scan(root: Path) -> Iterator[MaildirFile]:
    """Every message file in every Maildir below `root` (tmp/ is never read)."""
    log = get_logger(source="maildir", root=str(root))
    if not root.is_dir():
        log.info("maildir missing; nothing to read", path=str(root))
        return
    for folder in folders(root):
        relative = str(folder.relative_to(root)) if folder != root else ""
        for sub in ("new", "cur"):
            try:
                names = sorted(p.name for p in (folder / sub).iterdir())
            except OSError as exc:
                log.warning(
                    "cannot list maildir folder; skipped",
                    path=str(folder / sub),
                    reason=exc.strerror,
                )
                continue
            for name in names:
                if name.startswith("."):
                    continue
                yield MaildirFile(relative, message_key(name), folder / sub / name)
