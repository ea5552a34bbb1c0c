"""Linking: which client, contract and milestone an item belongs to (pure)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from corrlog.model import Contract


@dataclass(frozen=True, slots=True)
class Link:
    """The result of linking: what was found and which rule found it."""

    client: str | None = None
    contract: str | None = None
    milestone: str | None = None
    rule: str | None = None


UNLINKED = Link()


def link_note(
    *,
    contract_id: str | None,
    client: str | None,
    folder: str | None,
    contracts: Mapping[str, Contract],
    text: str,
) -> Link:
    """Link a note: front matter `contract:` first, then a sub-folder named after a known contract."""
    if contract_id:
        known = contracts.get(contract_id)
        found_client = client or (known.client if known else None)
        return _with_milestone(Link(found_client, contract_id, None, "explicit"), known, text)
    if folder and folder in contracts:
        known = contracts[folder]
        return _with_milestone(Link(client or known.client, folder, None, "folder"), known, text)
    if client:
        return Link(client=client, rule="explicit")
    return UNLINKED


def _with_milestone(link: Link, contract: Contract | None, text: str) -> Link:
    if contract is None:
        return link
    milestone = find_milestone(contract, text)
    if milestone is None:
        return link
    return Link(link.client, link.contract, milestone, link.rule)


def find_milestone(contract: Contract, text: str) -> str | None:
    """The milestone whose id or name appears as whole words in `text`, if exactly one does."""
    lowered = text.lower()
    found = [
        m.id
        for m in contract.milestones
        if any(_has_phrase(lowered, p) for p in {m.id.lower(), m.name.lower()} if p)
    ]
    return found[0] if len(found) == 1 else None


def _has_phrase(text: str, phrase: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", text) is not None
