"""Contracts declared by agreement notes: derive them and merge them (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from corrlog.model import Contract
from corrlog.parse.note import Note


def contract_from_note(
    note: Note, *, folder_contract: str | None, defined_by: str
) -> Contract | None:
    """The contract an agreement note declares, or None when it declares none."""
    meta = note.meta
    if meta.type != "agreement":
        return None
    contract_id = (meta.contract or folder_contract or "").strip()
    if not contract_id:
        return None
    return Contract(
        id=contract_id,
        client=(meta.client or contract_id).strip(),
        title=note.title,
        emails=tuple(meta.emails),
        interval=meta.interval,
        start=meta.start or (note.date.date() if note.date else None),
        status=meta.status,
        milestones=tuple(m.to_milestone() for m in meta.milestones),
        defined_by=defined_by,
    )


@dataclass(frozen=True, slots=True)
class Conflict:
    """Two definitions of one contract id that disagree."""

    contract_id: str
    first: str
    second: str


def merge_contracts(definitions: Iterable[Contract]) -> tuple[dict[str, Contract], list[Conflict]]:
    """Index contracts by id; the first definition (by `defined_by`) wins, disagreements are reported."""
    merged: dict[str, Contract] = {}
    conflicts: list[Conflict] = []
    for contract in sorted(definitions, key=lambda c: c.defined_by):
        known = merged.get(contract.id)
        if known is None:
            merged[contract.id] = contract
        elif _differs(known, contract):
            conflicts.append(Conflict(contract.id, known.defined_by, contract.defined_by))
    return merged, conflicts


def _differs(a: Contract, b: Contract) -> bool:
    fields = ("client", "emails", "interval", "start", "status", "milestones")
    return any(getattr(a, f) != getattr(b, f) for f in fields)
