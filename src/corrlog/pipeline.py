"""What every source shares after archiving: contracts in force, and writing pending records to the index."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, tzinfo

from corrlog.analysis import Words
from corrlog.config import ContractConfig
from corrlog.datadir import Session
from corrlog.ingest import NoteItem, mtime_datetime, note_record, parse_note_item
from corrlog.ingest_mail import MailItem, Prepared, mail_record, prepare_mail
from corrlog.ledger import transaction
from corrlog.logging import get_logger
from corrlog.model import (
    Contract,
    ContractStatus,
    Escrow,
    Milestone,
    MilestoneStatus,
    Record,
    SourceKind,
)
from corrlog.prepare import Preparer, preparer
from corrlog.rules.capture import CapturePolicy
from corrlog.rules.classify import DEFAULT_RULES, ClassifyRules
from corrlog.rules.contracts import Conflict, merge_contracts
from corrlog.rules.link import Link
from corrlog.state import row_origin

Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class CommitCadence:
    """When staged documents are committed to the index: whichever limit is reached first."""

    documents: int = 2_500
    characters: int = 50_000_000  # text held in memory until the commit
    seconds: float = 30.0  # how long a new record may wait to become searchable

    def due(self, documents: int, characters: int, since: float, now: float) -> bool:
        """Whether a commit is due for this much staged work, staged since `since` (monotonic)."""
        return (
            documents >= self.documents
            or characters >= self.characters
            or now - since >= self.seconds
        )


def _with_link(doc: IndexDoc, row: sqlite3.Row) -> IndexDoc:
    """The document with the link (client, contract, milestone, rule) the state holds."""
    record = replace(
        doc.record,
        client=row["client"],
        contract=row["contract"],
        milestone=row["milestone"],
        link_rule=row["link_rule"],
    )
    return replace(doc, record=record)


def _doc_chars(doc: IndexDoc) -> int:
    return len(doc.record.text) + len(doc.attachment_text) + len(doc.fulltext)


@dataclass(frozen=True, slots=True)
class IndexDoc:
    """A record plus the text the index needs beyond it."""

    record: Record
    attachment_text: str = ""
    fulltext: str = ""
    new: bool = False
    words: Words | None = None  # the texts already analysed (`analysis.analyse`), if known


def config_contract(spec: ContractConfig) -> Contract:
    """A `[[contracts]]` table as a Contract."""
    return Contract(
        id=spec.id,
        client=spec.client,
        title=spec.title,
        emails=tuple(e.lower() for e in spec.emails),
        interval=spec.interval,
        start=spec.start,
        status=ContractStatus(spec.status),
        milestones=tuple(
            Milestone(
                id=m.id,
                name=m.name or m.id,
                amount=m.amount,
                currency=m.currency,
                due=m.due,
                escrow=Escrow(m.escrow),
                status=MilestoneStatus(m.status),
                status_since=m.since,
            )
            for m in spec.milestones
        ),
        defined_by="config",
    )


class ThreadLinks(Mapping[str, Link]):
    """Message-ID -> link of the record already stored with that id (read from the database)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __getitem__(self, message_id: str) -> Link:
        row = self._conn.execute(
            "SELECT client, contract, milestone, link_rule FROM records WHERE message_id = ?"
            " AND contract IS NOT NULL LIMIT 1",
            (message_id,),
        ).fetchone()
        if row is None:
            raise KeyError(message_id)
        return Link(row["client"], row["contract"], row["milestone"], row["link_rule"])

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


@dataclass
class Pipeline:
    """The context records are built in: contracts, my addresses, rules, time zone."""

    session: Session
    contracts: dict[str, Contract]
    me: frozenset[str]
    tz: tzinfo
    capture_all: bool = False
    rules: ClassifyRules = DEFAULT_RULES
    configured: tuple[Contract, ...] = ()
    heartbeat: Callable[[], None] | None = None
    cadence: CommitCadence = field(default_factory=lambda: CommitCadence())
    _staged: dict[str, IndexDoc] = field(default_factory=dict, repr=False)
    _staged_chars: int = 0
    _staged_since: float | None = None
    _preparer: Preparer | None = field(default=None, repr=False)

    @classmethod
    def load(
        cls,
        session: Session,
        config_contracts: list[ContractConfig],
        me: frozenset[str],
        tz: tzinfo,
        *,
        capture_all: bool = False,
        rules: ClassifyRules = DEFAULT_RULES,
    ) -> Pipeline:
        """Contracts from notes (state) and the config, merged."""
        configured = tuple(map(config_contract, config_contracts))
        pipeline = cls(session, {}, me, tz, capture_all, rules, configured)
        pipeline.set_note_contracts(session.state.contracts().values())
        return pipeline

    def set_note_contracts(self, from_notes: Iterable[Contract]) -> list[Conflict]:
        """Contracts in force: those declared by notes plus those in the config."""
        self.contracts, conflicts = merge_contracts([*self.configured, *from_notes])
        return conflicts

    def policy(self) -> CapturePolicy:
        """The capture filter for the contracts in force."""
        return CapturePolicy.from_contracts(self.contracts.values(), capture_all=self.capture_all)

    @contextmanager
    def parallel(self, expected: int) -> Iterator[None]:
        """Parse and classify in worker processes while a pass of `expected` messages runs."""
        with preparer(self.me, self.rules, expected) as prep:
            self._preparer = prep
            try:
                yield
            finally:
                self._preparer = None

    def prepare_later(self, raws: list[bytes]) -> Callable[[], list[Prepared]]:
        """Start parsing and classifying messages (in workers inside `parallel()`); the
        returned callable gives the results in order, parsing in-process without workers."""
        if self._preparer is not None:
            return self._preparer.submit(raws)
        return lambda: [prepare_mail(raw, me=self.me, rules=self.rules) for raw in raws]

    def mail_doc(
        self, item: MailItem, prepared: Prepared | None = None
    ) -> tuple[IndexDoc, str | None, tuple[str, ...], str | None]:
        """(doc, message_id, thread refs, quarantine reason) for a message."""
        doc = mail_record(
            item,
            contracts=self.contracts,
            me=self.me,
            thread_links=ThreadLinks(self.session.conn),
            rules=self.rules,
            prepared=prepared,
        )
        index_doc = IndexDoc(doc.record, doc.attachment_text, doc.fulltext, words=doc.words)
        return index_doc, doc.message_id, doc.thread_refs, doc.quarantine

    def rebuild_doc(self, row: sqlite3.Row) -> IndexDoc:
        """Rebuild a record's document from the archive, keeping the link the state holds."""
        return _with_link(self._rebuild(row), row)

    def _rebuild(self, row: sqlite3.Row) -> IndexDoc:
        origin = row_origin(row)
        raw = self.session.archive.get(row["sha256"])
        if origin.source is SourceKind.NOTES:
            cursor = self.session.state.note_cursor(origin.path or "")
            mtime = mtime_datetime(cursor[0] if cursor else 0)
            item = NoteItem(raw=raw, root=origin.name, path=origin.path or "", mtime=mtime)
            record = note_record(item, parse_note_item(item, self.tz), self.contracts)
            return IndexDoc(record, fulltext=record.text)
        doc, *_ = self.mail_doc(MailItem(raw, origin, datetime.fromisoformat(row["date"])))
        return doc

    def stage(self, built: Mapping[str, IndexDoc]) -> int:
        """Keep a batch's documents for the next index commit; commit when one is due.

        Records are already archived and in the ledger (indexed = 0), so a crash before the
        commit loses nothing: the next pass rebuilds their documents from the archive. Few,
        big commits are what make a large import fast (each Whoosh commit writes a segment
        and merges the small ones).
        """
        if self._staged_since is None:
            self._staged_since = time.monotonic()
        self._staged.update(built)
        self._staged_chars += sum(_doc_chars(doc) for doc in built.values())
        now = time.monotonic()
        if self.cadence.due(len(self._staged), self._staged_chars, self._staged_since, now):
            return self.flush({})
        return 0

    def flush(self, built: Mapping[str, IndexDoc], progress: Progress | None = None) -> int:
        """Write every pending record to the index in one commit, then mark them indexed."""
        built = {**self._staged, **built}
        self._staged.clear()
        self._staged_chars, self._staged_since = 0, None
        pending = self.session.state.pending()
        if not pending:
            return 0
        added, removed, failed = [], [], []
        with self.session.index.writer() as writer:
            for row in pending:
                if row["indexed"] == -1:
                    writer.delete(row["id"])
                    removed.append(row["id"])
                else:
                    try:
                        staged = built.get(row["id"])
                        # The state's link wins: it may have changed since staging (threads).
                        doc = _with_link(staged, row) if staged else self.rebuild_doc(row)
                        writer.add(
                            doc.record,
                            replace=not doc.new,
                            attachment_text=doc.attachment_text,
                            fulltext=doc.fulltext,
                            words=doc.words,
                        )
                    except Exception as exc:  # one bad record must never block the index
                        failed.append(
                            (row["id"], f"cannot be indexed: {exc.__class__.__name__}: {exc}")
                        )
                    else:
                        added.append(row["id"])
                if progress:
                    progress(1)
                if self.heartbeat:
                    self.heartbeat()
        with transaction(self.session.conn):
            self.session.state.mark_indexed(added)
            self.session.state.forget(removed)
            for record_id, reason in failed:
                self.session.state.mark_unindexable(record_id, reason)
        for record_id, reason in failed:
            get_logger(record=record_id).error(
                "record kept in the archive but not indexed", reason=reason
            )
        return len(added) + len(removed)
