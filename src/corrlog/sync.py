"""One sync pass over the notes folders: archive, ledger, state, then the index."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path

from corrlog.archive import sha256_hex
from corrlog.datadir import Session
from corrlog.errors import RecordError
from corrlog.ingest import (
    NoteItem,
    mtime_datetime,
    note_contract,
    note_record,
    note_record_id,
    parse_note_item,
)
from corrlog.ledger import transaction
from corrlog.logging import first_time, get_logger
from corrlog.model import Contract, Record, SourceKind
from corrlog.parse.note import Note
from corrlog.pipeline import IndexDoc, Pipeline
from corrlog.sources.notes import NoteFile, scan
from corrlog.state import row_origin

BATCH = 200
Progress = Callable[[int], None]


@dataclass
class NotesReport:
    """What a notes pass did."""

    seen: int = 0
    archived: int = 0
    unchanged: int = 0
    skipped: int = 0
    deleted: int = 0
    relinked: int = 0
    skipped_paths: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for people (what `corrlog sync` prints)."""
        return (
            f"notes: {self.archived} archived, {self.unchanged} unchanged, "
            f"{self.skipped} skipped, {self.deleted} deleted"
        )


@dataclass(frozen=True, slots=True)
class _Revision:
    file: NoteFile
    item: NoteItem
    note: Note
    sha256: str


def _read(file: NoteFile) -> bytes | None:
    try:
        return file.path.read_bytes()
    except OSError as exc:
        if first_time("read", str(file.path), str(exc.strerror)):
            get_logger(source="notes").warning(
                "cannot read note; skipped", path=str(file.path), reason=exc.strerror
            )
        return None


def _changed_revision(
    session: Session, file: NoteFile, tz: tzinfo, report: NotesReport
) -> _Revision | None:
    """The new revision of a note, or None when it is unchanged or unreadable."""
    path = str(file.path)
    cursor = session.state.note_cursor(path)
    if cursor and cursor[0] == file.mtime_ns and cursor[1] == file.size:
        report.unchanged += 1
        return None
    raw = _read(file)
    if raw is None:
        _skip(report, path)
        return None
    sha = sha256_hex(raw)
    if cursor and cursor[2] == sha:
        with transaction(session.conn):
            session.state.set_note_cursor(str(file.root), path, file.mtime_ns, file.size, sha)
        report.unchanged += 1
        return None
    item = NoteItem(raw=raw, root=str(file.root), path=path, mtime=mtime_datetime(file.mtime_ns))
    try:
        note = parse_note_item(item, tz)
    except RecordError as exc:
        if first_time("parse", path, sha):
            get_logger(source="notes").warning(
                "note skipped; fix it and it is picked up on the next sync",
                path=path,
                reason=str(exc),
            )
        _skip(report, path)
        return None
    return _Revision(file, item, note, sha)


def _skip(report: NotesReport, path: str) -> None:
    report.skipped += 1
    report.skipped_paths.append(path)


def _gone(path: str) -> bool:
    """Only a file that is really absent counts as deleted (not one we merely cannot read)."""
    try:
        Path(path).stat()
    except (FileNotFoundError, NotADirectoryError):  # gone, or its folder replaced by a file
        return True
    except OSError:
        return False
    return False


def _contracts_after(
    pipeline: Pipeline, revisions: list[_Revision], deleted: list[str]
) -> dict[str, Contract]:
    session = pipeline.session
    replaced = {r.item.path for r in revisions} | set(deleted)
    kept = [c for c in session.state.contracts().values() if c.defined_by not in replaced]
    declared = [c for r in revisions if (c := note_contract(r.item, r.note)) is not None]
    conflicts = pipeline.set_note_contracts([*kept, *declared])
    for conflict in conflicts:
        get_logger(source="notes").warning(
            "contract defined twice with different terms; using the first",
            contract=conflict.contract_id,
            used=conflict.first,
            ignored=conflict.second,
        )
    return pipeline.contracts


def sync_notes(pipeline: Pipeline, roots: Iterable[Path]) -> NotesReport:
    """Archive every new note revision and record deletions, then bring the index up to date."""
    session, tz = pipeline.session, pipeline.tz
    report = NotesReport()
    revisions: list[_Revision] = []
    present: set[str] = set()
    root_list = [r for r in roots]
    for root in root_list:
        for file in scan(root):
            report.seen += 1
            present.add(str(file.path))
            revision = _changed_revision(session, file, tz, report)
            if revision is not None:
                revisions.append(revision)
    deleted = [
        p
        for root in root_list
        if root.is_dir()  # an unmounted or missing folder is not "every note deleted"
        for p in session.state.note_paths(str(root))
        if p not in present and _gone(p)
    ]
    before = dict(pipeline.contracts)
    contracts = _contracts_after(pipeline, revisions, deleted)
    built: dict[str, IndexDoc] = {}
    for start in range(0, len(revisions), BATCH):
        batch = revisions[start : start + BATCH]
        built.update(_commit_revisions(session, batch, contracts))
        report.archived += len(batch)
    for path in deleted:
        _commit_deletion(session, path)
        report.deleted += 1
    if _link_view(before) != _link_view(contracts):
        report.relinked = relink_notes(session, contracts, tz, skip=set(built))
    pipeline.flush(built)
    return report


def _link_view(contracts: dict[str, Contract]) -> dict[str, tuple[object, ...]]:
    return {k: (c.client, c.milestones) for k, c in contracts.items()}


def _commit_revisions(
    session: Session, batch: list[_Revision], contracts: dict[str, Contract]
) -> dict[str, IndexDoc]:
    """Archive a batch, then write ledger, cursors, contracts and records in one transaction."""
    for revision in batch:
        session.archive.put(revision.item.raw)
    records: dict[str, Record] = {}
    with transaction(session.conn):
        for revision in batch:
            records[revision.item.path] = _commit_one(session, revision, contracts)
    for revision in batch:
        get_logger(source="notes").info(
            "note archived", path=revision.item.path, sha256=revision.sha256[:12]
        )
    return {r.id: IndexDoc(r, fulltext=r.text) for r in records.values()}


def _commit_one(session: Session, revision: _Revision, contracts: dict[str, Contract]) -> Record:
    item, file = revision.item, revision.file
    event = "seen" if session.ledger.has_item(revision.sha256) else "ingest"
    session.ledger.append(
        event,
        sha256=revision.sha256,
        origin=item.origin.key(),
        detail={"path": item.path, "root": item.root, "mtime_ns": file.mtime_ns, "size": file.size},
    )
    session.state.set_note_cursor(item.root, item.path, file.mtime_ns, file.size, revision.sha256)
    session.state.drop_contracts_defined_by(item.path)
    declared = note_contract(item, revision.note)
    if declared is not None and contracts.get(declared.id) == declared:
        session.state.put_contract(declared)
    record = note_record(item, revision.note, contracts)
    session.state.put_record(record)
    return record


def _commit_deletion(session: Session, path: str) -> None:
    cursor = session.state.note_cursor(path)
    row = session.conn.execute("SELECT source FROM note_files WHERE path = ?", (path,)).fetchone()
    root = row["source"] if row else ""
    with transaction(session.conn):
        session.ledger.append(
            "delete",
            sha256=cursor[2] if cursor else None,
            origin=f"{SourceKind.NOTES.value}:{root}:{path}",
            detail={"path": path, "root": root},
        )
        session.state.drop_note_cursor(path)
        session.state.drop_contracts_defined_by(path)
        session.state.mark_deleted(note_record_id(path))
    get_logger(source="notes").info("note deleted; archived revisions kept", path=path)


def load_note_item(session: Session, path: str, sha256: str) -> NoteItem:
    """Rebuild a note revision from the archive and its cursor."""
    row = session.conn.execute(
        "SELECT source, mtime_ns FROM note_files WHERE path = ?", (path,)
    ).fetchone()
    root, mtime_ns = (row["source"], row["mtime_ns"]) if row else (str(Path(path).parent), 0)
    return NoteItem(
        raw=session.archive.get(sha256), root=root, path=path, mtime=mtime_datetime(mtime_ns)
    )


def relink_notes(
    session: Session, contracts: dict[str, Contract], tz: tzinfo, skip: set[str]
) -> int:
    """Re-link note records after the set of contracts changed; return how many moved."""
    moved = 0
    rows = [r for r in session.state.records() if r["source"] == "notes" and r["id"] not in skip]
    with transaction(session.conn):
        for row in rows:
            origin = row_origin(row)
            item = load_note_item(session, origin.path or "", row["sha256"])
            record = note_record(item, parse_note_item(item, tz), contracts)
            if (record.client, record.contract, record.milestone) != (
                row["client"],
                row["contract"],
                row["milestone"],
            ):
                session.state.put_record(record)
                moved += 1
    return moved


def relink_threads(pipeline: Pipeline) -> int:
    """Link replies that arrived before the message they answer (order must not matter)."""
    session = pipeline.session
    moved = 0
    for _round in range(10):
        changed = 0
        with transaction(session.conn):
            for row in session.state.unlinked_threaded():
                refs = json.loads(row["thread"])
                parent = next(
                    (
                        p
                        for ref in refs
                        if (p := session.state.record_by_message_id(ref)) and p["contract"]
                    ),
                    None,
                )
                if parent is not None:
                    session.state.set_link(
                        row["id"], parent["client"], parent["contract"], "thread"
                    )
                    changed += 1
        moved += changed
        if not changed:
            break
    if moved:
        pipeline.flush({})
    return moved
