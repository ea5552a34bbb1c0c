"""Rebuild the derived state and the index from the ledger and the archive (`corrlog reindex`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from corrlog.datadir import Session
from corrlog.errors import CorrlogError, RecordError
from corrlog.ingest import NoteItem, mtime_datetime, note_contract, note_record, parse_note_item
from corrlog.ledger import transaction
from corrlog.logging import get_logger
from corrlog.model import Record
from corrlog.parse.note import Note
from corrlog.rules.contracts import merge_contracts
from corrlog.sync import flush_index

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


def rebuild(session: Session, tz: tzinfo, progress: Progress | None = None) -> RebuildReport:
    """Empty the index and derived tables, then replay every live item from the archive."""
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
    contracts, _conflicts = merge_contracts(declared)
    built: dict[str, Record] = {}
    with transaction(session.conn):
        session.state.clear_derived()
        for contract in contracts.values():
            session.state.put_contract(contract)
        for detail, sha, item, note in loaded:
            session.state.set_note_cursor(
                item.root, item.path, int(detail["mtime_ns"]), int(detail["size"]), sha
            )
            record = note_record(item, note, contracts)
            session.state.put_record(record)
            built[record.id] = record
    session.index.create()
    flush_index(session, built, tz, progress)
    report.records, report.contracts = len(built), len(contracts)
    return report
