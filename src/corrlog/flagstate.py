"""The flag lifecycle: raise once, notify again on a schedule, clear, snooze (ledger events)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from corrlog.datadir import Session
from corrlog.ledger import transaction
from corrlog.logging import get_logger
from corrlog.model import Contract, MilestoneStatus, Record
from corrlog.notify import Notifier, NotifyError
from corrlog.rules.flags import Flag, FlagName, FlagSettings, MilestoneEvent, find_flags
from corrlog.state import contract_to_json, row_record

FlagKey = tuple[str, str, str]
RETRY_FAILED = timedelta(hours=1)


def flag_key(flag: Flag) -> FlagKey:
    """A flag's identity in the database (milestone '' when none)."""
    return (flag.contract, flag.name.value, flag.milestone or "")


@dataclass(frozen=True, slots=True)
class OpenFlag:
    """A flag as stored while it is open."""

    flag: Flag
    raised_at: datetime
    notified_at: datetime | None


@dataclass
class FlagChanges:
    """What an evaluation changes."""

    raised: list[Flag] = field(default_factory=list)
    cleared: list[Flag] = field(default_factory=list)
    renotify: list[Flag] = field(default_factory=list)


def plan_changes(
    open_flags: dict[FlagKey, OpenFlag],
    found: Sequence[Flag],
    now: datetime,
    renotify: timedelta,
    snoozed: set[str],
) -> FlagChanges:
    """Compare open flags with the flags found now (pure)."""
    changes = FlagChanges()
    current = {flag_key(f): f for f in found}
    for key, flag in current.items():
        known = open_flags.get(key)
        if known is None:
            changes.raised.append(flag)
        elif flag.contract not in snoozed and (
            known.notified_at is None or now - known.notified_at >= renotify
        ):
            changes.renotify.append(flag)
    changes.cleared = [o.flag for key, o in open_flags.items() if key not in current]
    return changes


# reading -------------------------------------------------------------------------------------


def flag_records(session: Session) -> list[Record]:
    """Every linked record, as the flag rules need it."""
    rows = session.conn.execute(
        "SELECT * FROM records WHERE contract IS NOT NULL AND indexed != -1 ORDER BY date"
    )
    return [row_record(row) for row in rows]


def milestone_events(session: Session) -> list[MilestoneEvent]:
    """Milestone status changes from the ledger (`milestone` events)."""
    events = []
    for row in session.conn.execute(
        "SELECT time, detail FROM ledger WHERE event = 'milestone' ORDER BY seq"
    ):
        detail = json.loads(row["detail"])
        at = datetime.fromisoformat(detail.get("at") or row["time"])
        events.append(
            MilestoneEvent(
                detail["contract"], detail["milestone"], MilestoneStatus(detail["status"]), at
            )
        )
    return events


def open_flags(session: Session) -> dict[FlagKey, OpenFlag]:
    """The flags currently open in the database."""
    result = {}
    for row in session.conn.execute("SELECT * FROM flags"):
        flag = Flag(
            contract=row["contract"],
            name=FlagName(row["name"]),
            since=datetime.fromisoformat(row["since"]),
            detail=row["detail"],
            milestone=row["milestone"] or None,
        )
        notified = datetime.fromisoformat(row["notified_at"]) if row["notified_at"] else None
        result[flag_key(flag)] = OpenFlag(flag, datetime.fromisoformat(row["raised_at"]), notified)
    return result


def snoozes(session: Session, now: datetime) -> dict[str, tuple[datetime, str]]:
    """Contracts snoozed past `now`: until when and why."""
    found = {}
    for row in session.conn.execute("SELECT * FROM snoozes"):
        until = datetime.fromisoformat(row["until"])
        if until > now:
            found[row["contract"]] = (until, row["reason"])
    return found


def evaluate(
    session: Session, contracts: Iterable[Contract], now: datetime, settings: FlagSettings
) -> list[Flag]:
    """The flags that hold at `now` (pure rules over what the database knows)."""
    return find_flags(contracts, flag_records(session), now, settings, milestone_events(session))


# writing -------------------------------------------------------------------------------------


def apply_changes(
    session: Session,
    changes: FlagChanges,
    now: datetime,
    notifiers: Sequence[Notifier],
    snoozed: set[str],
    renotify: timedelta = timedelta(days=3),
) -> None:
    """Record raises and clears in the ledger and the flags table, then notify."""
    stamp = now.astimezone(UTC).isoformat()
    with transaction(session.conn):
        for flag in changes.raised:
            session.ledger.append("flag-raised", detail=_detail(flag))
            session.conn.execute(
                "INSERT OR REPLACE INTO flags (contract, name, milestone, since, detail, raised_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (*flag_key(flag), flag.since.isoformat(), flag.detail, stamp),
            )
        for flag in changes.cleared:
            session.ledger.append("flag-cleared", detail=_detail(flag))
            session.conn.execute(
                "DELETE FROM flags WHERE contract = ? AND name = ? AND milestone = ?",
                flag_key(flag),
            )
    for flag, event in [
        *((f, "raised") for f in changes.raised),
        *((f, "open") for f in changes.renotify),
    ]:
        if flag.contract in snoozed:
            continue
        delivered = _notify(flag, event, notifiers)
        # A failed delivery is retried after RETRY_FAILED, not on every pass.
        at = stamp if delivered else (now - renotify + RETRY_FAILED).astimezone(UTC).isoformat()
        with transaction(session.conn):
            if delivered and event == "open":
                session.ledger.append("flag-notified", detail=_detail(flag))
            session.conn.execute(
                "UPDATE flags SET notified_at = ? WHERE contract = ? AND name = ? AND milestone = ?",
                (at, *flag_key(flag)),
            )


def _notify(flag: Flag, event: str, notifiers: Sequence[Notifier]) -> bool:
    delivered = True
    for notifier in notifiers:
        try:
            notifier.send(flag, event=event)
        except NotifyError as exc:
            delivered = False
            get_logger(contract=flag.contract).error(
                "notification failed; retried later", reason=str(exc)
            )
    return delivered


def _detail(flag: Flag) -> dict[str, object]:
    return {
        "contract": flag.contract,
        "flag": flag.name.value,
        "milestone": flag.milestone,
        "since": flag.since.isoformat(),
        "detail": flag.detail,
    }


def check_flags(
    session: Session,
    contracts: Iterable[Contract],
    now: datetime,
    settings: FlagSettings,
    renotify: timedelta,
    notifiers: Sequence[Notifier],
) -> FlagChanges:
    """Evaluate, record and notify: what `sync` and the daemon run."""
    found = evaluate(session, contracts, now, settings)
    snoozed = set(snoozes(session, now))
    changes = plan_changes(open_flags(session), found, now, renotify, snoozed)
    apply_changes(session, changes, now, notifiers, snoozed, renotify)
    return changes


def snooze(session: Session, contract: str, until: datetime, reason: str) -> None:
    """Hide a contract's flags until `until` (a ledger event)."""
    with transaction(session.conn):
        session.ledger.append(
            "snooze", detail={"contract": contract, "until": until.isoformat(), "reason": reason}
        )
        session.conn.execute(
            "INSERT OR REPLACE INTO snoozes (contract, until, reason) VALUES (?, ?, ?)",
            (contract, until.isoformat(), reason),
        )


def record_contract_changes(session: Session, contracts: dict[str, Contract]) -> int:
    """Ledger every change of a contract's terms and every milestone status change; return count."""
    changed = 0
    known = {
        r["id"]: json.loads(r["body"])
        for r in session.conn.execute("SELECT * FROM contract_snapshots")
    }
    with transaction(session.conn):
        for contract_id, contract in sorted(contracts.items()):
            body = json.loads(json.dumps(contract_to_json(contract)))
            body.pop("defined_by", None)
            before = known.get(contract_id)
            if before == body:
                continue
            session.ledger.append("contract", detail={"contract": contract_id, "terms": body})
            _milestone_changes(session, contract, before)
            session.conn.execute(
                "INSERT OR REPLACE INTO contract_snapshots (id, body) VALUES (?, ?)",
                (contract_id, json.dumps(body)),
            )
            changed += 1
        for contract_id in sorted(set(known) - set(contracts)):
            session.ledger.append("contract-removed", detail={"contract": contract_id})
            session.conn.execute("DELETE FROM contract_snapshots WHERE id = ?", (contract_id,))
            changed += 1
    return changed


def _milestone_changes(
    session: Session, contract: Contract, before: dict[str, object] | None
) -> None:
    old = {m["id"]: m["status"] for m in (before or {}).get("milestones", [])}  # type: ignore[attr-defined]
    for milestone in contract.milestones:
        previous = old.get(milestone.id, "open")
        if milestone.status.value == previous:
            continue
        at = (
            datetime.combine(milestone.status_since, datetime.min.time(), tzinfo=UTC).isoformat()
            if milestone.status_since
            else None
        )
        session.ledger.append(
            "milestone",
            detail={
                "contract": contract.id,
                "milestone": milestone.id,
                "status": milestone.status.value,
                "at": at,
            },
        )
