"""Linking: which client, contract and milestone an item belongs to (pure)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from corrlog.model import Contract, ContractStatus
from corrlog.rules.capture import CapturePolicy, subject_tags


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
    words = r"\s+".join(re.escape(word) for word in phrase.split())
    return bool(words) and re.search(rf"(?<!\w){words}(?!\w)", text) is not None


def link_mail(
    *,
    subject: str,
    participants: Iterable[str],
    thread_refs: Iterable[str],
    when: date,
    contracts: Mapping[str, Contract],
    thread_links: Mapping[str, Link],
    text: str,
) -> Link:
    """Link a message: subject tag, then thread (a linked parent), then participants."""
    by_lower = {k.lower(): c for k, c in contracts.items()}
    for tag in subject_tags(subject):
        if tag in by_lower:
            tagged = by_lower[tag]
            link = Link(tagged.client, tagged.id, None, "explicit")
            return _with_milestone(link, tagged, f"{subject}\n{text}")
    for ref in thread_refs:
        parent = thread_links.get(ref)
        if parent is not None and parent.contract:
            known = contracts.get(parent.contract)
            link = Link(parent.client, parent.contract, None, "thread")
            return _with_milestone(link, known, f"{subject}\n{text}")
    return _link_by_participants(list(participants), when, contracts, f"{subject}\n{text}")


def _link_by_participants(
    participants: list[str], when: date, contracts: Mapping[str, Contract], text: str
) -> Link:
    matching = [
        c
        for c in contracts.values()
        if any(CapturePolicy.from_contracts([c]).matches_address(a) for a in participants)
    ]
    if not matching:
        return UNLINKED
    active = [c for c in matching if _active_on(c, when)]
    candidates = active or matching
    clients = {c.client for c in candidates}
    if len(candidates) == 1:
        known = candidates[0]
        return _with_milestone(Link(known.client, known.id, None, "participants"), known, text)
    if len(clients) == 1:
        return Link(client=clients.pop(), rule="participants-client")
    return UNLINKED


def _active_on(contract: Contract, when: date) -> bool:
    if contract.status is not ContractStatus.ACTIVE:
        return False
    return contract.start is None or contract.start <= when
