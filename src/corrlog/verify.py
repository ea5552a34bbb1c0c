"""Verification: walk the ledger's hash chain and re-hash every archived object."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from corrlog.archive import Archive
from corrlog.ledger import Ledger, chain_problems

_CHUNK = 1 << 20


@dataclass
class VerifyReport:
    """What verification found."""

    entries: int = 0
    objects: int = 0
    unreferenced: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether nothing is broken."""
        return not self.problems

    def summary(self) -> str:
        """One line for people."""
        extra = f", {self.unreferenced} unreferenced" if self.unreferenced else ""
        if self.ok:
            return f"ok: ledger chain of {self.entries} entries intact, {self.objects} archived objects match their hashes{extra}"
        return f"FAILED: {len(self.problems)} problem(s) in {self.entries} ledger entries and {self.objects} objects{extra}"


def object_sha256(archive: Archive, name: str) -> str | None:
    """The sha256 of an archived object's current bytes, or None when it is missing."""
    digest = hashlib.sha256()
    try:
        with archive.path(name).open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    except FileNotFoundError:
        return None
    return digest.hexdigest()


def verify(
    ledger: Ledger, archive: Archive, progress: Callable[[int], None] | None = None
) -> VerifyReport:
    """Check the chain and every object the ledger names; report each broken one."""
    report = VerifyReport()
    entries = list(ledger.entries())
    report.entries = len(entries)
    report.problems.extend(chain_problems(iter(entries)))
    referenced: dict[str, int] = {}
    for entry in entries:
        if entry.sha256 and entry.event != "delete":
            referenced.setdefault(entry.sha256, entry.seq)
    for name, seq in referenced.items():
        actual = object_sha256(archive, name)
        report.objects += 1
        if actual is None:
            report.problems.append(f"archived object {name} (ledger entry {seq}) is missing")
        elif actual != name:
            report.problems.append(
                f"archived object {name} (ledger entry {seq}) is corrupt: its bytes hash to {actual}"
            )
        if progress:
            progress(1)
    report.unreferenced = sum(1 for name in archive.iter_hashes() if name not in referenced)
    return report
