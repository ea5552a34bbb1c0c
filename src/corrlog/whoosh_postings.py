"""The postings of a Whoosh commit: pooled by term in memory and written a term at a time.

Whoosh's segment writer takes postings one by one (a method call, type assertions and
statistics per posting) and writes every term's postings as a pickled, compressed block,
however short. On a mailbox most terms occur in a handful of messages, so that was most of
an ingest's commit time. `TermPool` hands the writer whole terms, and `PostingsCodec`
writes a term's postings in one go: inline in the term table when there are few of them,
else in blocks byte for byte as Whoosh's own writer makes them. Readers are Whoosh's own:
the file format (Whoosh 3 codec) is unchanged.
"""

from __future__ import annotations

import struct
import zlib
from array import array
from collections.abc import Iterator
from pickle import dumps
from typing import Any

from whoosh.codec.whoosh3 import (
    LENGTHS_COLUMN,
    WHOOSH3_HEADER_MAGIC,
    W3Codec,
    W3FieldWriter,
    W3PostingsWriter,
    W3Segment,
    W3TermInfo,
    _lenfield,
)
from whoosh.system import pack_ushort
from whoosh.util.numeric import byte_to_length, length_to_byte
from whoosh.util.numlists import delta_encode

_TERM_INFO: struct.Struct = W3TermInfo._struct  # flags, weight, doc count, lengths, max weight, ids
MAX_POSTINGS = 1_500_000  # ~100 MB of postings in a TermPool (Enron: ~215 per message)
INLINE_LIMIT = 16  # a term with fewer postings keeps them in its term-table entry
Posting = tuple[str, bytes, int, float, bytes | str | None]  # field, term, doc, weight, value
TermPostings = tuple[bytes, list[int], list[float], list[bytes | None]]  # term, docs, …


class TermPool:
    """The postings of one Whoosh commit, grouped by term in memory, in place of Whoosh's pool.

    Whoosh's `PostingPool` keeps one tuple per posting (~220 bytes), spills sorted runs to
    disk with pickle past its limit and merges them back at commit: on a large ingest that
    was a fifth of the writer's time. Here each field maps its terms to their postings: a
    term seen once keeps its one posting as a tuple, a term seen again keeps document
    numbers and weights in arrays and encoded positions in a list; the commit sorts the
    distinct terms only (a term's postings arrive in document order; merged segments may
    not, and are sorted). Past MAX_POSTINGS everything moves into Whoosh's own pool
    (`overflow`), which spills to disk: memory stays bounded for a batch of huge messages.
    """

    def __init__(self, overflow: Any) -> None:
        self._fields: dict[str, dict[bytes, Any]] = {}
        self._unordered: set[tuple[str, bytes]] = set()
        self._count = 0
        self._overflow = overflow
        self._overflowed = False

    def add(self, item: Posting) -> None:
        """Add one posting (Whoosh's `add_post`)."""
        if self._overflowed:
            self._overflow.add(item if item[4].__class__ is not str else (*item[:4], None))
            return
        fieldname, term, docnum, weight, value = item
        if value.__class__ is str:  # a merged segment's inlined posting without a value
            value = None  # (Whoosh's ListMatcher says ''; its pool and writer want bytes)
        terms = self._fields.get(fieldname)
        if terms is None:
            terms = self._fields[fieldname] = {}
        found = terms.get(term)
        if found is None:
            terms[term] = (docnum, weight, value)
        else:
            if isinstance(found[0], int):  # a second posting: from tuple to arrays
                found = terms[term] = [array("l", [found[0]]), array("d", [found[1]]), [found[2]]]
            if docnum < found[0][-1]:
                self._unordered.add((fieldname, term))
            found[0].append(docnum)
            found[1].append(weight)
            found[2].append(value)
        self._count += 1
        if self._count > MAX_POSTINGS:
            self._spill()

    def add_field(self, fieldname: str, docnum: int, items: Iterator[Any]) -> int:
        """Add one document's postings of one field, (term, frequency, weight, value) each,
        the weights scaled as Whoosh's `add_document` does; the field length (frequencies)."""
        if self._overflowed:
            length = 0
            for term, frequency, weight, value in items:
                length += frequency
                self._overflow.add((fieldname, term, docnum, weight * 1.0, value))
            return length
        terms = self._fields.get(fieldname)
        if terms is None:
            terms = {}  # kept only if a posting arrives: an empty field has no field id
        get, unordered = terms.get, self._unordered
        length = count = 0
        for term, frequency, weight, value in items:
            length += frequency
            count += 1
            found = get(term)
            if found is None:
                terms[term] = (docnum, weight * 1.0, value)
                continue
            if found[0].__class__ is int:
                found = terms[term] = [array("l", [found[0]]), array("d", [found[1]]), [found[2]]]
            if docnum < found[0][-1]:
                unordered.add((fieldname, term))
            found[0].append(docnum)
            found[1].append(weight)
            found[2].append(value)
        if count:
            self._fields[fieldname] = terms
        self._count += count
        if self._count > MAX_POSTINGS:
            self._spill()
        return length

    def _spill(self) -> None:
        for fieldname, terms in self.by_term():
            for term, docnums, weights, values in terms:
                for row in zip(docnums, weights, values, strict=True):
                    self._overflow.add((fieldname, term, *row))
        self._fields.clear()
        self._overflowed = True

    def by_term(self) -> Iterator[tuple[str, Iterator[TermPostings]]]:
        """Each field in order with its terms in order, each term's postings by document."""
        for fieldname in sorted(self._fields):
            yield fieldname, self._terms(fieldname)

    def _terms(self, fieldname: str) -> Iterator[TermPostings]:
        terms = self._fields[fieldname]
        for term in sorted(terms):
            found = terms[term]
            if isinstance(found[0], int):
                yield term, [found[0]], [found[1]], [found[2]]
            elif (fieldname, term) in self._unordered:
                rows = sorted(zip(*found, strict=True), key=lambda row: row[0])
                yield term, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]
            else:
                yield term, found[0].tolist(), found[1].tolist(), found[2]

    def iter_postings(self) -> Iterator[Posting] | PooledPostings:
        """Every posting, ordered by field, term and document number."""
        if self._overflowed:
            postings: Iterator[Posting] = self._overflow.iter_postings()
            return postings
        return PooledPostings(self)

    def cleanup(self) -> None:
        """Forget everything and remove spilled runs (the writer committed or cancelled)."""
        self._fields.clear()
        self._unordered.clear()
        if self._overflow is not None:
            self._overflow.cleanup()


def add_document(writer: Any, fields: dict[str, Any]) -> None:
    """Whoosh's `SegmentWriter.add_document` for corrlog's documents, each field's postings
    handed to the TermPool at once instead of one call per posting.

    The same per-document bytes and postings (a test compares the segment files). corrlog's
    documents have no boosts; a schema with spelling or vector fields takes Whoosh's path.
    """
    schema, pool = writer.schema, writer.pool
    boosted = any(name.startswith("_") and name.endswith("_boost") for name in fields)
    if not isinstance(pool, TermPool) or boosted:
        writer.add_document(**fields)
        return
    names = sorted(name for name in fields if not name.startswith("_"))
    writer._check_fields(schema, names)
    if any(schema[name].separate_spelling() or schema[name].vector for name in names):
        writer.add_document(**fields)
        return
    writer._check_state()
    perdoc, docnum = writer.perdocwriter, writer.docnum
    perdoc.start_doc(docnum)
    try:
        for name in names:
            _add_field(perdoc, pool, docnum, name, schema[name], fields)
    except Exception:
        perdoc.cancel_doc()
        raise
    perdoc.finish_doc()
    writer._added = True
    writer.docnum += 1


def _add_field(
    perdoc: Any, pool: TermPool, docnum: int, name: str, field: Any, fields: dict[str, Any]
) -> None:
    """One field of `add_document`: postings, stored value and length, column value."""
    value = fields[name]
    if value is None:
        return
    length = pool.add_field(name, docnum, field.index(value)) if field.indexed else 0
    if not field.scorable:
        length = 0
    custom = fields.get(f"_stored_{name}", value)
    perdoc.add_field(name, field, custom if field.stored else None, length)
    if field.column_type and custom is not None:
        perdoc.add_column_value(name, field.column_type, field.to_column_value(custom))


class PooledPostings:
    """A TermPool's postings: one by one for any Whoosh writer, by term for `TermWriter`."""

    def __init__(self, pool: TermPool) -> None:
        self.pool = pool

    def __iter__(self) -> Iterator[Posting]:
        """Every posting, ordered by field, term and document number."""
        for fieldname, terms in self.pool.by_term():
            for term, docnums, weights, values in terms:
                for row in zip(docnums, weights, values, strict=True):
                    yield (fieldname, term, *row)


class PostingsCodec(W3Codec):  # type: ignore[misc]
    """Whoosh's W3 codec, whose field writer takes a term's postings at once."""

    def __init__(self, inline_limit: int = INLINE_LIMIT) -> None:
        super().__init__(inlinelimit=inline_limit)

    def field_writer(self, storage: Any, segment: Any) -> TermWriter:
        """The field writer of a new segment."""
        return TermWriter(self, storage, segment)

    def new_segment(self, storage: Any, indexname: str) -> W3Segment:
        """A new segment that names Whoosh's own W3 codec as the one to read it with.

        Whoosh pickles a segment's codec into the index's table of contents; naming this
        class there would make the index unreadable without corrlog. Reading needs nothing
        of it: the bytes are the W3 codec's.
        """
        reader_codec = W3Codec(
            blocklimit=self._blocklimit,
            compression=self._compression,
            inlinelimit=self._inlinelimit,
        )
        return W3Segment(reader_codec, indexname)

    def postings_writer(self, dbfile: Any, byteids: bool = False) -> W3PostingsWriter:
        """Whoosh's posting writer, with its inlining fixed (the overflow path uses it).

        Term vectors (`byteids`) keep Whoosh's writer without inlining: a vector is found
        by its postings' offset and length, which inlined postings do not have.
        """
        if byteids:
            return W3PostingsWriter(
                dbfile,
                blocklimit=self._blocklimit,
                byteids=True,
                compression=self._compression,
                inlinelimit=1,
            )
        return InliningPostingsWriter(
            dbfile,
            blocklimit=self._blocklimit,
            compression=self._compression,
            inlinelimit=self._inlinelimit,
        )


class InliningPostingsWriter(W3PostingsWriter):  # type: ignore[misc]
    """Whoosh's writer of one term's postings, calling the term info's `set_inlined`."""

    _terminfo: Any

    def finish_postings(self) -> W3TermInfo:
        """The term's info; its postings inlined when few and not yet written in blocks."""
        if self._blockcount or len(self._ids) >= self._inlinelimit:
            return super().finish_postings()
        terminfo = self._terminfo
        terminfo.add_block(self)
        terminfo.set_inlined(self._ids, self._weights, self._values)
        self._terminfo = None
        return terminfo


class TermWriter(W3FieldWriter):  # type: ignore[misc]
    """Writes a segment's terms and postings from a TermPool, a term at a time.

    The bytes are those Whoosh's W3 writer makes from the same postings, except that a term
    with fewer than the codec's inline limit of postings is inlined into its term-table
    entry. (Whoosh's own writer cannot inline: it calls `set_inline`, a method its term
    info does not have, so its limit is 1.) Postings from anything but a TermPool (Whoosh's
    spilling pool past MAX_POSTINGS) take Whoosh's path.
    """

    def add_postings(self, schema: Any, lengths: Any, items: Any) -> None:
        """Write every field's terms (Whoosh's `FieldWriter.add_postings`)."""
        if not isinstance(items, PooledPostings):
            super().add_postings(schema, lengths, items)
            return
        for fieldname, terms in items.pool.by_term():
            self.start_field(fieldname, schema[fieldname])
            self._write_field(_length_bytes(lengths, fieldname), terms)
            self.finish_field()

    def _write_field(self, length_bytes: Any, terms: Iterator[TermPostings]) -> None:
        """Every term of the current field: its postings and its term-table entry."""
        prefix = pack_ushort(self._fieldid)
        add_row = self._tindex.add
        fixed_size = self._format.fixed_value_size()
        inline_limit = self._codec._inlinelimit
        for term, docnums, weights, values in terms:
            if docnums[0] < 0:  # Whoosh's spelling-word marker (document -1): not a posting
                docnums, weights, values = _without_spelling(docnums, weights, values)
                if not docnums:
                    continue
            if len(docnums) < inline_limit:
                row = _inline_row(docnums, weights, values, length_bytes)
            else:
                info = W3TermInfo()
                self._write_blocks(info, docnums, weights, values, length_bytes, fixed_size)
                row = info.to_bytes()
            add_row(prefix + term, row)

    def _write_blocks(
        self,
        info: W3TermInfo,
        docnums: list[int],
        weights: list[float],
        values: list[bytes | None],
        length_bytes: Any,
        fixed_size: int | None,
    ) -> None:
        """The postings in blocks of the codec's block limit, as `W3PostingsWriter` does."""
        postfile, limit = self._postfile, self._codec._blocklimit
        start = postfile.tell()
        postfile.write(WHOOSH3_HEADER_MAGIC)
        for first in range(0, len(docnums), limit):
            last = first + limit >= len(docnums)
            block = _Block(
                docnums[first : first + limit],
                weights[first : first + limit],
                values[first : first + limit],
                length_bytes,
            )
            info.add_block(block)
            infobytes, databytes = block.encode(fixed_size, self._codec._compression)
            size = len(infobytes) + len(databytes)
            postfile.write_int(-size if last else size)
            postfile.write(infobytes)
            postfile.write(databytes)
        info.set_extent(start, postfile.tell() - start)


def _without_spelling(
    docnums: list[int], weights: list[float], values: list[bytes | None]
) -> tuple[list[int], list[float], list[bytes | None]]:
    """The postings without Whoosh's spelling markers (document -1, sorted first)."""
    start = next((i for i, docnum in enumerate(docnums) if docnum >= 0), len(docnums))
    return docnums[start:], weights[start:], values[start:]


def _length_bytes(lengths: Any, fieldname: str) -> Any:
    """The field's length byte of every document of the segment (None: no lengths)."""
    if lengths is None:
        return None
    column = lengths._cached_reader(_lenfield(fieldname), LENGTHS_COLUMN)
    return None if column is None else column.load()


def _inline_row(
    docnums: list[int], weights: list[float], values: list[bytes | None], length_bytes: Any
) -> bytes:
    """The term-table entry of a short posting list, inlined: `W3TermInfo.to_bytes` after
    `add_block` and `set_inlined`, without the objects. (A length byte survives Whoosh's
    byte -> length -> byte round trip unchanged.)"""
    if len(docnums) == 1:  # most terms: one posting
        docnum, weight, value = docnums[0], weights[0], values[0]
        weight_f = array("f", (weight,))[0]  # Whoosh keeps weights as 32-bit floats
        code = 0 if length_bytes is None else length_bytes[docnum]
        head = _TERM_INFO.pack(1, weight_f, 1, code, code, max(0, weight), docnum, docnum)
        return head + dumps(((docnum,), (weight_f,), (value,) if value else ()), 2)
    weights_f = array("f", weights)
    codes = [] if length_bytes is None else [length_bytes[d] for d in docnums]
    codes = [code for code in codes if code]  # a zero length is not counted
    head = _TERM_INFO.pack(
        1,
        sum(weights_f),
        len(docnums),
        min(codes) if codes else 0,
        max(codes) if codes else 0,
        max(0, *weights),
        docnums[0],
        docnums[-1],
    )
    postings = (tuple(docnums), tuple(weights_f), tuple(v for v in values if v))
    return head + dumps(postings, 2)


class _Block:
    """One block of a term's postings with the statistics `W3TermInfo.add_block` reads."""

    def __init__(
        self,
        docnums: list[int],
        weights: list[float],
        values: list[bytes | None],
        length_bytes: Any,
    ) -> None:
        self._ids = array("I", docnums)
        self._weights = array("f", weights)  # Whoosh keeps weights as 32-bit floats
        self._values = [v for v in values if v]  # Whoosh drops empty values
        self._maxweight = max(0, *weights)
        codes = [] if length_bytes is None else [length_bytes[d] for d in docnums]
        codes = [code for code in codes if code]  # a zero length is not counted
        self._minlength = byte_to_length(min(codes)) if codes else None
        self._maxlength = byte_to_length(max(codes)) if codes else 0

    def __len__(self) -> int:
        return len(self._ids)

    def min_id(self) -> int:
        """The first document number."""
        return int(self._ids[0])

    def max_id(self) -> int:
        """The last document number."""
        return int(self._ids[-1])

    def min_length(self) -> int | None:
        """The shortest field length (None: none counted)."""
        return self._minlength

    def max_length(self) -> int:
        """The longest field length."""
        return self._maxlength

    def max_weight(self) -> float:
        """The highest weight."""
        return self._maxweight

    def encode(self, fixed_size: int | None, compression: int) -> tuple[bytes, bytes]:
        """(block info, block data), as `W3PostingsWriter._write_block` makes them."""
        weights = self._weights
        if all(w == 1.0 for w in weights):
            mini_weights: Any = None
        elif all(w == weights[0] for w in weights):
            mini_weights = weights[0]
        else:
            mini_weights = tuple(weights)
        if fixed_size is None or fixed_size < 0:
            mini_values: Any = tuple(self._values)
        elif fixed_size == 0:
            mini_values = None
        else:
            mini_values = b"".join(self._values)
        data = dumps((tuple(delta_encode(self._ids)), mini_weights, mini_values), 2)
        if compression:
            data = zlib.compress(data, compression)
        info = (
            len(self._ids),
            self._ids[-1],
            self._maxweight,
            compression,
            length_to_byte(self._minlength),
            length_to_byte(self._maxlength),
        )
        return dumps(info, 2), data
