"""Payment-risk flags on active contracts: stale, silent, due, overdue, unfunded, unpaid (pure)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from corrlog.model import (
    Contract,
    ContractStatus,
    Direction,
    Escrow,
    Kind,
    Milestone,
    MilestoneStatus,
    Record,
)

# Decisions where the issue is silent (all datetimes are compared in UTC; naive ones are UTC):
# - Only records and milestone events at or before `now` count, so `--now` can look back.
# - A date (contract start, milestone due) means 00:00 UTC of that day.
# - stale / client-silent are measured from the later of the last qualifying record and the
#   contract start; without a start, from the contract's earliest record; with neither, no flag.
#   Neither flag is raised before the contract starts.
# - milestone-due: from due_soon before the due date's 00:00 until the due day has passed;
#   milestone-overdue: once the whole due day has passed (after due + 1 day, 00:00 UTC).
# - unfunded-work counts the freelancer's updates (direction out or internal) on an open,
#   submitted or approved milestone; a paid milestone no longer flags.
# - awaiting-payment starts when the milestone left `open` (its first submitted or approved
#   event since it was last open or paid); without such an event there is no flag.


class FlagName(StrEnum):
    """The kinds of payment risk a contract can be flagged for."""

    STALE = "stale"
    CLIENT_SILENT = "client-silent"
    MILESTONE_DUE = "milestone-due"
    MILESTONE_OVERDUE = "milestone-overdue"
    UNFUNDED_WORK = "unfunded-work"
    AWAITING_PAYMENT = "awaiting-payment"


# Most urgent first: the order `find_flags` sorts by.
URGENCY: tuple[FlagName, ...] = (
    FlagName.MILESTONE_OVERDUE,
    FlagName.AWAITING_PAYMENT,
    FlagName.STALE,
    FlagName.CLIENT_SILENT,
    FlagName.UNFUNDED_WORK,
    FlagName.MILESTONE_DUE,
)


@dataclass(frozen=True, slots=True)
class Flag:
    """One open risk on a contract (or one of its milestones), since when, in one human line."""

    contract: str
    name: FlagName
    since: datetime
    detail: str
    milestone: str | None = None

    @property
    def key(self) -> tuple[str, FlagName, str | None]:
        """What identifies this flag across evaluations: raised once, cleared when it goes."""
        return (self.contract, self.name, self.milestone)


@dataclass(frozen=True, slots=True)
class FlagSettings:
    """Thresholds for the flag rules; a contract's own interval overrides `default_interval`."""

    default_interval: timedelta = timedelta(days=7)
    client_silence: timedelta = timedelta(days=14)
    payment_wait: timedelta = timedelta(days=14)
    due_soon: timedelta = timedelta(days=3)

    def __post_init__(self) -> None:
        """Reject zero or negative thresholds, naming the setting."""
        for name in ("default_interval", "client_silence", "payment_wait", "due_soon"):
            if getattr(self, name) <= timedelta(0):
                raise ValueError(f"flag setting {name} must be longer than zero")


@dataclass(frozen=True, slots=True)
class MilestoneEvent:
    """When a milestone changed status (derived by the caller from ledger or contract revisions)."""

    contract: str
    milestone: str
    status: MilestoneStatus
    at: datetime


_WORK = (Direction.OUT, Direction.INTERNAL)
_WAITING = (MilestoneStatus.SUBMITTED, MilestoneStatus.APPROVED)


def find_flags(
    contracts: Iterable[Contract],
    records: Iterable[Record],
    now: datetime,
    settings: FlagSettings,
    milestone_events: Iterable[MilestoneEvent] = (),
) -> list[Flag]:
    """Every flag on the active contracts as of `now`, most urgent first, then by contract id."""
    now = _utc(now)
    by_contract: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        if record.contract is not None and _utc(record.date) <= now:
            by_contract[record.contract].append(record)
    events: dict[tuple[str, str], list[MilestoneEvent]] = defaultdict(list)
    for event in milestone_events:
        if _utc(event.at) <= now:
            events[(event.contract, event.milestone)].append(event)
    found = [
        flag
        for contract in contracts
        if contract.status is ContractStatus.ACTIVE
        for flag in _contract_flags(
            contract, sorted(by_contract[contract.id], key=_by_date), now, settings, events
        )
    ]
    return sorted(found, key=_urgency)


def _contract_flags(
    contract: Contract,
    records: list[Record],
    now: datetime,
    settings: FlagSettings,
    events: dict[tuple[str, str], list[MilestoneEvent]],
) -> Iterator[Flag]:
    yield from _stale(contract, records, now, contract.interval or settings.default_interval)
    yield from _client_silent(contract, records, now, settings.client_silence)
    for milestone in contract.milestones:
        yield from _due(contract, milestone, now, settings.due_soon)
        yield from _unfunded(contract, milestone, records)
        history = events.get((contract.id, milestone.id), [])
        yield from _awaiting(contract, milestone, history, now, settings.payment_wait)


def _stale(
    contract: Contract, records: list[Record], now: datetime, interval: timedelta
) -> Iterator[Flag]:
    updates = [r for r in records if r.kind is Kind.UPDATE and r.direction in _WORK]
    quiet = _quiet_since(contract, records, updates[-1] if updates else None, now)
    if quiet is None or now - quiet.since <= interval:
        return
    if quiet.last is None:
        detail = f"no progress update since {quiet.origin} ({_span(now - quiet.since)})"
    else:
        detail = f"no progress update for {_span(now - quiet.since)}; last: {_cite(quiet.last)}"
    yield Flag(contract.id, FlagName.STALE, quiet.since + interval, detail)


def _client_silent(
    contract: Contract, records: list[Record], now: datetime, silence: timedelta
) -> Iterator[Flag]:
    incoming = [r for r in records if r.direction is Direction.IN]
    quiet = _quiet_since(contract, records, incoming[-1] if incoming else None, now)
    if quiet is None or now - quiet.since <= silence:
        return
    if quiet.last is None:
        detail = f"no message from the client since {quiet.origin} ({_span(now - quiet.since)})"
    else:
        detail = (
            f"no message from the client for {_span(now - quiet.since)}; last: {_cite(quiet.last)}"
        )
    yield Flag(contract.id, FlagName.CLIENT_SILENT, quiet.since + silence, detail)


@dataclass(frozen=True, slots=True)
class _Quiet:
    """Since when a contract has been quiet: the last qualifying record, or where it began."""

    since: datetime
    last: Record | None
    origin: str


def _quiet_since(
    contract: Contract, records: list[Record], last: Record | None, now: datetime
) -> _Quiet | None:
    """The later of `last` and the contract start; None before the start or with nothing to go by."""
    start = _day(contract.start) if contract.start else None
    if start is not None and now < start:
        return None
    if last is not None and (start is None or _utc(last.date) >= start):
        return _Quiet(_utc(last.date), last, "")
    if start is not None:
        return _Quiet(start, None, f"the contract started on {contract.start}")
    if not records:
        return None
    first = _utc(records[0].date)
    return _Quiet(first, None, f"the contract's first record on {first.date()}")


def _due(
    contract: Contract, milestone: Milestone, now: datetime, due_soon: timedelta
) -> Iterator[Flag]:
    if milestone.due is None or milestone.status is not MilestoneStatus.OPEN:
        return
    due_start = _day(milestone.due)
    day_over = due_start + timedelta(days=1)
    label = _label(milestone)
    if now > day_over:
        late = (now.date() - milestone.due).days
        detail = f"{label} was due on {milestone.due} and is not submitted ({_days(late)} late)"
        yield Flag(contract.id, FlagName.MILESTONE_OVERDUE, day_over, detail, milestone.id)
    elif now > due_start - due_soon:
        detail = f"{label} is due on {milestone.due} ({_when(milestone.due, now.date())})"
        yield Flag(contract.id, FlagName.MILESTONE_DUE, due_start - due_soon, detail, milestone.id)


def _unfunded(contract: Contract, milestone: Milestone, records: list[Record]) -> Iterator[Flag]:
    if milestone.escrow is not Escrow.UNFUNDED or milestone.status is MilestoneStatus.PAID:
        return
    work = [
        r
        for r in records
        if r.milestone == milestone.id and r.kind is Kind.UPDATE and r.direction in _WORK
    ]
    if not work:
        return
    count = f"{len(work)} update{'s' if len(work) != 1 else ''}"
    detail = f"{count} on {_label(milestone)} while its escrow is unfunded; first: {_cite(work[0])}"
    yield Flag(contract.id, FlagName.UNFUNDED_WORK, _utc(work[0].date), detail, milestone.id)


def _awaiting(
    contract: Contract,
    milestone: Milestone,
    history: list[MilestoneEvent],
    now: datetime,
    wait: timedelta,
) -> Iterator[Flag]:
    if milestone.status not in _WAITING:
        return
    waiting_since = _waiting_since(history)
    if waiting_since is None or now - waiting_since <= wait:
        return
    detail = (
        f"{_label(milestone)} is {milestone.status.value} but not paid after "
        f"{_span(now - waiting_since)} (waiting since {waiting_since.date()})"
    )
    yield Flag(contract.id, FlagName.AWAITING_PAYMENT, waiting_since + wait, detail, milestone.id)


def _waiting_since(history: list[MilestoneEvent]) -> datetime | None:
    """When the milestone last left `open` for submitted/approved, if it has not since been paid."""
    since: datetime | None = None
    for event in sorted(history, key=lambda e: _utc(e.at)):
        waiting = event.status in _WAITING
        since = (since or _utc(event.at)) if waiting else None
    return since


def _urgency(flag: Flag) -> tuple[int, str, str, datetime]:
    return (URGENCY.index(flag.name), flag.contract, flag.milestone or "", flag.since)


def _by_date(record: Record) -> tuple[datetime, str]:
    return (_utc(record.date), record.id)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _day(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def _label(milestone: Milestone) -> str:
    return f"milestone '{milestone.name}'"


def _cite(record: Record) -> str:
    return f"'{record.subject}' on {_utc(record.date).date()}"


def _span(delta: timedelta) -> str:
    """A duration for display, in whole days, or hours or minutes when under a day."""
    if delta >= timedelta(days=1):
        return _days(delta.days)
    hours = int(delta.total_seconds() // 3600)
    if hours >= 1:
        return f"{hours} hour{'s' if hours != 1 else ''}"
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _days(count: int) -> str:
    return f"{count} day{'s' if count != 1 else ''}"


def _when(due: date, today: date) -> str:
    days = (due - today).days
    if days <= 0:
        return "today"
    if days == 1:
        return "tomorrow"
    return f"in {days} days"
