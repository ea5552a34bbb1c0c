"""From raw item bytes to a Record: parse, derive contracts, link and classify (pure)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import PurePath

from corrlog.archive import sha256_hex
from corrlog.model import Contract, Direction, Origin, Record, SourceKind
from corrlog.parse.note import Note, parse_note
from corrlog.rules.classify import classify
from corrlog.rules.contracts import contract_from_note
from corrlog.rules.link import link_note


def note_record_id(path: str) -> str:
    """A note's record id: stable across its revisions, derived from its absolute path."""
    return hashlib.sha256(f"note\0{path}".encode()).hexdigest()[:12]


def note_folder(relative: PurePath) -> str | None:
    """The sub-folder a note sits in (its parent's name), or None at the top of the notes folder."""
    return relative.parent.name or None


@dataclass(frozen=True, slots=True)
class NoteItem:
    """A note revision as found: its bytes and where and when it was seen."""

    raw: bytes
    root: str
    path: str
    mtime: datetime

    @property
    def relative(self) -> PurePath:
        """The path below the notes folder."""
        return PurePath(self.path).relative_to(self.root)

    @property
    def origin(self) -> Origin:
        """The origin of this revision."""
        return Origin(source=SourceKind.NOTES, name=self.root, path=self.path)


def note_contract(item: NoteItem, note: Note) -> Contract | None:
    """The contract this revision declares, if it is an agreement note."""
    return contract_from_note(
        note, folder_contract=note_folder(item.relative), defined_by=item.path
    )


def note_record(item: NoteItem, note: Note, contracts: Mapping[str, Contract]) -> Record:
    """The record for a parsed note revision, linked against `contracts`."""
    meta = note.meta
    declared = note_contract(item, note)
    link = link_note(
        contract_id=meta.contract or (declared.id if declared else None),
        client=meta.client,
        folder=note_folder(item.relative),
        contracts=contracts,
        text=f"{note.title}\n{note.body}",
    )
    return Record(
        id=note_record_id(item.path),
        source=SourceKind.NOTES,
        kind=classify(
            subject=note.title, new_text=note.body, direction=Direction.INTERNAL, declared=meta.type
        )[0],
        direction=Direction.INTERNAL,
        date=note.date or item.mtime,
        subject=note.title,
        sha256=sha256_hex(item.raw),
        origin=item.origin,
        client=link.client,
        contract=link.contract,
        milestone=link.milestone,
        text=note.body,
        link_rule=link.rule,
    )


def parse_note_item(item: NoteItem, tz: tzinfo) -> Note:
    """Parse a note revision (RecordError when it cannot be)."""
    return parse_note(item.raw, name=PurePath(item.path).stem, tz=tz)


def mtime_datetime(mtime_ns: int) -> datetime:
    """A file mtime as an aware UTC datetime."""
    return datetime.fromtimestamp(mtime_ns / 1e9, UTC)
