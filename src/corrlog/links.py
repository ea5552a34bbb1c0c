"""Filing items by hand: `corrlog link` writes a ledger event that survives `reindex`."""

from __future__ import annotations

import json

from corrlog.datadir import Session
from corrlog.errors import UsageError
from corrlog.ledger import transaction
from corrlog.model import Contract


def link_by_hand(
    session: Session, record_id: str, contract: Contract, milestone: str | None
) -> str:
    """Link a record to a contract (and milestone); return the full record id."""
    row = session.state.record_row(record_id)
    if row is None:
        raise UsageError(f"no record with id {record_id!r}; find ids with 'corrlog search'")
    if milestone and milestone not in {m.id for m in contract.milestones}:
        known = ", ".join(m.id for m in contract.milestones) or "none"
        raise UsageError(
            f"contract {contract.id!r} has no milestone {milestone!r} (known: {known})"
        )
    with transaction(session.conn):
        session.ledger.append(
            "link",
            sha256=row["sha256"],
            detail={"record": row["id"], "contract": contract.id, "milestone": milestone},
        )
        session.conn.execute(
            "INSERT OR REPLACE INTO manual_links (record_id, contract, milestone) VALUES (?, ?, ?)",
            (row["id"], contract.id, milestone),
        )
    apply_manual_links(session, {contract.id: contract})
    return str(row["id"])


def replay_manual_links(session: Session) -> None:
    """Rebuild the manual_links table from the ledger's `link` events (for reindex)."""
    with transaction(session.conn):
        session.conn.execute("DELETE FROM manual_links")
        for row in session.conn.execute(
            "SELECT detail FROM ledger WHERE event = 'link' ORDER BY seq"
        ):
            detail = json.loads(row["detail"])
            session.conn.execute(
                "INSERT OR REPLACE INTO manual_links (record_id, contract, milestone) VALUES (?, ?, ?)",
                (detail["record"], detail["contract"], detail.get("milestone")),
            )


def apply_manual_links(session: Session, contracts: dict[str, Contract]) -> int:
    """Make every record filed by hand carry its manual link; return how many changed."""
    rows = session.conn.execute(
        "SELECT m.record_id, m.contract, m.milestone, r.contract AS cur_contract,"
        " r.milestone AS cur_milestone, r.link_rule FROM manual_links m"
        " JOIN records r ON r.id = m.record_id"
    ).fetchall()
    changed = 0
    with transaction(session.conn):
        for row in rows:
            current = (row["cur_contract"], row["cur_milestone"], row["link_rule"])
            if current == (row["contract"], row["milestone"], "manual"):
                continue
            known = contracts.get(row["contract"])
            session.conn.execute(
                "UPDATE records SET contract = ?, milestone = ?, client = COALESCE(?, client),"
                " link_rule = 'manual', indexed = 0 WHERE id = ?",
                (
                    row["contract"],
                    row["milestone"],
                    known.client if known else None,
                    row["record_id"],
                ),
            )
            changed += 1
    return changed
