"""Rebuild the derived state and the index from the ledger and the archive (`corrlog reindex`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from corrlog.datadir import Session
from corrlog.errors import CorrlogError, RecordError
from corrlog.ingest import NoteItem, mtime_datetime, note_contract, note_record, parse_note_item
from corrlog.ingest_mail import MailItem
from corrlog.ledger import Entry, transaction
from corrlog.links import apply_manual_links, replay_manual_links
from corrlog.logging import get_logger
from corrlog.mailsync import resolve_existing
from corrlog.model import Origin
from corrlog.parse.note import Note
from corrlog.pipeline import Pipeline
from corrlog.rules.contracts import merge_contracts
from corrlog.sync import relink_threads

Progress = Callable[[int], None]


@dataclass
class RebuildReport:
    """What a rebuild did."""

    entries: int = 0
    records: int = 0
    contracts: int = 0
    unreadable: int = 0


def current_notes(session: Session) -> dict[str, tuple[dict[str, Any], str]]:
    """Replay the ledger: the latest revision (detail, sha256) of every note not deleted."""
    current: dict[str, tuple[dict[str, Any], str]] = {}
    for entry in session.ledger.entries():
        if not (entry.origin or "").startswith("notes:"):
            continue
        detail = entry.detail_json()
        if entry.event in ("ingest", "seen") and entry.sha256:
            current[detail["path"]] = (detail, entry.sha256)
        elif entry.event == "delete":
            current.pop(detail["path"], None)
    return current


def _load(
    session: Session, detail: dict[str, Any], sha: str, tz: tzinfo
) -> tuple[NoteItem, Note] | None:
    item = NoteItem(
        raw=session.archive.get(sha),
        root=detail["root"],
        path=detail["path"],
        mtime=mtime_datetime(int(detail["mtime_ns"])),
    )
    try:
        return item, parse_note_item(item, tz)
    except RecordError as exc:
        get_logger(source="notes").warning(
            "archived note revision cannot be parsed; not indexed", path=item.path, reason=str(exc)
        )
        return None


def rebuild(pipeline: Pipeline, progress: Progress | None = None) -> RebuildReport:
    """Empty the index and derived tables, then replay every live item from the archive."""
    session, tz = pipeline.session, pipeline.tz
    report = RebuildReport(entries=session.ledger.count())
    notes = current_notes(session)
    loaded: list[tuple[dict[str, Any], str, NoteItem, Note]] = []
    for detail, sha in notes.values():
        try:
            parsed = _load(session, detail, sha, tz)
        except CorrlogError as exc:
            get_logger().error("archived object unreadable; run 'corrlog verify'", reason=str(exc))
            parsed = None
        if parsed is None:
            report.unreadable += 1
            continue
        loaded.append((detail, sha, *parsed))
    declared = [c for _, _, item, note in loaded if (c := note_contract(item, note)) is not None]
    note_contracts, _conflicts = merge_contracts(declared)
    pipeline.set_note_contracts(note_contracts.values())
    with transaction(session.conn):
        session.state.clear_derived()
        for contract in note_contracts.values():
            session.state.put_contract(contract)
        for detail, sha, item, note in loaded:
            session.state.set_note_cursor(
                item.root, item.path, int(detail["mtime_ns"]), int(detail["size"]), sha
            )
            record = note_record(item, note, pipeline.contracts)
            session.state.put_record(record)
        report.records = len(loaded)
        for entry in session.ledger.entries():
            if entry.event in ("ingest", "seen") and not (entry.origin or "").startswith("notes:"):
                report.records += _replay_mail(pipeline, entry, report)
    relink_threads(pipeline)
    replay_manual_links(session)
    apply_manual_links(session, pipeline.contracts)
    session.index.create()
    pipeline.flush({}, progress)
    report.contracts = len(pipeline.contracts)
    return report


def _replay_mail(pipeline: Pipeline, entry: Entry, report: RebuildReport) -> int:
    """Re-create a message's record and origin from its ledger entry; 1 if a record was added."""
    state = pipeline.session.state
    detail = entry.detail_json()
    if not entry.sha256 or "origin" not in detail:
        return 0
    origin = Origin.from_json(detail["origin"])
    received = datetime.fromisoformat(detail["received"]) if detail.get("received") else None
    try:
        raw = pipeline.session.archive.get(entry.sha256)
    except CorrlogError as exc:
        get_logger().error("archived object unreadable; run 'corrlog verify'", reason=str(exc))
        report.unreadable += 1
        return 0
    doc, message_id, refs, quarantine = pipeline.mail_doc(MailItem(raw, origin, received))
    doc, existing = resolve_existing(pipeline, doc, message_id)
    state.add_origin(existing or doc.record.id, origin, entry.sha256)
    if existing is not None:
        return 0
    state.put_record(doc.record, message_id=message_id, thread=refs, quarantine=quarantine)
    return 1
