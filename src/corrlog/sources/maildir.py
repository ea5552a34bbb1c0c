"""The Maildir source: every folder with cur/ and new/ below a path; files are only ever read."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from corrlog.logging import get_logger


@dataclass(frozen=True, slots=True)
class MaildirFile:
    """A message file: its folder (relative to the source path), stable key, directory, name."""

    folder: str
    key: str
    directory: Path
    name: str

    @property
    def path(self) -> Path:
        """The file's path (made on use: a scan lists every file of a changed directory)."""
        return self.directory / self.name


def message_key(name: str) -> str:
    """A file's stable key: its name without the `:2,FLAGS` info that changes with flags
    (as text: see `as_text`)."""
    for separator in (":2,", "!2,", ":1,"):
        if separator in name:
            return as_text(name.split(separator, 1)[0])
    return as_text(name)


def as_text(name: str) -> str:
    """A file or folder name as it is stored and shown: bytes that are not UTF-8 (which
    Python keeps as surrogates, and SQLite refuses) written as `\\xff` escapes."""
    if name.isascii():
        return name
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return name


def folders(root: Path) -> Iterator[Path]:
    """Every Maildir below (and including) `root`: directories that hold cur/ and new/."""
    for directory, subdirs, _files in os.walk(root):
        here = Path(directory)
        if {"cur", "new"} <= set(subdirs):
            yield here
        subdirs[:] = sorted(d for d in subdirs if d not in ("cur", "new", "tmp"))


# A directory listed while its mtime is this recent may still gain an entry within the same
# timestamp tick: its mtime is not trusted for skipping until it is older than this.
SETTLED_NS = 2_000_000_000


@dataclass
class Listing:
    """Which `cur`/`new` directories a scan may skip, and the mtimes it saw (to skip next time)."""

    known: dict[str, int]  # relative directory -> mtime (ns) when it was last fully read
    now_ns: int
    seen: dict[str, int] = field(default_factory=dict)

    def unchanged(self, relative: str, mtime_ns: int) -> bool:
        """Whether the directory is as it was when last read (so it holds nothing new)."""
        return self.known.get(relative) == mtime_ns

    def saw(self, relative: str, mtime_ns: int) -> None:
        """Note a listed directory's mtime (taken before listing), when settled enough to trust."""
        if self.now_ns - mtime_ns > SETTLED_NS:
            self.seen[relative] = mtime_ns

    def forget(self, file: MaildirFile) -> None:
        """A file in this directory could not be read: list the directory again next time."""
        self.seen.pop(str(Path(file.folder) / file.directory.name), None)


@dataclass(frozen=True, slots=True)
class Listed:
    """A `cur` or `new` directory as listed: its folder (relative to the root) and file names."""

    folder: str
    directory: Path
    names: list[str]

    def keys(self) -> list[str]:
        """The names' message keys, in order."""
        return [message_key(name) for name in self.names]

    def file(self, name: str, key: str | None = None) -> MaildirFile:
        """One of its files (a pass makes these only for the files it reads: see mailsync)."""
        return MaildirFile(self.folder, key or message_key(name), self.directory, name)


def listed(root: Path, listing: Listing | None = None) -> Iterator[Listed]:
    """Every `new` and `cur` directory below `root` with its message file names (dot-files
    left out; tmp/ is never read).

    With a `listing`, directories whose mtime is unchanged since they were last read are
    skipped (adding, removing or renaming a file changes its directory's mtime).
    """
    log = get_logger(source="maildir", root=str(root))
    if not root.is_dir():
        log.info("maildir missing; nothing to read", path=str(root))
        return
    for folder in folders(root):
        relative = as_text(str(folder.relative_to(root))) if folder != root else ""
        for sub in ("new", "cur"):
            directory = folder / sub
            try:
                names = _names(directory, str(Path(relative) / sub), listing)
            except OSError as exc:
                log.warning(
                    "cannot list maildir folder; skipped", path=str(directory), reason=exc.strerror
                )
                continue
            if names:
                yield Listed(relative, directory, [n for n in names if not n.startswith(".")])


def _names(directory: Path, relative: str, listing: Listing | None) -> list[str]:
    """The sorted entries of a directory; none when the listing says it is unchanged."""
    if listing is None:
        return _listdir(directory)
    mtime = directory.stat().st_mtime_ns  # before listing: a later change shows next time
    if listing.unchanged(relative, mtime):
        listing.seen[relative] = mtime
        return []
    names = _listdir(directory)  # may fail: then the directory is not marked as read
    listing.saw(relative, mtime)
    return names


def _listdir(directory: Path) -> list[str]:
    """Entry names, sorted (names only: no Path object per file of a 10,000-file folder)."""
    return sorted(os.listdir(directory))  # noqa: PTH208
