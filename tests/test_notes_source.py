"""The notes source: which files are notes, and scanning folders of them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from corrlog.sources.notes import NoteFile, is_note_name, scan


@pytest.mark.parametrize(
    "name",
    ["a.md", "Meeting 2026-01-15.markdown", "todo.txt", "UPPER.MD", "Mixed.Markdown", "x.TxT"],
)
def test_note_names_accepted(name: str) -> None:
    """.md, .markdown and .txt files are notes, whatever the case of the suffix."""
    assert is_note_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "notes.md.swp",  # vim swap
        "notes.md.swx",
        ".notes.md.swp",
        "notes.md~",  # backup
        "notes~",
        ".#notes.md",  # emacs lock
        "#notes.md#",  # emacs autosave
        "4913",  # vim's write test
        ".hidden.md",  # hidden
        ".md",
        "notes.md.tmp",
        "notes.md.bak",
        "notes.md.orig",
        "report.pdf",
        "notes.mdx",
        "notes",
        "notes.md.",
    ],
)
def test_junk_and_other_names_rejected(name: str) -> None:
    """Editor temp, swap, lock and backup files, hidden files and other suffixes are not notes."""
    assert not is_note_name(name)


def write(path: Path, text: str = "note") -> Path:
    """Write `text` to `path`, creating parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def relatives(found: list[NoteFile]) -> list[str]:
    """The found notes' paths below their root, as strings."""
    return [str(f.relative) for f in found]


def test_scan_recurses_and_filters(tmp_path: Path) -> None:
    """scan finds notes in every sub-folder, sorted, and skips junk and other files."""
    root = tmp_path / "notes"
    for name in ("b.md", "a.txt", "acme-site/kickoff.md", "acme-site/deep/er/x.markdown"):
        write(root / name)
    for name in ("b.md~", "acme-site/.kickoff.md.swp", "acme-site/invoice.pdf", "4913"):
        write(root / name)
    assert ["a.txt", "b.md", "acme-site/kickoff.md", "acme-site/deep/er/x.markdown"] == relatives(
        list(scan(root))
    )


def test_scan_skips_hidden_directories(tmp_path: Path) -> None:
    """Notes inside hidden folders (.git, .obsidian, .trash) are not scanned."""
    root = tmp_path / "notes"
    write(root / "visible.md")
    write(root / ".git" / "description.md")
    write(root / ".obsidian" / "x.md")
    write(root / "sub" / ".trash" / "old.md")
    assert ["visible.md"] == relatives(list(scan(root)))


def test_scan_reports_mtime_and_size(tmp_path: Path) -> None:
    """A NoteFile carries its root, full path, mtime in nanoseconds and size in bytes."""
    root = tmp_path / "notes"
    path = write(root / "sub" / "a.md", "héllo")
    os.utime(path, ns=(1_700_000_000_123_456_789, 1_700_000_000_123_456_789))
    [found] = list(scan(root))
    assert NoteFile(root=root, path=path, mtime_ns=1_700_000_000_123_456_789, size=6) == found
    assert Path("sub/a.md") == found.relative


def test_scan_empty_folder(tmp_path: Path) -> None:
    """An empty notes folder yields nothing and logs nothing."""
    with capture_logs() as logs:
        assert [] == list(scan(tmp_path))
    assert [] == logs


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_scan_missing_root_warns(tmp_path: Path, kind: str) -> None:
    """A missing notes folder (or a file in its place) logs a warning and yields nothing."""
    root = tmp_path / "notes"
    if kind == "file":
        root.write_text("not a folder", encoding="utf-8")
    with capture_logs() as logs:
        found = list(scan(root))
    assert [] == found
    assert [
        {
            "event": "notes folder missing; create it or fix [notes] paths",
            "log_level": "warning",
            "source": "notes",
            "root": str(root),
            "path": str(root),
        }
    ] == logs


def test_scan_symlink_loop_terminates(tmp_path: Path) -> None:
    """A symlink pointing back up the tree is not followed, so the scan ends."""
    root = tmp_path / "notes"
    write(root / "sub" / "a.md")
    (root / "sub" / "loop").symlink_to(root, target_is_directory=True)
    assert ["sub/a.md"] == relatives(list(scan(root)))


def test_scan_symlinked_note_file_included(tmp_path: Path) -> None:
    """A symlink to a note file is reported (with the target's size)."""
    root = tmp_path / "notes"
    target = write(tmp_path / "elsewhere.md", "12345")
    root.mkdir()
    (root / "link.md").symlink_to(target)
    [found] = list(scan(root))
    assert (root / "link.md", 5) == (found.path, found.size)


def test_scan_dangling_symlink_warns(tmp_path: Path) -> None:
    """A note whose symlink target is gone is skipped with a warning; the rest is scanned."""
    root = tmp_path / "notes"
    write(root / "ok.md")
    (root / "gone.md").symlink_to(tmp_path / "nowhere.md")
    with capture_logs() as logs:
        found = list(scan(root))
    assert ["ok.md"] == relatives(found)
    assert [("cannot stat note; skipped", str(root / "gone.md"))] == [
        (entry["event"], entry["path"]) for entry in logs
    ]


def test_scan_unreadable_subfolder(tmp_path: Path) -> None:
    """An unreadable sub-folder does not stop the scan (and is reported when not root)."""
    root = tmp_path / "notes"
    write(root / "ok.md")
    locked = root / "locked"
    write(locked / "secret.md")
    locked.chmod(0o000)
    try:
        with capture_logs() as logs:
            found = relatives(list(scan(root)))
    finally:
        locked.chmod(0o700)
    assert "ok.md" in found
    if os.geteuid() != 0:  # root reads through chmod 000
        assert ["ok.md"] == found
        assert [("cannot read folder; skipped", str(locked))] == [
            (entry["event"], entry["path"]) for entry in logs
        ]
