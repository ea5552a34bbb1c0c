"""The foundation slice end to end through the real CLI: init, notes, sync, search, show, verify."""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest

from support.cli import CorrlogHome

AGREEMENT = """---
type: agreement
contract: acme-site
client: Acme Corp
emails: [bob@acme.example, "@acme.example"]
interval: 5d
start: 2026-11-01
milestones:
  - {id: m1, name: Design, amount: 1500, currency: EUR, due: 2026-12-01, escrow: funded}
  - {id: m2, name: Build, amount: 3000, currency: EUR, due: 2027-01-15}
---
# Acme website agreement

Scope: five pages with zebracorn illustrations. Rate agreed at 80 EUR per hour.
"""

UPDATE = """---
type: update
date: 2026-11-20T16:30:00+01:00
---
# Sprint 1 demo

Delivered the Design mockups; waiting for quokka feedback.
"""

JSON_FIELDS = {
    "id", "kind", "source", "origin", "direction", "client", "contract", "date",
    "subject", "from", "to", "snippet", "score",
}  # fmt: skip


def search_json(home: CorrlogHome, *args: str) -> list[dict[str, object]]:
    """Run a search with --format json and decode it."""
    result = home.ok("search", *args, "--format", "json")
    data = json.loads(result.out)
    assert isinstance(data, list)
    return data


def ledger_count(home: CorrlogHome) -> int:
    """How many ledger entries the data dir holds."""
    with sqlite3.connect(home.data / "corrlog.db") as conn:
        return int(conn.execute("SELECT COUNT(*) FROM ledger").fetchone()[0])


@pytest.fixture
def synced(home: CorrlogHome) -> CorrlogHome:
    """A home with an agreement note and an update note in the contract's sub-folder, synced."""
    home.note("acme/agreement.md", AGREEMENT)
    home.note("acme-site/sprint-1.md", UPDATE)
    result = home.ok("sync")
    assert "2 archived" in result.out
    return home


def test_search_finds_notes_by_word_contract_and_kind(synced: CorrlogHome) -> None:
    """Both notes are found by a body word, by contract: and by kind:."""
    assert [h["subject"] for h in search_json(synced, "zebracorn")] == ["Acme website agreement"]
    assert [h["subject"] for h in search_json(synced, "quokka")] == ["Sprint 1 demo"]
    by_contract = search_json(synced, "contract:acme-site")
    assert {h["subject"] for h in by_contract} == {"Acme website agreement", "Sprint 1 demo"}
    assert [h["kind"] for h in search_json(synced, "kind:update")] == ["update"]
    assert [h["kind"] for h in search_json(synced, "kind:agreement")] == ["agreement"]


def test_json_output_has_the_documented_fields(synced: CorrlogHome) -> None:
    """Each JSON element carries the documented keys with the right values."""
    (hit,) = search_json(synced, "quokka")
    assert JSON_FIELDS <= set(hit)
    assert hit["source"] == "notes"
    assert hit["origin"] == str(synced.notes / "acme-site" / "sprint-1.md")
    assert hit["direction"] == "internal"
    assert (hit["client"], hit["contract"], hit["kind"]) == ("Acme Corp", "acme-site", "update")
    assert hit["date"] == "2026-11-20T16:30:00+01:00"
    assert "quokka" in str(hit["snippet"])
    assert isinstance(hit["score"], float)


def test_ids_format_prints_one_id_per_line(synced: CorrlogHome) -> None:
    """--format ids prints exactly the ids JSON reports."""
    ids = synced.ok("search", "contract:acme-site", "--format", "ids").out.split()
    assert sorted(ids) == sorted(str(h["id"]) for h in search_json(synced, "contract:acme-site"))


def test_show_raw_prints_the_exact_bytes(synced: CorrlogHome) -> None:
    """`show --raw` returns the note revision byte for byte."""
    (hit,) = search_json(synced, "zebracorn")
    assert synced.ok("show", str(hit["id"]), "--raw").stdout == AGREEMENT.encode()


def test_verify_passes_then_names_a_changed_object(synced: CorrlogHome) -> None:
    """verify passes on a clean archive and fails naming an object with one byte changed."""
    assert synced.ok("verify").out.startswith("ok:")
    (hit,) = search_json(synced, "zebracorn")
    sha = str(hit["sha256"])
    obj = synced.data / "archive" / sha[:2] / sha[2:]
    data = bytearray(obj.read_bytes())
    data[10] ^= 0x01
    obj.chmod(0o600)
    obj.write_bytes(bytes(data))
    result = synced.run("verify")
    assert result.code == 1
    assert f"archived object {sha}" in result.out
    assert "corrupt" in result.out


def test_verify_names_an_altered_ledger_row(synced: CorrlogHome) -> None:
    """An edited ledger row (trigger dropped, as an attacker would) is named by verify."""
    with sqlite3.connect(synced.data / "corrlog.db") as conn:
        conn.execute("DROP TRIGGER ledger_no_update")
        conn.execute("UPDATE ledger SET time = '2020-01-01T00:00:00.000000+00:00' WHERE seq = 2")
    result = synced.run("verify")
    assert result.code == 1
    assert "ledger entry 2: contents do not match its hash" in result.out
    assert "ledger entry 1:" not in result.out


def test_ledger_refuses_updates_without_tampering(synced: CorrlogHome) -> None:
    """The ledger table itself rejects UPDATE and DELETE."""
    with sqlite3.connect(synced.data / "corrlog.db") as conn:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("UPDATE ledger SET event = 'x' WHERE seq = 1")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("DELETE FROM ledger WHERE seq = 1")


def test_resync_adds_nothing_and_an_edit_adds_one_entry(synced: CorrlogHome) -> None:
    """Nothing changed: no ledger entry; one note edited: exactly one more."""
    before = ledger_count(synced)
    assert "0 archived" in synced.ok("sync").out
    assert ledger_count(synced) == before
    path = synced.notes / "acme-site" / "sprint-1.md"
    path.write_text(UPDATE + "\nAlso shipped the pangolin page.\n", encoding="utf-8")
    assert "1 archived" in synced.ok("sync").out
    assert ledger_count(synced) == before + 1
    assert [h["subject"] for h in search_json(synced, "pangolin")] == ["Sprint 1 demo"]
    assert synced.ok("verify").out.startswith("ok:")


def test_broken_notes_are_skipped_and_the_rest_indexed(home: CorrlogHome) -> None:
    """Invalid YAML, non-UTF-8 and a binary .md are each logged with their path; others indexed."""
    home.note("bad-yaml.md", "---\ntype: [agreement\n---\nbody\n")
    home.note("latin1.md", "caf\xe9 ocelot\n".encode("latin-1"))
    home.note("binary.md", bytes(range(256)) * 4)
    home.note("good.md", "# Fine\nThe axolotl note.\n")
    result = home.run("--log-format", "json", "sync")
    assert result.code == 0, result.stderr
    assert "1 archived" in result.out and "3 skipped" in result.out
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    skipped = {
        line["path"].rsplit("/", 1)[1]: line["reason"]
        for line in lines
        if "skipped" in line["event"]
    }
    assert set(skipped) == {"bad-yaml.md", "latin1.md", "binary.md"}
    assert "YAML" in skipped["bad-yaml.md"]
    assert "UTF-8" in skipped["latin1.md"]
    assert "NUL" in skipped["binary.md"]
    assert "Traceback" not in result.stderr
    assert [h["subject"] for h in search_json(home, "axolotl")] == ["Fine"]


def test_reindex_after_deleting_the_index_gives_identical_results(synced: CorrlogHome) -> None:
    """Search results are the same before and after rebuilding a deleted index."""
    queries = ["zebracorn", "contract:acme-site", "kind:update", "design", "*"]
    before = {q: search_json(synced, q, "--sort", "date") for q in queries}
    shutil.rmtree(synced.data / "index")
    assert synced.run("search", "zebracorn").code != 0
    assert "reindexed 2 records" in synced.ok("reindex").out
    after = {q: search_json(synced, q, "--sort", "date") for q in queries}
    assert after == before


def test_deleted_note_leaves_the_index_but_stays_archived(synced: CorrlogHome) -> None:
    """Deleting a note removes it from search, records a ledger event and keeps its bytes."""
    (hit,) = search_json(synced, "quokka")
    (synced.notes / "acme-site" / "sprint-1.md").unlink()
    assert "1 deleted" in synced.ok("sync").out
    assert search_json(synced, "quokka") == []
    sha = str(hit["sha256"])
    assert (synced.data / "archive" / sha[:2] / sha[2:]).exists()
    assert synced.ok("verify").out.startswith("ok:")
