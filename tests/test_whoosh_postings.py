"""The Whoosh engine's own postings writer: Whoosh's bytes, Whoosh's answers, faster."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from whoosh import fields, query
from whoosh import index as whoosh_index
from whoosh.codec.whoosh3 import W3Codec

import corrlog.index_whoosh
import corrlog.whoosh_postings
from corrlog.index import open_index
from corrlog.index_whoosh import MERGE_AT
from corrlog.model import Record
from corrlog.whoosh_postings import PostingsCodec
from test_index import mail


def _records() -> list[Record]:
    """Bodies from empty to 600 words: terms with 1 to 400 postings (several 128-blocks)."""
    return [
        mail(
            f"r{n:03}",
            datetime(2026, 3, 1 + n % 27, tzinfo=UTC),
            f"Day {n} invoice {n % 7}",
            " ".join(f"word{(n * k) % 97} text{k % 5}" for k in range(n % 300)),
            n,
        )
        for n in range(400)
    ]


def _build(
    path: Path, codec: Callable[[], Any], monkeypatch: pytest.MonkeyPatch
) -> dict[str, bytes]:
    """Index the records in one commit with `codec`; the segment's term and posting files."""
    monkeypatch.setattr(corrlog.index_whoosh, "PostingsCodec", codec)
    index = open_index(path, "whoosh")
    with index.writer() as writer:
        for record in _records():
            writer.add(record, replace=False)
    raw = whoosh_index.open_dir(str(path))
    files = {}
    for segment in raw._segments():
        storage = segment.open_compound_file(raw.storage)
        for name in storage.list():
            files[name.replace(segment.segment_id(), "")] = storage.open_file(name).read()
    assert {".trm", ".pst"} <= set(files)
    return files


def test_without_inlining_the_bytes_are_whooshs_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With inlining off, the term table and postings are byte for byte Whoosh's writer's."""
    whoosh = _build(tmp_path / "whoosh", W3Codec, monkeypatch)
    ours = _build(tmp_path / "ours", lambda: PostingsCodec(inline_limit=1), monkeypatch)
    assert whoosh == ours


def test_documents_added_term_by_term_are_whooshs_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """corrlog's `add_document` writes the same segment files as Whoosh's, every one."""
    ours = _build(tmp_path / "ours", PostingsCodec, monkeypatch)
    monkeypatch.setattr(corrlog.index_whoosh, "add_document", lambda w, f: w.add_document(**f))
    whoosh = _build(tmp_path / "whoosh", PostingsCodec, monkeypatch)
    assert {".trm", ".pst", "._stored.col", "._body_len.col"} <= set(whoosh)
    assert whoosh == ours


def test_the_overflow_path_inlines_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past MAX_POSTINGS Whoosh's pool and writer take over: the same bytes, inlining too."""
    pooled = _build(tmp_path / "pooled", PostingsCodec, monkeypatch)
    monkeypatch.setattr(corrlog.whoosh_postings, "MAX_POSTINGS", 50)
    overflowed = _build(tmp_path / "overflowed", PostingsCodec, monkeypatch)
    assert pooled == overflowed
    whoosh = _build(tmp_path / "whoosh", W3Codec, monkeypatch)
    assert len(pooled[".pst"]) < len(whoosh[".pst"])  # short posting lists went inline


QUERIES = [
    query.Term("body", "word3"),  # many postings: blocks
    query.Term("body", "word96"),
    query.Term("subject", "invoic"),
    query.Term("subject", "399"),  # one posting: inline
    query.And([query.Term("body", "word5"), query.Term("body", "text2")]),
    query.Or([query.Term("subject", "6"), query.Term("body", "word11")]),
    query.Phrase("body", ["word0", "text0"]),
    query.Phrase("subject", ["dai", "17"]),
    query.Prefix("body", "word1"),
]


@pytest.mark.parametrize("q", QUERIES, ids=str)
def test_inlined_postings_answer_as_whooshs_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, q: query.Query
) -> None:
    """Every query finds the same documents with the same scores and frequencies."""
    answers = []
    for name, codec in (("whoosh", W3Codec), ("ours", PostingsCodec)):
        _build(tmp_path / name, codec, monkeypatch)
        with whoosh_index.open_dir(str(tmp_path / name)).searcher() as searcher:
            hits = searcher.search(q, limit=None)
            frequencies = [
                (
                    searcher.doc_frequency(t.fieldname, t.text),
                    searcher.frequency(t.fieldname, t.text),
                )
                for t in q.leaves()
                if isinstance(t, query.Term)
            ]
            answers.append(([(hit["id"], round(hit.score, 9)) for hit in hits], frequencies))
    assert answers[0] == answers[1]
    assert answers[0][0], "the query should find something"


@pytest.mark.parametrize("max_postings", [corrlog.whoosh_postings.MAX_POSTINGS, 25])
def test_merging_segments_with_inlined_postings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, max_postings: int
) -> None:
    """Small segments are merged at a later commit, through the pool: inlined postings of
    fields without values (read back as '') go through it, past MAX_POSTINGS too."""
    monkeypatch.setattr(corrlog.whoosh_postings, "MAX_POSTINGS", max_postings)
    index = open_index(tmp_path / "ix", "whoosh")
    records = _records()[:20]
    for start in range(0, 20, 2):  # commits of two documents: Whoosh merges small segments
        with index.writer() as writer:
            for record in records[start : start + 2]:
                writer.add(record, replace=False)
    raw = whoosh_index.open_dir(str(tmp_path / "ix"))
    assert len(raw._segments()) < 10
    with raw.searcher() as searcher:
        assert searcher.doc_count() == 20
        found = searcher.search(query.Term("id", "r007"), limit=None)
        assert [hit["id"] for hit in found] == ["r007"]
        assert len(searcher.search(query.Term("subject", "invoic"), limit=None)) == 20


def test_segments_name_whooshs_own_codec(tmp_path: Path) -> None:
    """The table of contents pickles each segment's codec: Whoosh's W3, never corrlog's
    writer, after new segments and after a merge alike."""
    index = open_index(tmp_path / "ix", "whoosh")
    commits = MERGE_AT + 2
    records = _records()[: 2 * commits]
    for start in range(0, 2 * commits, 2):
        with index.writer() as writer:
            for record in records[start : start + 2]:
                writer.add(record, replace=False)
    segments = whoosh_index.open_dir(str(tmp_path / "ix"))._segments()
    assert 0 < len(segments) < commits  # small segments merged
    assert {W3Codec} == {type(segment.codec()) for segment in segments}


def test_term_vectors_are_written_as_whoosh_writes_them(tmp_path: Path) -> None:
    """A field with term vectors: the codec's vector postings stay in blocks, and read back."""
    schema = fields.Schema(id=fields.ID(stored=True), body=fields.TEXT(vector=True))
    raw = whoosh_index.create_in(str(tmp_path), schema)
    writer = raw.writer(codec=PostingsCodec())
    writer.add_document(id="a", body="alpha beta beta")
    writer.add_document(id="b", body="gamma")
    writer.commit()
    with raw.searcher() as searcher:
        docnum = searcher.document_number(id="a")
        assert {"alpha": 1, "beta": 2} == dict(searcher.vector_as("frequency", docnum, "body"))
