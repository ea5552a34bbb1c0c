"""The Whoosh engine's merge policy: small segments merged together, big ones never."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from whoosh import index as whoosh_index

import corrlog.index_whoosh
from corrlog.index import SearchRequest, open_index
from corrlog.index_whoosh import MERGE_AT
from corrlog.model import Record
from test_index import mail


def _record(n: int) -> Record:
    return mail(f"m{n:03}", datetime(2026, 4, 1 + n % 28, tzinfo=UTC), f"note {n}", f"body {n}", n)


def _commit(path: Path, numbers: range) -> None:
    with open_index(path, "whoosh").writer() as writer:
        for n in numbers:
            writer.add(_record(n), replace=False)


def _segment_sizes(path: Path) -> list[int]:
    return sorted(s.doc_count_all() for s in whoosh_index.open_dir(str(path))._segments())


def _ids(path: Path) -> set[str]:
    result = open_index(path, "whoosh").search(SearchRequest(text="note", limit=10_000))
    return {hit.fields["id"] for hit in result.hits}


def test_small_segments_are_merged_when_there_are_enough(tmp_path: Path) -> None:
    """A commit finding MERGE_AT small segments merges them into the one it writes; every
    document is still found once."""
    for start in range(0, 3 * MERGE_AT, 3):
        _commit(tmp_path, range(start, start + 3))
    assert [3] * MERGE_AT == _segment_sizes(tmp_path)
    _commit(tmp_path, range(100, 102))
    assert [3 * MERGE_AT + 2] == _segment_sizes(tmp_path)
    assert {f"m{n:03}" for n in [*range(3 * MERGE_AT), 100, 101]} == _ids(tmp_path)


def test_big_segments_are_never_merged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Segments of SMALL_SEGMENT documents or more stay as they are, however many there are
    (Whoosh's default would rewrite them all once there are about twenty)."""
    monkeypatch.setattr(corrlog.index_whoosh, "SMALL_SEGMENT", 3)
    for start in range(0, 3 * (MERGE_AT + 2), 3):
        _commit(tmp_path, range(start, start + 3))
    assert [3] * (MERGE_AT + 2) == _segment_sizes(tmp_path)
    for extra in range(MERGE_AT):
        _commit(tmp_path, range(200 + extra, 201 + extra))
    assert [*([1] * MERGE_AT), *([3] * (MERGE_AT + 2))] == _segment_sizes(tmp_path)
    _commit(tmp_path, range(300, 301))
    assert [*([3] * (MERGE_AT + 2)), MERGE_AT + 1] == _segment_sizes(tmp_path)
    assert 3 * (MERGE_AT + 2) + MERGE_AT + 1 == len(_ids(tmp_path))


def test_an_emptied_segment_is_dropped_at_the_next_commit(tmp_path: Path) -> None:
    """A segment whose every document was deleted is not kept; the others keep theirs."""
    _commit(tmp_path, range(0, 4))
    _commit(tmp_path, range(4, 6))
    assert [2, 4] == _segment_sizes(tmp_path)
    with open_index(tmp_path, "whoosh").writer() as writer:
        for n in (4, 5, 1):
            writer.delete(f"m{n:03}")
    assert [4] == _segment_sizes(tmp_path)
    assert {"m000", "m002", "m003"} == _ids(tmp_path)
