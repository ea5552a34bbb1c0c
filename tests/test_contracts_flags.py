"""Contracts and flags end to end: notes + mail from the test Dovecot over six simulated weeks."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import datetime

import pytest

from support.cli import CorrlogHome
from support.dovecot import DovecotServer
from support.mail import FRIEND, ME, add_imap_account, message, set_me
from support.smtp import PASSWORD, USER, SmtpServer

pytestmark = pytest.mark.imap

BOB, EVE = "bob@acme.example", "eve@globex.example"


def agreement(
    contract: str, client: str, emails: str, interval: str, status: str = "active"
) -> str:
    """An agreement note declaring one contract that started on 2026-09-01."""
    return (
        f"---\ntype: agreement\ncontract: {contract}\nclient: {client}\nemails: {emails}\n"
        f"interval: {interval}\nstart: 2026-09-01\nstatus: {status}\n---\n# {client} agreement\n"
    )


def update_note(day: str, title: str) -> str:
    """An update note dated `day` at 10:00 UTC."""
    return f"---\ntype: update\ndate: {day}T10:00:00+00:00\n---\n# {title}\nProgress report.\n"


def at(day: str) -> datetime:
    """10:00 UTC on a day of the scenario."""
    return datetime.fromisoformat(f"{day}T10:00:00+00:00")


def flags_at(home: CorrlogHome, now: str) -> set[tuple[str, str]]:
    """(contract, flag) pairs that `corrlog flags --now` reports."""
    rows = json.loads(home.ok("flags", "--now", now, "--all", "--format", "json").out)
    return {(row["contract"], row["flag"]) for row in rows}


def ledger_events(home: CorrlogHome, event: str) -> list[dict[str, object]]:
    """Details of every ledger entry of one kind."""
    with sqlite3.connect(home.data / "corrlog.db") as conn:
        rows = conn.execute("SELECT detail FROM ledger WHERE event = ? ORDER BY seq", (event,))
        return [json.loads(r[0]) for r in rows]


@pytest.fixture
def scenario(home: CorrlogHome, clean_mailboxes: DovecotServer) -> CorrlogHome:
    """Three clients, four contracts (one paused), notes and mail over September 2026."""
    server = clean_mailboxes
    home.note("contracts/acme-site.md", agreement("acme-site", "Acme", '["@acme.example"]', "7d"))
    home.note("contracts/acme-app.md", agreement("acme-app", "Acme", '["@acme.example"]', "14d"))
    home.note("contracts/globex.md", agreement("globex-ops", "Globex", f"[{EVE}]", "5d"))
    home.note(
        "contracts/initech.md",
        agreement("initech", "Initech", '["@initech.example"]', "3d", "paused"),
    )
    home.note("acme-site/2026-09-05.md", update_note("2026-09-05", "Wireframes done"))
    home.note("acme-app/2026-09-10.md", update_note("2026-09-10", "API skeleton"))
    inbox = [
        message(1, sender=BOB, subject="[acme-site] Question", body="Can we move the call?", when=at("2026-09-03")),
        message(2, sender=BOB, subject="[acme-site] Copy", body="Here is the copy.", when=at("2026-09-18")),
        message(3, sender=BOB, subject="[acme-site] Photos", body="Photos attached.", when=at("2026-10-01")),
        message(4, sender=EVE, subject="Hello", body="Looking forward.", when=at("2026-09-02")),
        message(5, sender=EVE, subject="Thanks", body="Thanks for the note.", when=at("2026-09-25")),
        message(
            6, sender=BOB, subject="Re: kickoff", body="Sounds good, see you Monday.",
            when=at("2026-09-04"), in_reply_to="<kickoff@free.example>",
        ),
        message(7, sender=FRIEND, subject="Dinner", body="Dinner at ours? quetzal", when=at("2026-09-06")),
    ]  # fmt: skip
    sent = [
        message(
            8, sender=ME, to=BOB, subject="[acme-app] kickoff", body="Kickoff agenda attached.",
            when=at("2026-09-02"), message_id="<kickoff@free.example>",
        ),
        message(9, sender=ME, to=BOB, subject="[acme-site] [update] sprint 2 demo",
                body="Demo recording.", when=at("2026-09-20")),
        message(10, sender=ME, to=EVE, subject="[update] weekly report", body="Done this week.",
                when=at("2026-09-08")),
    ]  # fmt: skip
    for raw in inbox:
        server.append("alice", "INBOX", raw)
    for raw in sent:
        server.append("alice", "Sent", raw)
    set_me(home)
    add_imap_account(home, server)
    home.ok("sync")
    return home


def test_flags_at_four_dates(scenario: CorrlogHome) -> None:
    """Exactly the expected flags, including stale-then-cleared and a paused contract that never flags."""
    assert flags_at(scenario, "2026-09-09T12:00:00+00:00") == set()
    assert flags_at(scenario, "2026-09-16T12:00:00+00:00") == {
        ("acme-site", "stale"),
        ("globex-ops", "stale"),
        ("globex-ops", "client-silent"),
    }
    assert flags_at(scenario, "2026-09-22T12:00:00+00:00") == {
        ("acme-app", "client-silent"),
        ("globex-ops", "stale"),
        ("globex-ops", "client-silent"),
    }
    assert flags_at(scenario, "2026-10-08T12:00:00+00:00") == {
        ("acme-site", "stale"),
        ("acme-app", "stale"),
        ("acme-app", "client-silent"),
        ("globex-ops", "stale"),
    }


def test_reply_in_a_tagged_thread_links_by_thread(scenario: CorrlogHome) -> None:
    """Bob's untagged reply (fetched before the tagged kickoff in Sent) joins acme-app by thread."""
    hits = json.loads(scenario.ok("search", "subject:kickoff", "--format", "json").out)
    by_subject = {h["subject"]: h for h in hits}
    assert by_subject["Re: kickoff"]["contract"] == "acme-app"
    reply_id = by_subject["Re: kickoff"]["id"]
    shown = json.loads(scenario.ok("show", str(reply_id), "--format", "json").out)
    assert shown["link_rule"] == "thread"


def test_personal_mail_appears_nowhere(scenario: CorrlogHome) -> None:
    """The friend's dinner invitation is in no search result, contract or flag."""
    assert scenario.ok("search", "quetzal", "--format", "ids").out == ""
    everything = json.loads(scenario.ok("search", "*", "--limit", "500", "--format", "json").out)
    assert FRIEND not in json.dumps(everything)
    assert FRIEND not in scenario.ok("contracts", "--format", "json").out


def test_contracts_json_has_the_documented_fields(scenario: CorrlogHome) -> None:
    """`contracts --format json` rows carry the documented keys and values."""
    rows = json.loads(
        scenario.ok("contracts", "--now", "2026-09-22T12:00:00+00:00", "--format", "json").out
    )
    site = next(r for r in rows if r["id"] == "acme-site")
    assert site == {
        "id": "acme-site",
        "client": "Acme",
        "title": "Acme agreement",
        "status": "active",
        "interval_days": 7,
        "last_update": "2026-09-20T10:00:00+00:00",
        "days_since_update": 2,
        "open_flags": [],
    }
    assert next(r for r in rows if r["id"] == "initech")["status"] == "paused"


def test_manual_link_survives_reindex(scenario: CorrlogHome) -> None:
    """`link` files an item by hand; the link is a ledger event and survives reindex."""
    (hit,) = json.loads(scenario.ok("search", "subject:photos", "--format", "json").out)
    scenario.ok("link", str(hit["id"]), "acme-app")
    scenario.ok("reindex")
    (after,) = json.loads(scenario.ok("search", "subject:photos", "--format", "json").out)
    assert after["contract"] == "acme-app"
    assert [e["record"] for e in ledger_events(scenario, "link")] == [hit["id"]]


def test_snooze_hides_until_its_time_then_the_flag_returns(home: CorrlogHome) -> None:
    """A snoozed flag is hidden, shows with --all, and is back once the snooze ends; all in the ledger."""
    home.note("c.md", agreement("solo", "Solo", '["@solo.example"]', "1d"))
    home.config.write_text(
        home.config.read_text().replace("[notes]", '[flags]\nrenotify = "1s"\n\n[notes]')
    )
    home.ok("sync")
    assert ("solo", "stale") in {
        (r["contract"], r["flag"]) for r in json.loads(home.ok("flags", "--format", "json").out)
    }
    home.ok("snooze", "solo", "2s", "--reason", "client on holiday")
    assert json.loads(home.ok("flags", "--format", "json").out) == []
    snoozed = json.loads(home.ok("flags", "--all", "--format", "json").out)
    assert all(r["snoozed_until"] for r in snoozed) and snoozed
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not ledger_events(home, "flag-notified"):
        home.ok("sync")
    assert json.loads(home.ok("flags", "--format", "json").out) != []
    assert ledger_events(home, "flag-raised")
    assert [e["reason"] for e in ledger_events(home, "snooze")] == ["client on holiday"]
    assert ledger_events(home, "flag-notified")


def test_email_notifier_sends_one_message_per_raised_flag(
    home: CorrlogHome, smtp_server: SmtpServer
) -> None:
    """Each raised flag is mailed once; an unchanged open flag is not re-sent within renotify."""
    home.note("c.md", agreement("solo", "Solo", '["@solo.example"]', "1d"))
    home.config.write_text(
        home.config.read_text()
        + f'\n[notify.email]\nhost = "127.0.0.1"\nport = {smtp_server.port}\ntls = "none"\n'
        f'username = "{USER}"\npassword = "{PASSWORD}"\nfrom = "corrlog@free.example"\nto = ["{ME}"]\n'
    )
    first = home.run("--log-format", "json", "-vv", "sync")
    assert first.code == 0, first.stderr
    raised = ledger_events(home, "flag-raised")
    assert len(raised) >= 1
    subjects = sorted(str(m["Subject"]) for m in smtp_server.inbox.messages)
    assert subjects == sorted(f"[corrlog] solo: {e['flag']}" for e in raised)
    second = home.run("--log-format", "json", "-vv", "sync")
    assert len(smtp_server.inbox.messages) == len(raised)
    assert PASSWORD not in first.stderr + first.out + second.stderr + second.out
