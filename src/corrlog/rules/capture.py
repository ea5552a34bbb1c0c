"""The privacy filter: whether a message is client correspondence (captured) or personal (never stored)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from corrlog.model import Contract

_TAG = re.compile(r"\[([\w.-]+)\]")


def subject_tags(subject: str) -> list[str]:
    """Every `[tag]` in a subject, lower-cased, in order."""
    return [t.lower() for t in _TAG.findall(subject)]


@dataclass(frozen=True, slots=True)
class CapturePolicy:
    """Which addresses, domains and subject tags make a message client correspondence."""

    addresses: frozenset[str] = frozenset()
    domains: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()
    capture_all: bool = False

    @classmethod
    def from_contracts(
        cls, contracts: Iterable[Contract], *, capture_all: bool = False
    ) -> CapturePolicy:
        """Patterns from every contract's `emails` (`bob@x.com` or `@x.com`) and ids."""
        addresses, domains, tags = set(), set(), set()
        for contract in contracts:
            tags.add(contract.id.lower())
            for pattern in contract.emails:
                pattern = pattern.strip().lower()
                if pattern.startswith("@"):
                    domains.add(pattern[1:])
                elif "@" in pattern:
                    addresses.add(pattern)
        return cls(frozenset(addresses), frozenset(domains), frozenset(tags), capture_all)

    def patterns(self) -> frozenset[str]:
        """Everything this policy matches on, as comparable strings."""
        return (
            self.addresses
            | {"@" + d for d in self.domains}
            | {f"[{t}]" for t in self.tags}
            | ({"*"} if self.capture_all else set())
        )

    def matches_address(self, address: str) -> bool:
        """Whether one address belongs to a known client."""
        address = address.lower()
        if address in self.addresses:
            return True
        domain = address.rpartition("@")[2]
        return bool(domain) and any(domain == d or domain.endswith("." + d) for d in self.domains)

    def captures(self, addresses: Iterable[str], subject: str) -> bool:
        """Whether a message with these participants and subject is captured."""
        if self.capture_all:
            return True
        if any(self.matches_address(a) for a in addresses):
            return True
        return any(tag in self.tags for tag in subject_tags(subject))
