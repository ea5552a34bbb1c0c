"""MappedStorage: Whoosh's reads, served from memory maps without copying the index."""

from __future__ import annotations

import contextlib
import gc
import io
import os
import pickle
import shutil
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from whoosh import index as whoosh_index
from whoosh import query

from corrlog.index import SearchRequest, open_index, search
from corrlog.model import Record
from corrlog.whoosh_storage import ViewCursor, ViewFile, open_mapped
from test_index import mail

DATA = b"first line\nsecond\n\nno newline at the end" + bytes(range(256)) * 3

Op = tuple[str, int]
OPS = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["read", "readline"]), st.integers(-2, 900)),
        st.tuples(st.just("seek"), st.integers(0, 900)),
        st.tuples(st.sampled_from(["seek_cur", "seek_end"]), st.integers(-60, 60)),
    ),
    max_size=25,
)


def _apply(f: io.BytesIO | ViewCursor, op: Op) -> object:
    name, n = op
    if name == "seek":
        return f.seek(n)
    if name in ("seek_cur", "seek_end"):
        whence = os.SEEK_CUR if name == "seek_cur" else os.SEEK_END
        target = n + (f.tell() if whence == os.SEEK_CUR else len(DATA))
        return f.seek(n, whence) if target >= 0 else None
    return getattr(f, name)(n)


@given(OPS, st.integers(0, 40), st.integers(0, 900))
def test_cursor_reads_as_bytesio(ops: list[Op], start: int, length: int) -> None:
    """Any run of reads, line reads and seeks gives BytesIO's bytes and positions, on the
    whole buffer and on a view of part of it."""
    part = DATA[start : start + length]
    for data, view in ((DATA, memoryview(DATA)), (part, memoryview(DATA)[start : start + length])):
        expected, actual = io.BytesIO(data), ViewCursor(view)
        for op in ops:
            if op[0] == "seek_end" and len(data) + op[1] < 0:
                continue
            assert _apply(actual, op) == _apply(expected, op)
            assert actual.tell() == expected.tell()


def test_pickles_load_from_a_cursor_as_from_bytesio() -> None:
    """pickle.load reads ahead with peek and then reads what it used: consecutive pickles,
    small and far larger than a peek, load whole and leave the position where BytesIO's is."""
    objects = [
        (1, 2.5, None),
        {"body": "x" * 100_000, "n": list(range(3000))},
        b"\x00" * 5000,
        "end",
    ]
    data = b"".join(pickle.dumps(value, protocol) for value in objects for protocol in (2, 5))
    expected, actual = io.BytesIO(data), ViewCursor(memoryview(data))
    for value in objects:
        for _protocol in (2, 5):
            assert value == pickle.load(actual) == pickle.load(expected)
            assert expected.tell() == actual.tell()
    assert b"" == actual.peek(10) == actual.read()


def test_peek_does_not_move_the_position() -> None:
    """peek gives the bytes at the position (at least one asked, at most a bounded number)."""
    cursor = ViewCursor(memoryview(DATA))
    cursor.seek(6)
    assert DATA[6:7] == cursor.peek(0)
    assert DATA[6:9] == cursor.peek(3)[:3]
    assert 6 == cursor.tell()
    assert len(cursor.peek(10**9)) <= 4096


def test_view_file_parts_share_the_buffer() -> None:
    """A part of a file is a view of the same bytes: positions start at its own zero."""
    whole = ViewFile(memoryview(DATA), name="whole")
    part = whole.subset(11, 7)
    assert part.read() == b"second\n"
    assert part.get(0, 6) == b"second"
    part.seek(0)
    assert part.readline() == b"second\n"
    assert whole.read(5) == b"first"


def _records(count: int) -> list[Record]:
    return [
        mail(
            f"r{n:04}",
            datetime(2026, 3, 1 + n % 27, tzinfo=UTC),
            f"Invoice {n}",
            " ".join(f"word{(n * k) % 301} text{k % 7}" for k in range(300)),
            n,
        )
        for n in range(count)
    ]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Whoosh index of a few MB, written by corrlog in two commits."""
    path = tmp_path_factory.mktemp("ix")
    index = open_index(path, "whoosh")
    records = _records(1200)
    for batch in (records[:600], records[600:]):
        with index.writer() as writer:
            for record in batch:
                writer.add(record, replace=False)
    return path


QUERIES = [
    query.Term("body", "word7"),
    query.And([query.Term("body", "word3"), query.Term("body", "text4")]),
    query.Phrase("body", ["word0", "text0"]),
    query.Term("subject", "1199"),
    query.Every(),
]


@pytest.mark.parametrize("q", QUERIES, ids=str)
def test_searches_find_what_whooshs_storage_finds(built: Path, q: query.Query) -> None:
    """The same documents, scores and stored fields as through Whoosh's own storage."""
    answers = []
    for opened in (whoosh_index.open_dir(str(built)), open_mapped(str(built))):
        with opened.searcher() as searcher:
            hits = searcher.search(q, limit=None)
            answers.append([(hit["id"], hit.score, hit.fields()) for hit in hits])
    assert answers[0] == answers[1]
    assert answers[0]


def _allocated(action: Callable[[], object]) -> int:
    """The peak of Python allocations while `action` runs."""
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _search(opened: whoosh_index.Index) -> None:
    with opened.searcher() as searcher:
        assert len(searcher.search(query.Term("body", "word7"), limit=5).top_n) == 5


def test_opening_a_searcher_does_not_copy_the_index(built: Path) -> None:
    """Whoosh's storage copies every file it opens into memory; this one maps them."""
    size = sum(path.stat().st_size for path in built.iterdir())
    assert size > 4_000_000
    assert _allocated(lambda: _search(whoosh_index.open_dir(str(built)))) > size / 2
    assert _allocated(lambda: _search(open_mapped(str(built)))) < size / 10


def test_the_engines_first_search_does_not_copy_the_index(built: Path) -> None:
    """corrlog's Whoosh engine opens its index through the maps."""
    size = sum(path.stat().st_size for path in built.iterdir())
    index = open_index(built, "whoosh")
    found = _allocated(lambda: search(index, SearchRequest(text="word7", limit=3)))
    assert found < size / 10
    assert search(index, SearchRequest(text="word7", limit=3)).total > 0


CHILD = """
import os, sys
from pathlib import Path
from corrlog.errors import IndexingError
from corrlog.index import SearchRequest, open_index, search
path = Path(sys.argv[1])
index = open_index(path, "whoosh")
print(search(index, SearchRequest(text="word7")).total, flush=True)
for segment in path.glob("*.seg"):
    os.truncate(segment, segment.stat().st_size // 2)
try:
    search(index, SearchRequest(text="word8"))
except IndexingError as exc:
    print(exc)
"""


def test_segments_truncated_under_a_warm_searcher_are_a_read_error(
    built: Path, tmp_path: Path
) -> None:
    """Damage to mapped files while a process keeps its searcher: the next search reopens on
    the new sizes and says to reindex (reading the old maps past the new end: SIGBUS)."""
    copy = tmp_path / "ix"
    shutil.copytree(built, copy)
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(copy)], capture_output=True, text=True, timeout=120
    )
    assert child.returncode == 0, (child.returncode, child.stderr)
    total, error = child.stdout.splitlines()
    assert int(total) > 0
    assert "cannot be read" in error and "corrlog reindex" in error


def test_an_unknown_whence_is_refused() -> None:
    """As BytesIO: a seek with a whence that is not SET, CUR or END raises."""
    with pytest.raises(ValueError, match="whence"):
        ViewCursor(memoryview(DATA)).seek(0, 3)


def _index_descriptors(path: Path) -> int:
    """Open descriptors of this process on files in `path` (maps keep one each)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            count += os.readlink(f"/proc/self/fd/{fd}").startswith(str(path))
    return count


def test_closing_a_searcher_releases_its_maps_at_once(built: Path) -> None:
    """Whoosh's readers of a multi-segment index form reference cycles; the maps (and their
    descriptors) still go when the searcher is closed, the garbage collector off."""
    before = _index_descriptors(built)
    gc.disable()
    try:
        searcher = open_mapped(str(built)).searcher()
        assert len(searcher.leaf_searchers()) > 1
        assert searcher.search(query.Term("body", "word7"), limit=3).scored_length() == 3
        assert _index_descriptors(built) > before
        searcher.close()
        assert before == _index_descriptors(built)
    finally:
        gc.enable()
