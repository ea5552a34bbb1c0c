"""One pass over the mail sources (Maildir, IMAP): filter, archive, ledger + cursor, then index."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from threading import Event
from typing import TYPE_CHECKING

from corrlog.config import ImapAccount, MaildirSource
from corrlog.errors import CorrlogError, RecordError, SourceError
from corrlog.ingest_mail import MailItem, Prepared, mail_record_id
from corrlog.ledger import transaction
from corrlog.logging import get_logger
from corrlog.model import Origin, Record, SourceKind
from corrlog.parse.mail import parse_headers
from corrlog.pipeline import IndexDoc, Pipeline
from corrlog.rules.capture import CapturePolicy
from corrlog.sources import maildir
from corrlog.state import State, row_origin

if TYPE_CHECKING:
    from corrlog.sources.imap import ImapConnection

MAILDIR_BATCH = 500  # messages per SQLite transaction (and per archive fsync round)


@dataclass
class MailReport:
    """What one mail source's pass did."""

    source: str
    examined: int = 0
    archived: int = 0
    duplicates: int = 0
    private: int = 0
    quarantined: int = 0
    unreadable: int = 0

    def summary(self) -> str:
        """One line for people."""
        parts = [f"{self.archived} archived", f"{self.duplicates} already known"]
        parts.append(f"{self.private} personal skipped")
        if self.quarantined:
            parts.append(f"{self.quarantined} quarantined")
        if self.unreadable:
            parts.append(f"{self.unreadable} unreadable")
        return f"{self.source}: " + ", ".join(parts)


def captured(policy: CapturePolicy, header_bytes: bytes) -> bool:
    """Whether a message (judged by its headers alone) is client correspondence."""
    if policy.capture_all:
        return True
    try:
        headers = parse_headers(header_bytes)
    except RecordError:
        return False
    return policy.captures((a.addr for a in headers.participants()), headers.subject)


def _fingerprint(record: Record) -> tuple[object, ...]:
    return (record.subject, " ".join(record.text.split()), record.attachments)


def _same_message(pipeline: Pipeline, row: sqlite3.Row, doc: IndexDoc) -> bool:
    """Another copy of the same message (not a different one reusing its Message-ID)?"""
    if row["sha256"] == doc.record.sha256:
        return True
    try:
        raw = pipeline.session.archive.get(row["sha256"])
    except CorrlogError:
        return False
    other, *_ = pipeline.mail_doc(MailItem(raw, row_origin(row), None))
    return _fingerprint(other.record) == _fingerprint(doc.record)


def resolve_existing(
    pipeline: Pipeline, doc: IndexDoc, message_id: str | None
) -> tuple[IndexDoc, str | None]:
    """(doc, id of the record this item is a copy of, or None for a new record).

    Copies share a Message-ID and their content; a message that reuses another's
    Message-ID with different content is a record of its own (keyed by its bytes), so a
    forged or broken Message-ID can never hide a later message.
    """
    state = pipeline.session.state
    row = state.record_by_message_id(message_id) if message_id else None
    if row is not None and not _same_message(pipeline, row, doc):
        own_id = mail_record_id(None, doc.record.sha256)
        doc = replace(doc, record=replace(doc.record, id=own_id))
        row = None
    if row is None:
        row = pipeline.session.conn.execute(
            "SELECT id FROM records WHERE id = ?", (doc.record.id,)
        ).fetchone()
    return doc, (str(row["id"]) if row else None)


def commit_items(
    pipeline: Pipeline,
    items: list[MailItem],
    report: MailReport,
    advance: Callable[[], None],
    prepared: list[Prepared | None] | None = None,
) -> dict[str, IndexDoc]:
    """Archive a batch, then ledger + origins + records + the cursor in one transaction.

    `prepared` (aligned with `items`) holds what workers parsed; None entries are parsed here.
    """
    session = pipeline.session
    if prepared is None:
        prepared = [None] * len(items)
    session.archive.put_many([item.raw for item in items])
    built: dict[str, IndexDoc] = {}
    with transaction(session.conn):
        for item, ready_item in zip(items, prepared, strict=True):
            doc = _commit_one(pipeline, item, report, ready_item)
            if doc is not None:
                built[doc.record.id] = doc
        advance()
    return built


def _commit_one(
    pipeline: Pipeline, item: MailItem, report: MailReport, prepared: Prepared | None
) -> IndexDoc | None:
    session = pipeline.session
    key = item.origin.key()
    if session.state.has_origin(key):
        report.duplicates += 1
        return None
    doc, message_id, refs, quarantine = pipeline.mail_doc(item, prepared)
    doc, existing = resolve_existing(pipeline, doc, message_id)
    record = doc.record
    detail: dict[str, object] = {"origin": item.origin.to_json()}
    if item.received:
        detail["received"] = item.received.isoformat()
    if quarantine:
        detail["quarantine"] = quarantine
    event = "seen" if session.ledger.has_item(record.sha256) else "ingest"
    session.ledger.append(event, sha256=record.sha256, origin=key, detail=detail)
    session.state.add_origin(existing or record.id, item.origin, record.sha256)
    if existing is not None:
        report.duplicates += 1
        return None
    session.state.put_record(record, message_id=message_id, thread=refs, quarantine=quarantine)
    report.archived += 1
    if quarantine:
        report.quarantined += 1
        get_logger(source=item.origin.source.value).warning(
            "message cannot be parsed; archived raw and quarantined", origin=key, reason=quarantine
        )
    return IndexDoc(doc.record, doc.attachment_text, doc.fulltext, new=True, words=doc.words)


# Maildir ---------------------------------------------------------------------------------


def _stopping(stop: Event | None) -> bool:
    return stop is not None and stop.is_set()


def sync_maildir(
    pipeline: Pipeline, source: MaildirSource, stop: Event | None = None
) -> MailReport:
    """Read every not-yet-examined message file of a Maildir (tree); files are never changed."""
    state = pipeline.session.state
    report = MailReport(source=f"maildir {source.name}")
    policy = pipeline.policy()
    patterns = sorted(policy.patterns())
    rescan = bool(set(patterns) - set(state.source_patterns(source.name)))
    # Unchanged directories are skipped, except when new client addresses call for a rescan.
    listing = maildir.Listing({} if rescan else state.maildir_dirs(source.name), time.time_ns())
    todo = _unexamined(state, source.name, list(maildir.listed(source.path, listing)), rescan)
    with pipeline.parallel(len(todo)):
        _read_and_commit(pipeline, source, todo, policy, report, stop, listing)
    pipeline.flush({})  # what this pass archived becomes searchable now
    if _stopping(stop):
        return report
    with transaction(pipeline.session.conn):  # every listed file is committed: trust the mtimes
        state.set_source_patterns(source.name, patterns)
        state.set_maildir_dirs(source.name, listing.seen)
    return report


def _unexamined(
    state: State, source: str, directories: list[maildir.Listed], rescan: bool
) -> list[maildir.MaildirFile]:
    """The files of the listed directories not examined yet (or, on a rescan, not captured).

    A file object is made only for those: a changed directory lists every file it holds.
    """
    keyed = [(d, d.keys()) for d in directories]
    every = [key for _, keys in keyed for key in keys]
    fresh = state.maildir_unexamined(source, every, recheck_skipped=rescan)
    return [
        directory.file(name, key)
        for directory, keys in keyed
        for name, key in zip(directory.names, keys, strict=True)
        if key in fresh
    ]


def _read_and_commit(
    pipeline: Pipeline,
    source: MaildirSource,
    todo: list[maildir.MaildirFile],
    policy: CapturePolicy,
    report: MailReport,
    stop: Event | None,
    listing: maildir.Listing | None = None,
) -> None:
    """Batch by batch; the next batch is read and handed to the parse workers before this one
    is committed, so parsing and committing overlap."""
    waiting: _Batch | None = None
    for start in range(0, len(todo), MAILDIR_BATCH):
        if _stopping(stop):
            break
        files = todo[start : start + MAILDIR_BATCH]
        batch = _read_batch(pipeline, source, files, policy, report, listing)
        if waiting is not None:
            waiting.commit(pipeline, report)
        waiting = batch
    if waiting is not None and not _stopping(stop):
        waiting.commit(pipeline, report)


@dataclass
class _Batch:
    """Message files read and captured, their parsing under way."""

    source: str
    items: list[MailItem]
    examined: list[tuple[maildir.MaildirFile, bool]]
    prepared: Callable[[], list[Prepared | None]]

    def commit(self, pipeline: Pipeline, report: MailReport) -> None:
        """Archive, ledger and cursor in one transaction; the documents staged for the index."""

        def advance() -> None:
            for file, keep in self.examined:
                pipeline.session.state.set_maildir_file(self.source, file.key, file.folder, keep)

        built = commit_items(pipeline, self.items, report, advance, self.prepared())
        pipeline.stage(built)


def _read_batch(
    pipeline: Pipeline,
    source: MaildirSource,
    files: list[maildir.MaildirFile],
    policy: CapturePolicy,
    report: MailReport,
    listing: maildir.Listing | None = None,
) -> _Batch:
    """Read and filter message files, and start parsing the captured ones.

    A file that cannot be read is skipped with a warning, and its directory is listed
    again on the next pass (so fixing its permissions is enough to archive it).
    """
    items, examined = [], []
    for file in files:
        try:
            raw = file.path.read_bytes()
            received = datetime.fromtimestamp(file.path.stat().st_mtime).astimezone()
        except OSError as exc:
            get_logger(source="maildir").warning(
                "cannot read message file; skipped", path=str(file.path), reason=exc.strerror
            )
            report.unreadable += 1
            if listing is not None:
                listing.forget(file)
            continue
        report.examined += 1
        keep = captured(policy, raw)
        examined.append((file, keep))
        if not keep:
            report.private += 1
            continue
        origin = Origin(SourceKind.MAILDIR, source.name, path=file.key, folder=file.folder)
        items.append(MailItem(raw, origin, received))
    return _Batch(source.name, items, examined, _prepare_new(pipeline, items))


def _prepare_new(pipeline: Pipeline, items: list[MailItem]) -> Callable[[], list[Prepared | None]]:
    """Start parsing the items not archived yet; the result, aligned with `items`, on call.

    Items whose origin is already recorded get None (they are counted as duplicates).
    """
    state = pipeline.session.state
    known = [state.has_origin(item.origin.key()) for item in items]
    result = pipeline.prepare_later([i.raw for i, k in zip(items, known, strict=True) if not k])

    def collect() -> list[Prepared | None]:
        ready = iter(result())
        return [None if k else next(ready) for k in known]

    return collect


# IMAP ------------------------------------------------------------------------------------


def sync_imap(
    pipeline: Pipeline,
    account: ImapAccount,
    *,
    folders: list[str] | None = None,
    stop: Event | None = None,
) -> MailReport:
    """Fetch every new message of an account's folders (all, or `folders`); SourceError on failure."""
    from corrlog.sources.imap import ImapConnection  # imapclient: only when IMAP is synced

    report = MailReport(source=f"imap {account.name}")
    policy = pipeline.policy()
    with ImapConnection(account) as conn:
        for folder in folders or conn.folders():
            if _stopping(stop):
                break
            _sync_folder(pipeline, conn, folder, policy, report, stop)
    pipeline.flush({})  # what this pass archived becomes searchable now
    return report


def _sync_folder(
    pipeline: Pipeline,
    conn: ImapConnection,
    folder: str,
    policy: CapturePolicy,
    report: MailReport,
    stop: Event | None = None,
) -> None:
    account = conn.account
    log = get_logger(source="imap", account=account.name, folder=folder)
    try:
        selected = conn.select(folder)
    except SourceError as exc:
        log.warning("cannot select folder; skipped", reason=str(exc))
        return
    state = pipeline.session.state
    patterns = sorted(policy.patterns())
    cursor = state.imap_cursor(account.name, folder, selected.uidvalidity)
    last_uid, old_patterns = cursor or (0, [])
    if cursor is None and state_has_other_uidvalidity(
        pipeline, account.name, folder, selected.uidvalidity
    ):
        log.info("UIDVALIDITY changed; rescanning folder", uidvalidity=selected.uidvalidity)
    if cursor is not None and set(patterns) - set(old_patterns):
        log.info("new client addresses; rescanning headers of synced mail", upto_uid=last_uid)
        old_uids = conn.uids_upto(last_uid)
        _fetch(pipeline, conn, selected.uidvalidity, old_uids, policy, report, last_uid, stop)
    new_uids = conn.uids_after(last_uid)
    with pipeline.parallel(len(new_uids)):
        _fetch(pipeline, conn, selected.uidvalidity, new_uids, policy, report, None, stop)
    if _stopping(stop):
        return
    if cursor is None or set(patterns) != set(old_patterns):
        final = state.imap_cursor(account.name, folder, selected.uidvalidity)
        with transaction(pipeline.session.conn):
            state.set_imap_cursor(
                account.name, folder, selected.uidvalidity, final[0] if final else 0, patterns
            )


def state_has_other_uidvalidity(
    pipeline: Pipeline, account: str, folder: str, uidvalidity: int
) -> bool:
    """Whether a cursor exists for this folder under a different UIDVALIDITY."""
    row = pipeline.session.conn.execute(
        "SELECT 1 FROM imap_cursors WHERE account = ? AND folder = ? AND uidvalidity != ?",
        (account, folder, uidvalidity),
    ).fetchone()
    return row is not None


def _fetch(
    pipeline: Pipeline,
    conn: ImapConnection,
    uidvalidity: int,
    uids: Iterable[int],
    policy: CapturePolicy,
    report: MailReport,
    keep_cursor: int | None,
    stop: Event | None = None,
) -> None:
    """Headers first, whole messages only for captured ones; cursor advanced per batch."""
    from corrlog.sources.imap import iter_batches  # see sync_imap

    account, folder = conn.account, conn.select_name
    patterns = sorted(policy.patterns()) if keep_cursor is None else None
    state = pipeline.session.state
    for batch in iter_batches(list(uids), account.batch_size):
        if _stopping(stop):
            return
        headers = conn.headers(batch)
        report.examined += len(batch)
        wanted = [uid for uid in batch if captured(policy, headers.get(uid, b""))]
        report.private += len(batch) - len(wanted)
        wanted = [
            uid
            for uid in wanted
            if not state.has_origin(_origin(account, folder, uidvalidity, uid).key())
        ]
        items = [
            MailItem(raw, _origin(account, folder, uidvalidity, uid), received)
            for uid, raw, received in conn.messages(wanted)
        ]
        top = max(batch)
        missing = sorted(set(wanted) - {item.origin.uid for item in items})
        if missing:  # a hiccup, or expunged meanwhile: ask once more, then say so
            items += [
                MailItem(raw, _origin(account, folder, uidvalidity, uid), received)
                for uid, raw, received in conn.messages(missing)
            ]
            missing = sorted(set(wanted) - {item.origin.uid for item in items})
        for uid in missing:
            get_logger(source="imap", account=account.name, folder=folder).error(
                "server returned no body for a captured message (expunged?); skipped", uid=uid
            )

        def advance(top: int = top) -> None:
            if patterns is not None:
                old = state.imap_cursor(account.name, folder, uidvalidity)
                state.set_imap_cursor(account.name, folder, uidvalidity, top, old[1] if old else [])

        prepared = _prepare_new(pipeline, items)()
        pipeline.stage(commit_items(pipeline, items, report, advance, prepared))
        get_logger(source="imap", account=account.name, folder=folder).info(
            "batch synced", upto_uid=top, fetched=len(items)
        )


def _origin(account: ImapAccount, folder: str, uidvalidity: int, uid: int) -> Origin:
    return Origin(SourceKind.IMAP, account.name, folder=folder, uidvalidity=uidvalidity, uid=uid)
