"""Pure rules for mail: the privacy filter and linking by tag, thread and participants."""

from __future__ import annotations

from datetime import date

from corrlog.model import Contract, ContractStatus
from corrlog.rules.capture import CapturePolicy, subject_tags
from corrlog.rules.link import Link, link_mail

ACME_SITE = Contract(
    id="acme-site", client="Acme", emails=("@acme.example",), start=date(2026, 1, 1)
)
ACME_APP = Contract(id="acme-app", client="Acme", emails=("@acme.example",), start=date(2026, 6, 1))
GLOBEX = Contract(id="globex", client="Globex", emails=("eve@globex.example",))
CONTRACTS = {c.id: c for c in (ACME_SITE, ACME_APP, GLOBEX)}


def link(**overrides: object) -> Link:
    """link_mail with defaults for a plain message."""
    args: dict[str, object] = {
        "subject": "Hello",
        "participants": ["me@free.example"],
        "thread_refs": (),
        "when": date(2026, 3, 1),
        "contracts": CONTRACTS,
        "thread_links": {},
        "text": "",
    }
    args.update(overrides)
    return link_mail(**args)  # type: ignore[arg-type]


def test_policy_matches_addresses_domains_and_subdomains() -> None:
    """An exact address, an @domain and its subdomains match; look-alike domains do not."""
    policy = CapturePolicy.from_contracts(CONTRACTS.values())
    assert policy.matches_address("Eve@Globex.example")
    assert policy.matches_address("bob@acme.example")
    assert policy.matches_address("bob@mail.acme.example")
    assert not policy.matches_address("bob@notacme.example")
    assert not policy.matches_address("other@globex.example")


def test_policy_captures_by_tag_or_participant_only() -> None:
    """Personal mail is not captured; a contract tag or a client participant is."""
    policy = CapturePolicy.from_contracts(CONTRACTS.values())
    assert not policy.captures(["pal@personal.example"], "Weekend")
    assert policy.captures(["pal@personal.example"], "Re: [globex] invoice")
    assert policy.captures(["pal@personal.example", "eve@globex.example"], "Hi")
    assert CapturePolicy(capture_all=True).captures([], "")


def test_subject_tags_are_lower_cased_in_order() -> None:
    """Tags come back lower-cased, in order."""
    assert subject_tags("Re: [Acme-Site] [update] demo") == ["acme-site", "update"]


def test_subject_tag_wins() -> None:
    """A [contract-id] tag links explicitly even when participants say otherwise."""
    found = link(subject="[acme-app] spec", participants=["eve@globex.example"])
    assert (found.contract, found.rule) == ("acme-app", "explicit")


def test_thread_rule_follows_a_linked_parent() -> None:
    """A reply whose parent is linked gets the parent's contract."""
    parents = {"<p1@x>": Link("Acme", "acme-app", None, "explicit")}
    found = link(thread_refs=("<p1@x>",), thread_links=parents, participants=["bob@acme.example"])
    assert (found.contract, found.rule) == ("acme-app", "thread")


def test_participants_with_one_active_contract_link_to_it() -> None:
    """Before acme-app starts, Acme has one active contract: link to it."""
    found = link(participants=["bob@acme.example"], when=date(2026, 3, 1))
    assert (found.contract, found.rule) == ("acme-site", "participants")


def test_participants_with_two_active_contracts_link_the_client_only() -> None:
    """When the client has two active contracts, only the client is linked."""
    found = link(participants=["bob@acme.example"], when=date(2026, 7, 1))
    assert (found.client, found.contract, found.rule) == ("Acme", None, "participants-client")


def test_paused_contracts_do_not_compete() -> None:
    """A paused contract is not active, so the other one gets the link."""
    paused = Contract(
        id="acme-app", client="Acme", emails=("@acme.example",), status=ContractStatus.PAUSED
    )
    found = link(
        participants=["bob@acme.example"],
        when=date(2026, 7, 1),
        contracts={**CONTRACTS, "acme-app": paused},
    )
    assert found.contract == "acme-site"


def test_unknown_participants_are_unlinked() -> None:
    """Nobody known: no link."""
    assert link() == Link()
