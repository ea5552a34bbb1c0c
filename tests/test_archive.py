"""The content-addressed archive: raw bytes stored by sha256, atomically, owner-only."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest

from corrlog.archive import SYNCFS, Archive, ArchiveError, sha256_hex

DATA = b"From: bob@acme.example\r\n\r\nHello\r\n"
DIGEST = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    """An archive with its directories created."""
    store = Archive(tmp_path / "archive")
    store.ensure()
    return store


def mode(path: Path) -> int:
    """The permission bits of `path`."""
    return stat.S_IMODE(path.stat().st_mode)


def files_under(root: Path) -> list[Path]:
    """Every regular file below `root`, sorted."""
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_sha256_hex() -> None:
    """sha256_hex is the hex sha256 of the bytes."""
    assert DIGEST == sha256_hex(DATA)


def test_put_returns_hash_and_stores_by_prefix(archive: Archive) -> None:
    """put returns the sha256 and stores the bytes at root/<first two>/<rest>."""
    digest = archive.put(DATA)
    assert DIGEST == digest
    target = archive.root / DIGEST[:2] / DIGEST[2:]
    assert target == archive.path(digest)
    assert DATA == target.read_bytes()
    assert DATA == archive.get(digest)
    assert archive.has(digest)


def test_put_empty_bytes(archive: Archive) -> None:
    """Empty content is stored and read back like any other."""
    digest = archive.put(b"")
    assert hashlib.sha256(b"").hexdigest() == digest
    assert b"" == archive.get(digest)


def test_permissions_owner_only(archive: Archive) -> None:
    """Stored files are 0600; the root, the bucket and tmp directories are 0700."""
    digest = archive.put(DATA)
    target = archive.path(digest)
    assert 0o600 == mode(target)
    assert 0o700 == mode(target.parent)
    assert 0o700 == mode(archive.root)
    assert 0o700 == mode(archive.root / "tmp")


def test_ensure_tightens_existing_root(tmp_path: Path) -> None:
    """ensure() makes an existing, too-open archive root 0700."""
    root = tmp_path / "archive"
    root.mkdir(mode=0o755)
    root.chmod(0o755)
    Archive(root).ensure()
    assert 0o700 == mode(root)


def test_put_twice_is_a_no_op(archive: Archive) -> None:
    """Storing the same bytes again keeps the file untouched and adds nothing."""
    digest = archive.put(DATA)
    before = archive.path(digest).stat().st_mtime_ns
    files_before = files_under(archive.root)
    assert digest == archive.put(DATA)
    assert before == archive.path(digest).stat().st_mtime_ns
    assert files_before == files_under(archive.root)


def test_no_temp_files_left(archive: Archive) -> None:
    """After put, the tmp directory is empty and only the objects exist."""
    first = archive.put(DATA)
    second = archive.put(b"other")
    assert [] == list((archive.root / "tmp").iterdir())
    assert sorted([archive.path(first), archive.path(second)]) == files_under(archive.root)


def test_put_write_failure_is_archive_error(archive: Archive) -> None:
    """An OS error while writing is an ArchiveError with a remedy, and leaves no object."""
    tmp = archive.root / "tmp"
    tmp.rmdir()
    tmp.write_bytes(b"")  # a file where the tmp directory should be
    with pytest.raises(ArchiveError, match="cannot write to the archive") as caught:
        archive.put(DATA)
    assert "free some space or fix permissions" in str(caught.value)
    assert not archive.has(DIGEST)


def test_get_missing_names_hash(archive: Archive) -> None:
    """Reading an object that is not stored is an ArchiveError naming its hash."""
    with pytest.raises(ArchiveError) as caught:
        archive.get(DIGEST)
    assert DIGEST in str(caught.value)


@pytest.mark.parametrize(
    "name",
    ["", "xyz", DIGEST[:-1], DIGEST + "0", DIGEST.upper(), "../" + DIGEST[3:], "g" * 64],
)
def test_path_rejects_non_hex(archive: Archive, name: str) -> None:
    """Anything but 64 lower-case hex digits is rejected before touching the disk."""
    with pytest.raises(ArchiveError, match="not a sha256 hex digest"):
        archive.path(name)


def test_has_rejects_non_hex(archive: Archive) -> None:
    """has() validates the name like path() does."""
    with pytest.raises(ArchiveError):
        archive.has("../../etc/passwd")


def test_clean_tmp_removes_leftovers(archive: Archive) -> None:
    """clean_tmp removes half-written put-* files, counts them, and leaves other files."""
    tmp = archive.root / "tmp"
    (tmp / "put-abc123").write_bytes(b"half")
    (tmp / "put-def456").write_bytes(b"")
    (tmp / "keep.txt").write_bytes(b"x")
    assert 2 == archive.clean_tmp()
    assert [tmp / "keep.txt"] == sorted(tmp.iterdir())
    assert 0 == archive.clean_tmp()


def test_iter_hashes_lists_stored_objects(archive: Archive) -> None:
    """iter_hashes yields every stored object's hash in sorted order, not the tmp files."""
    digests = [archive.put(data) for data in (b"one", b"two", b"three")]
    (archive.root / "tmp" / "put-leftover").write_bytes(b"x")
    assert sorted(digests) == list(archive.iter_hashes())


def test_iter_hashes_empty(archive: Archive) -> None:
    """An empty archive has no objects."""
    assert [] == list(archive.iter_hashes())


def test_put_many_stores_a_batch_in_order_once_each(archive: Archive) -> None:
    """Hashes come back in input order; a repeat within the batch or of a stored object is kept once."""
    batch = [b"one", b"two", b"one", DATA]
    archive.put(DATA)
    digests = archive.put_many(batch)
    assert digests == [sha256_hex(d) for d in batch]
    assert [archive.get(d) for d in digests] == batch
    assert len(files_under(archive.root)) == 3


def test_put_many_without_syncfs_fsyncs_each_bucket_once(
    archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without syncfs: each object fsynced, each bucket directory once per batch, and the
    archive root after bucket directories were created in it."""
    synced: list[Path] = []
    monkeypatch.setattr("corrlog.archive.SYNCFS", None)
    monkeypatch.setattr("corrlog.archive._fsync_dir", synced.append)
    batch = [f"message {n}".encode() for n in range(300)]
    archive.put_many(batch)
    buckets = {archive.path(sha256_hex(d)).parent for d in batch}
    assert [*sorted(buckets), archive.root] == synced
    assert len(synced) < len(batch)
    assert [archive.get(sha256_hex(d)) for d in batch] == batch


def test_put_without_syncfs_fsyncs_the_root_only_for_a_new_bucket(
    archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new bucket directory is an entry in the root: the root is fsynced then, not when
    the bucket exists already (made by this archive object or an earlier one)."""
    synced: list[Path] = []
    monkeypatch.setattr("corrlog.archive.SYNCFS", None)
    monkeypatch.setattr("corrlog.archive._fsync_dir", synced.append)
    first = archive.put(b"one")
    assert [archive.path(first).parent, archive.root] == synced
    bucket = archive.path(first).parent
    twins = (
        data for n in range(100_000) if sha256_hex(data := f"twin {n}".encode())[:2] == first[:2]
    )
    for owner in (archive, Archive(archive.root)):
        synced.clear()
        owner.put(next(twins))
        assert [bucket] == synced


@pytest.mark.skipif(SYNCFS is None, reason="syncfs(2) needs Linux >= 5.8")
def test_put_many_with_syncfs_flushes_twice_per_batch(
    archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Temp files flushed before any rename, renames flushed before returning: two calls."""
    calls: list[int] = []
    real = SYNCFS

    def spy(fd: int) -> None:
        calls.append(len(files_under(archive.root / "tmp")))
        real(fd)

    monkeypatch.setattr("corrlog.archive.SYNCFS", spy)
    batch = [f"message {n}".encode() for n in range(50)]
    archive.put_many(batch)
    assert calls == [50, 0]  # first with every temp file written, then after every rename
    assert [archive.get(sha256_hex(d)) for d in batch] == batch


def test_put_many_failing_flush_leaves_no_object_and_no_temp_file(
    archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An I/O error from the flush: ArchiveError, nothing half-stored, no temp files left."""

    def failing(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr("corrlog.archive.SYNCFS", failing)
    with pytest.raises(ArchiveError, match="Input/output error"):
        archive.put_many([b"one", b"two"])
    assert files_under(archive.root) == []


@pytest.mark.parametrize("failing_call", [1, 2])
def test_put_many_failure_after_renames_removes_what_it_renamed(
    archive: Archive, monkeypatch: pytest.MonkeyPatch, failing_call: int
) -> None:
    """A failed flush before or after the renames: no object of the batch is left to be trusted."""
    calls: list[int] = []

    def flush(fd: int) -> None:
        calls.append(fd)
        if len(calls) == failing_call:
            raise OSError(5, "Input/output error")

    monkeypatch.setattr("corrlog.archive.SYNCFS", flush)
    archive.put(DATA)
    with pytest.raises(ArchiveError, match="Input/output error"):
        archive.put_many([b"one", b"two", DATA])
    assert files_under(archive.root) == [archive.path(DIGEST)]  # only what was there before


def test_put_each_failure_removes_what_it_renamed(
    archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without syncfs, a failing directory fsync also leaves nothing of the batch behind."""

    def failing(directory: Path) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr("corrlog.archive.SYNCFS", None)
    monkeypatch.setattr("corrlog.archive._fsync_dir", failing)
    with pytest.raises(ArchiveError):
        archive.put_many([b"one", b"two"])
    assert files_under(archive.root) == []
