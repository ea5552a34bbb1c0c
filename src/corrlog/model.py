"""The typed data corrlog works with: records, contracts, milestones and their enums."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    """What an item says: terms agreed, progress reported, or anything else."""

    AGREEMENT = "agreement"
    UPDATE = "update"
    MESSAGE = "message"


class Direction(StrEnum):
    """Who wrote it: the client (in), the freelancer to the client (out), or a note (internal)."""

    IN = "in"
    OUT = "out"
    INTERNAL = "internal"


class SourceKind(StrEnum):
    """The kind of source an item came from."""

    NOTES = "notes"
    IMAP = "imap"
    MAILDIR = "maildir"


class ContractStatus(StrEnum):
    """Lifecycle of a contract; only active contracts raise staleness flags."""

    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class Escrow(StrEnum):
    """Escrow state of a milestone's money."""

    UNFUNDED = "unfunded"
    FUNDED = "funded"
    RELEASED = "released"
    REFUNDED = "refunded"


class MilestoneStatus(StrEnum):
    """Where a milestone's work stands."""

    OPEN = "open"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    PAID = "paid"


@dataclass(frozen=True, slots=True)
class Origin:
    """Where one copy of an item was found: a note path, or account/folder/UID, or a Maildir file."""

    source: SourceKind
    name: str
    path: str | None = None
    folder: str | None = None
    uidvalidity: int | None = None
    uid: int | None = None

    def key(self) -> str:
        """A stable string naming this origin (used for de-duplication and display)."""
        if self.source is SourceKind.IMAP:
            return f"imap:{self.name}/{self.folder};UIDVALIDITY={self.uidvalidity}/UID={self.uid}"
        return f"{self.source.value}:{self.name}:{self.path}"

    def to_json(self) -> dict[str, Any]:
        """The origin as a JSON object without empty fields."""
        data: dict[str, Any] = {"source": self.source.value, "name": self.name}
        for key in ("path", "folder", "uidvalidity", "uid"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Origin:
        """Rebuild an origin from `to_json` output."""
        return cls(
            source=SourceKind(data["source"]),
            name=str(data["name"]),
            path=data.get("path"),
            folder=data.get("folder"),
            uidvalidity=data.get("uidvalidity"),
            uid=data.get("uid"),
        )


@dataclass(frozen=True, slots=True)
class Milestone:
    """A payable part of a contract."""

    id: str
    name: str
    amount: float | None = None
    currency: str | None = None
    due: date | None = None
    escrow: Escrow = Escrow.UNFUNDED
    status: MilestoneStatus = MilestoneStatus.OPEN
    status_since: date | None = None


@dataclass(frozen=True, slots=True)
class Contract:
    """An agreement with a client: who, how to recognise their mail, and its milestones."""

    id: str
    client: str
    title: str = ""
    emails: tuple[str, ...] = ()
    interval: timedelta | None = None
    start: date | None = None
    status: ContractStatus = ContractStatus.ACTIVE
    milestones: tuple[Milestone, ...] = ()
    defined_by: str = ""


@dataclass(frozen=True, slots=True)
class Record:
    """One item, parsed and normalised; what the index and the rules see."""

    id: str
    source: SourceKind
    kind: Kind
    direction: Direction
    date: datetime
    subject: str
    sha256: str
    origin: Origin
    client: str | None = None
    contract: str | None = None
    milestone: str | None = None
    sender: str = ""
    recipients: tuple[str, ...] = ()
    participants: tuple[str, ...] = ()
    text: str = ""
    attachments: tuple[str, ...] = ()
    link_rule: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
