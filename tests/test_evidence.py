"""Evidence packs: exactly one contract's items, checkable with sha256sum, escaped, verifiable."""

from __future__ import annotations

import email.utils
import hashlib
import itertools
import json
import re
import shutil
import subprocess
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

import html5lib
import pytest

from corrlog.evidence import verify_pack
from corrlog.ledger import GENESIS, entry_hash
from support.cli import CorrlogHome
from support.mail import FRIEND, ME, message, set_me, write_maildir

BOB, EVE = "bob@acme.example", "eve@globex.example"
HOSTILE_SUBJECT = "<script>alert(1)</script>"
HOSTILE_BODY = "<img src=x onerror=alert(2)> We agree to the price of EUR 3000."

AGREEMENT_V1 = """---
type: agreement
contract: acme-site
client: Acme Corp
title: Acme website
emails: ["@acme.example"]
start: 2026-11-01
date: 2026-11-02T09:00:00+00:00
milestones:
  - {id: m1, name: Design, amount: 1500, currency: EUR, due: 2026-12-01, escrow: funded, status: open}
---
# Acme website agreement
Five pages.
"""
AGREEMENT_V2 = AGREEMENT_V1.replace(
    "status: open}", "status: submitted, since: 2026-11-20}"
).replace("Five pages.", "Five pages, two rounds of changes.")
UPDATE_NOTE = (
    "---\ntype: update\ndate: 2026-11-18T10:00:00+00:00\n---\n# Design delivered\nMockups sent.\n"
)
GLOBEX_NOTES = {
    "contracts/globex.md": "---\ntype: agreement\ncontract: globex-ops\nclient: Globex\n"
    "emails: [eve@globex.example]\nstart: 2026-11-01\ndate: 2026-11-01T09:00:00+00:00\n---\n"
    "# Globex agreement\n",
    "globex-ops/2026-11-19.md": "---\ntype: update\ndate: 2026-11-19T10:00:00+00:00\n---\n"
    "# Audit notes\nzebracorn findings.\n",
}
SECRETS = ("zebracorn", "quetzal", FRIEND, EVE, "globex", "Globex", "Dinner")


def at(moment: str) -> datetime:
    """A UTC moment of the scenario."""
    return datetime.fromisoformat(f"{moment}+00:00")


def with_attachment() -> bytes:
    """Bob's agreement mail with a hostile subject and body and a small attachment."""
    msg = EmailMessage()
    msg["From"], msg["To"] = BOB, ME
    msg["Subject"] = f"[acme-site] {HOSTILE_SUBJECT}"
    msg["Date"] = email.utils.format_datetime(at("2026-11-05T09:00:00"))
    msg["Message-ID"] = "<e1@acme.example>"
    msg.set_content(HOSTILE_BODY + "\n")
    msg.add_attachment(
        b"Scope: five pages.\n", maintype="text", subtype="plain", filename="terms.txt"
    )
    return bytes(msg)


ACME_MAIL = [
    with_attachment(),
    message(2, sender=ME, to=BOB, subject="[acme-site] [update] design mockups",
            body="Mockups attached.", when=at("2026-11-10T09:00:00"), message_id="<e2@free.example>"),
    message(3, sender=BOB, subject="Looks good", body="Thanks, looks good.",
            when=at("2026-11-25T09:00:00"), message_id="<e3@acme.example>"),
]  # fmt: skip
OTHER_MAIL = [
    message(4, sender=EVE, subject="Globex secret plans", body="zebracorn plans.",
            when=at("2026-11-12T09:00:00"), message_id="<e4@globex.example>"),
    message(5, sender=FRIEND, subject="Dinner", body="Dinner on Friday? quetzal",
            when=at("2026-11-13T09:00:00"), message_id="<e5@personal.example>"),
]  # fmt: skip


def sha(data: bytes | str) -> str:
    """The hex sha256 of bytes (or UTF-8 text)."""
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


EXPECTED = {
    sha(AGREEMENT_V1): "agreement note, first revision",
    sha(AGREEMENT_V2): "agreement note, second revision",
    sha(UPDATE_NOTE): "update note",
    **{sha(raw): "acme mail" for raw in ACME_MAIL},
}


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> CorrlogHome:
    """Two clients, an agreement note revised once (milestone submitted), mail of both, a friend."""
    home = CorrlogHome.create(tmp_path_factory.mktemp("evidence"))
    home.note("contracts/acme-site.md", AGREEMENT_V1)
    home.note("acme-site/2026-11-18.md", UPDATE_NOTE)
    for relative, text in GLOBEX_NOTES.items():
        home.note(relative, text)
    set_me(home)
    write_maildir(home.data / "maildir", ACME_MAIL + OTHER_MAIL)
    home.ok("sync")
    home.note("contracts/acme-site.md", AGREEMENT_V2)
    home.ok("sync")
    return home


@pytest.fixture(scope="module")
def pack(scenario: CorrlogHome, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The acme-site evidence pack (do not modify: copy it first)."""
    out = tmp_path_factory.mktemp("packs") / "acme-site"
    result = scenario.ok("export", "acme-site", "--out", str(out))
    assert "6 items" in result.out
    return out


def item_hashes(pack: Path) -> dict[str, str]:
    """sha256 named in each items/ file name -> the file name."""
    return {p.name.split("_", 1)[1].split(".")[0]: p.name for p in (pack / "items").iterdir()}


def copy_of(pack: Path, tmp_path: Path) -> Path:
    """A scratch copy of the pack."""
    return Path(shutil.copytree(pack, tmp_path / "pack"))


def test_pack_holds_exactly_the_contracts_items(pack: Path) -> None:
    """items/ is every byte version linked to acme-site (both note revisions), and nothing else."""
    found = item_hashes(pack)
    assert set(found) == set(EXPECTED)
    for digest, name in found.items():
        assert sha((pack / "items" / name).read_bytes()) == digest
    assert {Path(n).suffix for n in found.values()} == {".md", ".eml"}
    everything = "\n".join(
        p.read_text("utf-8", "replace") for p in sorted(pack.rglob("*")) if p.is_file()
    )
    leaked = [word for word in SECRETS if word in everything]
    assert leaked == []


def test_timeline_lists_each_item_once_in_date_order(pack: Path) -> None:
    """timeline.md names every item's sha256 exactly once, in date order, with the milestone change."""
    text = (pack / "timeline.md").read_text()
    listed = re.findall(r"^- sha256: ([0-9a-f]{64})$", text, re.M)
    assert sorted(listed) == sorted(EXPECTED)
    order = [EXPECTED[digest] for digest in listed]
    assert order == [
        "agreement note, first revision",
        "agreement note, second revision",
        "acme mail",
        "acme mail",
        "update note",
        "acme mail",
    ]
    assert "milestone 'Design' (m1) is now submitted" in text
    assert "Attachments: terms.txt" in text
    assert text.count("AGREEMENT - ") == 3


def test_timeline_html_is_valid_escaped_and_self_contained(pack: Path) -> None:
    """html5lib finds no error; hostile subject and body render as text; agreements highlighted."""
    page = (pack / "timeline.html").read_text()
    parser = html5lib.HTMLParser(strict=True)
    tree = parser.parse(page)
    assert parser.errors == []
    assert HOSTILE_SUBJECT not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page
    ns = {"h": "http://www.w3.org/1999/xhtml"}
    assert tree.findall(".//h:script", ns) == [] and tree.findall(".//h:img", ns) == []
    highlighted = [d for d in tree.iterfind(".//h:div", ns) if d.get("class") == "item agreement"]
    assert len(highlighted) == 3
    assert [a.get("href") for a in tree.iterfind(".//h:a", ns)] == [
        f"items/{name}" for name in sorted(item_hashes(pack).values())
    ]


def test_sha256sum_checks_the_pack_and_catches_one_changed_byte(pack: Path, tmp_path: Path) -> None:
    """`sha256sum -c` passes; after one byte of an item changes it fails, and so does verify --pack."""
    copy = copy_of(pack, tmp_path)
    good = subprocess.run(
        ["sha256sum", "-c", "manifest.sha256"], cwd=copy, capture_output=True, text=True
    )
    assert good.returncode == 0, good.stdout + good.stderr
    assert good.stdout.count(": OK") == len(EXPECTED) + 4
    name = item_hashes(copy)[sha(ACME_MAIL[0])]
    target = copy / "items" / name
    data = bytearray(target.read_bytes())
    data[-5] ^= 0x01
    target.write_bytes(bytes(data))
    bad = subprocess.run(
        ["sha256sum", "-c", "manifest.sha256"], cwd=copy, capture_output=True, text=True
    )
    assert bad.returncode == 1
    assert f"items/{name}: FAILED" in bad.stdout
    home = CorrlogHome(tmp_path, tmp_path / "none.toml", tmp_path, tmp_path)
    result = home.run("verify", "--pack", str(copy), config=False)
    assert result.code == 1
    assert f"items/{name}: content does not match manifest.sha256" in result.out
    assert result.out.rstrip().splitlines()[-1].startswith("FAILED:")


def test_verify_pack_passes_on_an_untouched_pack(scenario: CorrlogHome, pack: Path) -> None:
    """`corrlog verify --pack` on a fresh pack exits 0 with a summary."""
    result = scenario.ok("verify", "--pack", str(pack))
    assert result.out.startswith(f"ok: evidence pack {pack}: {len(EXPECTED) + 4} files match")


def test_verify_pack_checks_the_ledger_excerpt_and_extra_files(pack: Path, tmp_path: Path) -> None:
    """An edited ledger line fails its own hash even with a re-made manifest; added files are named."""
    copy = copy_of(pack, tmp_path)
    ledger = copy / "ledger.jsonl"
    lines = ledger.read_text().splitlines()
    first = json.loads(lines[0])
    first["time"] = "2026-01-01T00:00:00.000000+00:00"
    lines[0] = json.dumps(first)
    ledger.write_text("\n".join(lines) + "\n")
    manifest = copy / "manifest.sha256"
    manifest.write_text(
        re.sub(
            r"^[0-9a-f]{64}(  ledger\.jsonl)$",
            lambda m: sha(ledger.read_bytes()) + m.group(1),
            manifest.read_text(),
            flags=re.M,
        )
    )
    (copy / "items" / "extra.txt").write_text("added later")
    report = verify_pack(copy)
    assert not report.ok
    assert report.problems == [
        "items/extra.txt: not listed in manifest.sha256 (added after the export)",
        f"ledger.jsonl line 1 (entry {first['seq']}): contents do not match its hash (entry altered)",
        "items/extra.txt: not named <date>_<sha256>.<ext> as corrlog writes",
    ]


def test_ledger_excerpt_records_every_item_and_the_contract_events(pack: Path) -> None:
    """Each line carries its chain hashes, each item has an ingest entry, milestone events are in."""
    entries = [json.loads(line) for line in (pack / "ledger.jsonl").read_text().splitlines()]
    for e in entries:
        fields = [e[k] for k in ("seq", "time", "event", "sha256", "origin", "detail", "prev_hash")]
        assert e["hash"] == entry_hash(*fields)
    for before, after in itertools.pairwise(entries):
        assert after["seq"] > before["seq"]
        if after["seq"] == before["seq"] + 1:
            assert after["prev_hash"] == before["hash"]
    assert entries[0]["seq"] > 1 or entries[0]["prev_hash"] == GENESIS
    ingested = {e["sha256"] for e in entries if e["event"] == "ingest"}
    assert ingested == set(EXPECTED)
    events = [(e["event"], json.loads(e["detail"]).get("status")) for e in entries]
    assert ("milestone", "submitted") in events
    assert [e for e, _ in events].count("contract") == 2


def test_readme_says_how_to_verify_in_plain_words(pack: Path) -> None:
    """README.txt names the sha256sum command, the ledger rule and corrlog verify --pack."""
    text = (pack / "README.txt").read_text()
    assert "sha256sum -c manifest.sha256" in text
    assert "[seq, time, event, sha256, origin, detail, prev_hash]" in text
    assert "corrlog verify --pack" in text


def test_since_and_until_select_items_by_date(scenario: CorrlogHome, tmp_path: Path) -> None:
    """--since/--until keep only the items dated inside the period (inclusive days)."""
    out = tmp_path / "window"
    scenario.ok(
        "export", "acme-site", "--out", str(out), "--since", "2026-11-09", "--until", "2026-11-19"
    )
    assert set(item_hashes(out)) == {sha(ACME_MAIL[1]), sha(UPDATE_NOTE)}
    assert scenario.ok("verify", "--pack", str(out)).code == 0


def test_export_refuses_a_non_empty_folder_and_unknown_contracts(
    scenario: CorrlogHome, tmp_path: Path
) -> None:
    """A folder with anything in it is left alone (exit 2); an unknown contract is exit 2 too."""
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    result = scenario.run("export", "acme-site", "--out", str(busy))
    assert result.code == 2
    assert "is not empty" in result.stderr
    assert [p.name for p in busy.iterdir()] == ["keep.txt"]
    unknown = scenario.run("export", "nope", "--out", str(tmp_path / "new"))
    assert unknown.code == 2 and "no contract 'nope'" in unknown.stderr
    assert not (tmp_path / "new").exists()


def test_manifest_is_in_sha256sum_format_with_relative_paths(pack: Path) -> None:
    """One `<sha256>  <relative path>` line per file, sorted; items named <date>_<sha256>.<ext>."""
    lines = (pack / "manifest.sha256").read_text().splitlines()
    assert all(re.fullmatch(r"[0-9a-f]{64}  [\w./-]+", line) for line in lines)
    names = [line.split("  ", 1)[1] for line in lines]
    assert names == sorted(names)
    files = sorted(p.relative_to(pack).as_posix() for p in pack.rglob("*") if p.is_file())
    assert sorted([*names, "manifest.sha256"]) == files
    items = [n for n in names if n.startswith("items/")]
    assert all(re.fullmatch(r"items/\d{4}-\d\d-\d\d_[0-9a-f]{64}\.(eml|md)", n) for n in items)


def test_export_into_an_empty_folder_works_and_a_failure_leaves_nothing(
    scenario: CorrlogHome, tmp_path: Path
) -> None:
    """An existing empty folder is filled; a missing archived object fails cleanly (no half pack)."""
    empty = tmp_path / "empty"
    empty.mkdir()
    scenario.ok("export", "acme-site", "--out", str(empty))
    assert (empty / "manifest.sha256").is_file()
    digest = sha(UPDATE_NOTE)
    stored = scenario.data / "archive" / digest[:2] / digest[2:]
    hidden = stored.with_name(stored.name + ".away")
    stored.rename(hidden)
    try:
        failed = scenario.run("export", "acme-site", "--out", str(tmp_path / "broken"))
    finally:
        hidden.rename(stored)
    assert failed.code == 1
    assert f"archived object {digest} is missing" in failed.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]
