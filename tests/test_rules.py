"""Linking notes to contracts and milestones; contracts declared by agreement notes."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta, timezone

import pytest

from corrlog.model import Contract, ContractStatus, Escrow, Milestone
from corrlog.parse.note import Note, parse_note
from corrlog.rules.contracts import Conflict, contract_from_note, merge_contracts
from corrlog.rules.link import UNLINKED, Link, find_milestone, link_note

TZ = timezone(timedelta(hours=-5))

ACME = Contract(
    id="acme-site",
    client="Acme Corp",
    emails=("bob@acme.example",),
    milestones=(
        Milestone(id="m1", name="Design"),
        Milestone(id="m2", name="Build Phase"),
    ),
    defined_by="notes:main:acme-site/agreement.md",
)
GLOBEX = Contract(id="globex", client="Globex", defined_by="notes:main:globex.md")
CONTRACTS = {ACME.id: ACME, GLOBEX.id: GLOBEX}


def note(raw: str, name: str = "agreement") -> Note:
    """A parsed note in a fixed time zone."""
    return parse_note(raw.encode(), name=name, tz=TZ)


# link_note


def test_explicit_contract_wins_over_folder() -> None:
    """A front matter `contract:` beats the folder the note is in."""
    link = link_note(
        contract_id="globex", client=None, folder="acme-site", contracts=CONTRACTS, text=""
    )
    assert Link(client="Globex", contract="globex", rule="explicit") == link


def test_explicit_unknown_contract_kept() -> None:
    """An explicit contract that no agreement defines is kept, without a client or milestone."""
    link = link_note(
        contract_id="newco", client=None, folder=None, contracts=CONTRACTS, text="Design"
    )
    assert Link(client=None, contract="newco", rule="explicit") == link


def test_explicit_client_beats_contract_client() -> None:
    """A front matter `client:` beats the client of the contract."""
    link = link_note(
        contract_id="acme-site", client="Acme GmbH", folder=None, contracts=CONTRACTS, text=""
    )
    assert Link(client="Acme GmbH", contract="acme-site", rule="explicit") == link


def test_folder_links_to_known_contract() -> None:
    """A note in a folder named after a known contract is linked to it, client included."""
    link = link_note(
        contract_id=None, client=None, folder="acme-site", contracts=CONTRACTS, text=""
    )
    assert Link(client="Acme Corp", contract="acme-site", rule="folder") == link


def test_folder_with_explicit_client() -> None:
    """A front matter client is kept when the contract comes from the folder."""
    link = link_note(
        contract_id=None, client="Acme GmbH", folder="acme-site", contracts=CONTRACTS, text=""
    )
    assert Link(client="Acme GmbH", contract="acme-site", rule="folder") == link


def test_unknown_folder_does_not_link() -> None:
    """A folder that is not a known contract id links nothing."""
    assert UNLINKED == link_note(
        contract_id=None, client=None, folder="misc", contracts=CONTRACTS, text="Design"
    )


def test_client_only() -> None:
    """A note naming only a client is linked to that client alone."""
    link = link_note(
        contract_id=None, client="Initech", folder="misc", contracts=CONTRACTS, text=""
    )
    assert Link(client="Initech", rule="explicit") == link


def test_milestone_found_through_folder_link() -> None:
    """The milestone named in the text is added to a folder link."""
    link = link_note(
        contract_id=None,
        client=None,
        folder="acme-site",
        contracts=CONTRACTS,
        text="Sent the design mockups.",
    )
    assert Link(client="Acme Corp", contract="acme-site", milestone="m1", rule="folder") == link


def test_milestone_found_through_explicit_link() -> None:
    """The milestone named in the text is added to an explicit link."""
    link = link_note(
        contract_id="acme-site", client=None, folder=None, contracts=CONTRACTS, text="M2 started"
    )
    assert "m2" == link.milestone


# find_milestone


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Finished the design today.", "m1"),
        ("DESIGN approved", "m1"),
        ("m1 is done", "m1"),
        ("(m1) done", "m1"),
        ("m1-final uploaded", "m1"),
        ("Design (m1) approved", "m1"),
        ("the build phase starts", "m2"),
        ("Build started", None),
        ("Redesign requested", None),
        ("designer hired", None),
        ("m10 and m11", None),
        ("Design done, Build Phase next", None),
        ("m1 and m2 both invoiced", None),
        ("", None),
    ],
)
def test_find_milestone(text: str, expected: str | None) -> None:
    """A milestone matches by id or name as whole words, case-insensitively, only if unique."""
    assert expected == find_milestone(ACME, text)


def test_find_milestone_name_across_line_break() -> None:
    """A milestone name wrapped onto the next line still matches."""
    assert "m2" == find_milestone(ACME, "We agreed that the Build\nPhase starts Monday.")


def test_find_milestone_without_milestones() -> None:
    """A contract without milestones never matches."""
    assert None is find_milestone(GLOBEX, "Design")


def test_find_milestone_with_regex_characters() -> None:
    """Milestone names with regex characters are matched literally."""
    contract = dataclasses.replace(ACME, milestones=(Milestone(id="c++", name="Phase 1.0 (beta)"),))
    assert "c++" == find_milestone(contract, "shipped Phase 1.0 (beta) today")
    assert None is find_milestone(contract, "shipped Phase 1x0 (beta) today")


# contract_from_note


AGREEMENT = """---
type: agreement
contract: acme-site
client: Acme Corp
emails: [Bob@Acme.Example, "@acme.example"]
interval: 5d
start: 2026-11-01
status: paused
milestones:
  - {id: m1, name: Design, amount: 1500, currency: EUR, escrow: funded}
---
# Acme website agreement
"""


def test_contract_from_agreement_note() -> None:
    """An agreement note declares a contract with all its fields."""
    contract = contract_from_note(note(AGREEMENT), folder_contract=None, defined_by="notes:a.md")
    assert (
        Contract(
            id="acme-site",
            client="Acme Corp",
            title="Acme website agreement",
            emails=("bob@acme.example", "@acme.example"),
            interval=timedelta(days=5),
            start=date(2026, 11, 1),
            status=ContractStatus.PAUSED,
            milestones=(
                Milestone(
                    id="m1", name="Design", amount=1500.0, currency="EUR", escrow=Escrow.FUNDED
                ),
            ),
            defined_by="notes:a.md",
        )
        == contract
    )


@pytest.mark.parametrize("kind", ["update", "note", None])
def test_only_agreements_declare_contracts(kind: str | None) -> None:
    """Update notes, plain notes and notes without a type declare no contract."""
    front = f"type: {kind}\n" if kind else ""
    parsed = note(f"---\n{front}contract: acme-site\n---\nbody")
    assert None is contract_from_note(parsed, folder_contract="acme-site", defined_by="x")


def test_contract_id_from_front_matter_beats_folder() -> None:
    """The front matter contract id wins over the folder name."""
    parsed = note("---\ntype: agreement\ncontract: acme-site\n---\n")
    contract = contract_from_note(parsed, folder_contract="other", defined_by="x")
    assert contract is not None
    assert "acme-site" == contract.id


def test_contract_id_from_folder() -> None:
    """Without a front matter id, the folder name is the id (and the client by default)."""
    parsed = note("---\ntype: agreement\n---\n")
    contract = contract_from_note(parsed, folder_contract="globex", defined_by="x")
    assert contract is not None
    assert ("globex", "globex") == (contract.id, contract.client)


def test_agreement_without_id_declares_nothing() -> None:
    """An agreement with neither a front matter id nor a folder declares no contract."""
    parsed = note("---\ntype: agreement\ncontract: '  '\n---\n")
    assert None is contract_from_note(parsed, folder_contract=None, defined_by="x")


def test_start_falls_back_to_note_date() -> None:
    """Without `start`, the contract starts on the note's date (in the note's time zone)."""
    parsed = note("---\ntype: agreement\ncontract: c\ndate: 2026-03-01T23:30:00\n---\n")
    contract = contract_from_note(parsed, folder_contract=None, defined_by="x")
    assert contract is not None
    assert date(2026, 3, 1) == contract.start


def test_start_without_any_date() -> None:
    """Without `start` or `date`, the start is unknown."""
    contract = contract_from_note(
        note("---\ntype: agreement\ncontract: c\n---\n"), folder_contract=None, defined_by="x"
    )
    assert contract is not None
    assert None is contract.start


# merge_contracts


def test_merge_identical_definitions() -> None:
    """Two identical definitions of one id merge without a conflict; the first by origin wins."""
    copy = dataclasses.replace(ACME, title="Copy", defined_by="notes:main:zz-copy.md")
    merged, conflicts = merge_contracts([copy, ACME, GLOBEX])
    assert {"acme-site": ACME, "globex": GLOBEX} == merged
    assert [] == conflicts


@pytest.mark.parametrize(
    "change",
    [
        {"client": "Acme Inc"},
        {"emails": ()},
        {"interval": timedelta(days=3)},
        {"start": date(2026, 1, 1)},
        {"status": ContractStatus.COMPLETED},
        {"milestones": ()},
    ],
)
def test_merge_reports_conflict(change: dict[str, object]) -> None:
    """Two differing definitions of one id are a conflict naming both; the first one is kept."""
    other = dataclasses.replace(ACME, defined_by="notes:main:zz-other.md", **change)
    merged, conflicts = merge_contracts([other, ACME])
    assert {"acme-site": ACME} == merged
    assert [Conflict("acme-site", ACME.defined_by, "notes:main:zz-other.md")] == conflicts


def test_merge_empty() -> None:
    """No definitions give no contracts and no conflicts."""
    assert ({}, []) == merge_contracts([])
