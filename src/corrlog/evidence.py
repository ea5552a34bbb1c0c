"""Evidence packs: one contract's items, timeline, ledger excerpt and a sha256sum manifest."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, tzinfo
from pathlib import Path, PurePosixPath
from typing import Any

from corrlog.archive import Archive, sha256_hex
from corrlog.errors import CorrlogError, IntegrityError, RecordError, UsageError
from corrlog.ingest import NoteItem, mtime_datetime, note_record, parse_note_item
from corrlog.ingest_mail import MailItem
from corrlog.ledger import GENESIS, Entry
from corrlog.model import Contract, Kind, Origin, Record, SourceKind
from corrlog.pipeline import Pipeline
from corrlog.render_digest import day_text, esc, local, money_text, page, span_text
from corrlog.state import row_origin

# Decisions where the issue is silent:
# - Items are the archived byte versions linked to the contract: each mail record's bytes
#   (plus any other copy of the same message whose bytes differ), and every archived revision
#   of a linked note that, parsed and linked with today's contracts, belongs to the contract
#   (the current revision follows the state's link, so a link made by hand counts). A
#   revision that once belonged to another contract is therefore never exported.
# - --since/--until select items and contract/milestone events by their date.
# - The ledger excerpt holds every entry naming an exported item plus the contract's
#   `contract`, `milestone` and `contract-removed` events in the period. It is not contiguous,
#   so verification checks each entry's own hash and the link between entries with
#   consecutive sequence numbers; README.txt records the ledger head at export time.

MANIFEST = "manifest.sha256"
LEDGER = "ledger.jsonl"
ITEMS = "items"
_MANIFEST_LINE = re.compile(r"([0-9a-fA-F]{64}) [ *](.+)")
_ITEM_NAME = re.compile(r"\d{4}-\d{2}-\d{2}_([0-9a-f]{64})\.[a-z]+")
_NOTE_SUFFIXES = (".md", ".markdown", ".txt")
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class PackItem:
    """One archived byte version in the pack: its parsed record and its file name in the pack."""

    record: Record
    filename: str
    revision: str | None = None
    archived: Entry | None = None

    @property
    def sha256(self) -> str:
        """The hash of the item's bytes."""
        return self.record.sha256


@dataclass(frozen=True, slots=True)
class ContractEvent:
    """A change of the contract's terms or of a milestone's status, from the ledger."""

    at: datetime
    seq: int
    text: str


@dataclass(frozen=True)
class Pack:
    """Everything an evidence pack shows, collected from the archive, state and ledger."""

    contract: Contract
    items: tuple[PackItem, ...]
    events: tuple[ContractEvent, ...]
    entries: tuple[Entry, ...]
    created: datetime
    head: Entry | None
    since: datetime | None = None
    until: datetime | None = None


# collecting ----------------------------------------------------------------------------------


def collect_pack(
    pipeline: Pipeline,
    contract: Contract,
    *,
    now: datetime,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Pack:
    """Gather a contract's items (re-parsed from the archive), its events and ledger entries."""
    conn = pipeline.session.conn
    rows = conn.execute(
        "SELECT * FROM records WHERE contract = ? AND indexed != -1 ORDER BY date, id",
        (contract.id,),
    ).fetchall()
    found: dict[str, PackItem] = {}
    for row in rows:
        versions = (
            _note_items(pipeline, row) if row["source"] == "notes" else _mail_items(pipeline, row)
        )
        for item in versions:
            if _in_period(item.record.date, since, until):
                found.setdefault(item.sha256, item)
    event_entries = [
        e for e in _contract_entries(conn, contract.id) if _in_period(_event_time(e), since, until)
    ]
    entries: dict[int, Entry] = {e.seq: e for e in event_entries}
    for sha, item in found.items():
        naming = pipeline.session.ledger.for_item(sha)
        entries.update((e.seq, e) for e in naming)
        found[sha] = replace(item, archived=naming[0] if naming else None)
    items = tuple(sorted(found.values(), key=_item_order))
    head = conn.execute("SELECT * FROM ledger ORDER BY seq DESC LIMIT 1").fetchone()
    return Pack(
        contract=contract,
        items=items,
        events=tuple(
            _describe_events(contract, _contract_entries(conn, contract.id), event_entries)
        ),
        entries=tuple(entries[seq] for seq in sorted(entries)),
        created=now,
        head=_entry(head) if head is not None else None,
        since=since,
        until=until,
    )


def _item_order(item: PackItem) -> tuple[datetime, int]:
    """By date; revisions of a note sharing a date in the order they were archived."""
    return (_utc(item.record.date), item.archived.seq if item.archived else 0)


def _mail_items(pipeline: Pipeline, row: sqlite3.Row) -> Iterator[PackItem]:
    """The message's record, plus any other copy of it whose bytes differ."""
    primary = pipeline.rebuild_doc(row).record
    yield PackItem(primary, _item_name(primary, ".eml", pipeline.tz))
    copies = pipeline.session.conn.execute(
        "SELECT origin, sha256 FROM origins WHERE record_id = ? AND sha256 != ? ORDER BY origin_key",
        (row["id"], row["sha256"]),
    )
    for copy in copies:
        raw = pipeline.session.archive.get(copy["sha256"])
        origin = Origin.from_json(json.loads(copy["origin"]))
        doc, *_ = pipeline.mail_doc(MailItem(raw, origin, primary.date))
        record = replace(
            doc.record,
            id=primary.id,
            client=primary.client,
            contract=primary.contract,
            milestone=primary.milestone,
            link_rule=primary.link_rule,
        )
        yield PackItem(record, _item_name(record, ".eml", pipeline.tz), "another copy")


def _note_items(pipeline: Pipeline, row: sqlite3.Row) -> Iterator[PackItem]:
    """Every archived revision of a linked note that belongs to this contract."""
    session, origin = pipeline.session, row_origin(row)
    suffix = PurePosixPath(origin.path or "").suffix.lower()
    ext = suffix if suffix in _NOTE_SUFFIXES else ".txt"
    revisions = session.conn.execute(
        "SELECT sha256, detail FROM ledger WHERE origin = ? AND event IN ('ingest', 'seen')"
        " AND sha256 IS NOT NULL ORDER BY seq",
        (origin.key(),),
    ).fetchall()
    shas = list(dict.fromkeys(r["sha256"] for r in revisions))
    details = {r["sha256"]: json.loads(r["detail"] or "{}") for r in revisions}
    if row["sha256"] not in shas:
        shas.append(row["sha256"])
    for number, sha in enumerate(shas, 1):
        label = f"revision {number} of {len(shas)}"
        if sha == row["sha256"]:
            record: Record | None = pipeline.rebuild_doc(row).record
        else:
            record = _earlier_revision(pipeline, origin, sha, details.get(sha, {}))
        if record is not None and record.contract == row["contract"]:
            yield PackItem(record, _item_name(record, ext, pipeline.tz), label)


def _earlier_revision(
    pipeline: Pipeline, origin: Origin, sha: str, detail: dict[str, Any]
) -> Record | None:
    item = NoteItem(
        raw=pipeline.session.archive.get(sha),
        root=origin.name,
        path=origin.path or "",
        mtime=mtime_datetime(int(detail.get("mtime_ns", 0))),
    )
    try:
        return note_record(item, parse_note_item(item, pipeline.tz), pipeline.contracts)
    except RecordError:
        return None


def _item_name(record: Record, ext: str, tz: tzinfo) -> str:
    return f"{ITEMS}/{day_text(record.date, tz)}_{record.sha256}{ext}"


def _contract_entries(conn: sqlite3.Connection, contract_id: str) -> list[Entry]:
    rows = conn.execute(
        "SELECT * FROM ledger WHERE event IN ('contract', 'milestone', 'contract-removed')"
        " AND json_extract(detail, '$.contract') = ? ORDER BY seq",
        (contract_id,),
    )
    return [_entry(row) for row in rows]


def _entry(row: sqlite3.Row) -> Entry:
    return Entry(*(row[k] for k in Entry.__slots__))


def _event_time(entry: Entry) -> datetime:
    at = entry.detail_json().get("at") if entry.event == "milestone" else None
    return datetime.fromisoformat(at or entry.time)


def _describe_events(
    contract: Contract, history: list[Entry], shown: list[Entry]
) -> Iterator[ContractEvent]:
    """Say in words what each shown contract event changed (compared with the one before)."""
    wanted = {e.seq for e in shown}
    names = {m.id: m.name for m in contract.milestones}
    terms: dict[str, Any] | None = None
    for entry in history:
        detail = entry.detail_json()
        text = ""
        if entry.event == "milestone":
            key = str(detail.get("milestone"))
            label = f"'{names[key]}' ({key})" if key in names else key
            text = f"milestone {label} is now {detail.get('status')}"
        elif entry.event == "contract-removed":
            text = "the contract is no longer declared in the notes or the config"
        elif entry.event == "contract":
            new = detail.get("terms") or {}
            text = _terms_text(terms, new)
            terms = new
        if entry.seq in wanted:
            yield ContractEvent(_event_time(entry), entry.seq, text)


def _terms_text(before: dict[str, Any] | None, after: dict[str, Any]) -> str:
    if before is None:
        milestones = ", ".join(_milestone_terms(m) for m in after.get("milestones", [])) or "none"
        return (
            f"contract terms recorded: client {after.get('client')}, status {after.get('status')}, "
            f"milestones: {milestones}"
        )
    changed = [key for key in sorted(after) if after.get(key) != before.get(key)]
    parts = []
    for key in changed:
        if key == "milestones":
            parts.append(
                "milestones now: "
                + (", ".join(_milestone_terms(m) for m in after["milestones"]) or "none")
            )
        else:
            parts.append(f"{key}: {before.get(key)} -> {after.get(key)}")
    return "contract terms changed: " + ("; ".join(parts) or "no visible change")


def _milestone_terms(m: dict[str, Any]) -> str:
    amount = money_text(m.get("amount"), m.get("currency"))
    bits = [b for b in (amount, f"due {m['due']}" if m.get("due") else "") if b]
    extra = f" ({', '.join(bits)})" if bits else ""
    return f"{m.get('id')} {m.get('name')}{extra}, {m.get('status')}, escrow {m.get('escrow')}"


def _stamp(moment: datetime, tz: tzinfo) -> str:
    """A moment with its UTC offset, as evidence should state it: `2026-11-24 14:30+05:30`."""
    return local(moment, tz).isoformat(sep=" ", timespec="minutes")


def _archived_text(item: PackItem, tz: tzinfo) -> str:
    if item.archived is None:
        return "not in the ledger"
    at = datetime.fromisoformat(item.archived.time)
    return f"{_stamp(at, tz)} (ledger entry {item.archived.seq})"


def _in_period(moment: datetime, since: datetime | None, until: datetime | None) -> bool:
    at = _utc(moment)
    return (since is None or at >= _utc(since)) and (until is None or at <= _utc(until))


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


# writing -------------------------------------------------------------------------------------


def write_pack(pack: Pack, archive: Archive, out: Path, tz: tzinfo) -> list[str]:
    """Write the pack into `out` (new or empty) all at once; return the files in the manifest.

    The files are written to a hidden folder next to `out`, which is renamed into place at
    the end, so a failure never leaves half a pack behind.
    """
    _check_target(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as exc:
        raise CorrlogError(f"cannot create the evidence pack at {out}: {exc.strerror}") from None
    try:
        hashes = _write_files(pack, archive, staging, tz)
        manifest = "".join(f"{hashes[name]}  {name}\n" for name in sorted(hashes))
        (staging / MANIFEST).write_text(manifest, encoding="utf-8")
        staging.replace(out)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise CorrlogError(f"cannot write the evidence pack to {out}: {exc.strerror}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return sorted(hashes)


def _write_files(pack: Pack, archive: Archive, root: Path, tz: tzinfo) -> dict[str, str]:
    """Write every file but the manifest; return relative path -> sha256."""
    (root / ITEMS).mkdir()
    hashes: dict[str, str] = {}
    for item in pack.items:
        data = archive.get(item.sha256)
        if sha256_hex(data) != item.sha256:
            raise IntegrityError(
                f"archived object {item.sha256} does not match its hash; run 'corrlog verify'"
            )
        (root / item.filename).write_bytes(data)
        hashes[item.filename] = item.sha256
    texts = {
        "timeline.md": render_timeline_md(pack, tz),
        "timeline.html": render_timeline_html(pack, tz),
        LEDGER: "".join(json.dumps(e.to_json(), ensure_ascii=False) + "\n" for e in pack.entries),
        "README.txt": readme_text(pack, tz),
    }
    for name, text in texts.items():
        data = text.encode("utf-8")
        (root / name).write_bytes(data)
        hashes[name] = sha256_hex(data)
    return hashes


def _check_target(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} is a file; give a new or empty folder for the evidence pack")
    if out.is_dir() and any(out.iterdir()):
        raise UsageError(
            f"{out} is not empty; give a new or empty folder so nothing is mixed into the pack"
        )


# rendering -----------------------------------------------------------------------------------


def _who(record: Record) -> tuple[str, str]:
    if record.source is SourceKind.NOTES:
        return ("(own note)", "")
    return (record.sender, ", ".join(record.recipients))


def _period_text(pack: Pack, tz: tzinfo) -> str:
    if pack.since is None and pack.until is None:
        return "everything archived"
    start = day_text(pack.since, tz) if pack.since else "the beginning"
    end = day_text(pack.until, tz) if pack.until else "the export"
    return f"from {start} to {end}"


def _timeline(pack: Pack) -> list[PackItem | ContractEvent]:
    entries: list[PackItem | ContractEvent] = [*pack.items, *pack.events]

    def key(entry: PackItem | ContractEvent) -> tuple[datetime, int, str]:
        if isinstance(entry, PackItem):
            return (_utc(entry.record.date), 0, entry.sha256)
        return (_utc(entry.at), 1, f"{entry.seq:012d}")

    return sorted(entries, key=key)


def _head_text(pack: Pack) -> str:
    if pack.head is None:
        return "the ledger was empty"
    return f"entry {pack.head.seq}, hash {pack.head.hash}"


def render_timeline_md(pack: Pack, tz: tzinfo) -> str:
    """The timeline as Markdown: the contract, its milestones, then every item and event by date."""
    c = pack.contract
    lines = [
        f"# Evidence pack: {c.id} ({c.client})",
        "",
        f"- Contract: {c.title or c.id}; client {c.client}; status {c.status.value}",
        f"- Start: {c.start or 'not given'}; update interval: "
        + (span_text(c.interval) if c.interval else "default"),
        f"- Client addresses: {', '.join(c.emails) or 'none given'}",
        f"- Period: {_period_text(pack, tz)}; created {_stamp(pack.created, tz)}",
        f"- {len(pack.items)} items, {len(pack.entries)} ledger entries; ledger head at export: "
        f"{_head_text(pack)}",
        "",
        "## Milestones (as of the export)",
        "",
    ]
    lines += [
        f"- {m.id} {m.name}: {money_text(m.amount, m.currency) or 'no amount'}, "
        f"due {m.due or 'not given'}, status {m.status.value}, escrow {m.escrow.value}"
        for m in c.milestones
    ] or ["None."]
    lines += ["", "## Timeline", ""]
    for entry in _timeline(pack):
        lines += [*_md_entry(entry, tz), ""]
    if not pack.items and not pack.events:
        lines += ["Nothing in this period.", ""]
    return "\n".join(lines)


def _md_entry(entry: PackItem | ContractEvent, tz: tzinfo) -> list[str]:
    if isinstance(entry, ContractEvent):
        return [f"### {_stamp(entry.at, tz)} - ledger entry {entry.seq}: {entry.text}"]
    r = entry.record
    sender, recipients = _who(r)
    mark = "AGREEMENT - " if r.kind is Kind.AGREEMENT else ""
    lines = [
        f"### {_stamp(r.date, tz)} - {mark}{_flat(r.subject) or '(no subject)'}",
        "",
        f"- Kind: {r.kind.value}; direction: {r.direction.value}; source: {r.source.value}"
        + (f"; milestone: {r.milestone}" if r.milestone else "")
        + (f"; {entry.revision}" if entry.revision else ""),
        f"- From: {_flat(sender)}" + (f"; to: {_flat(recipients)}" if recipients else ""),
    ]
    if r.attachments:
        lines.append(f"- Attachments: {_flat(', '.join(r.attachments))}")
    lines += [
        f"- Archived: {_archived_text(entry, tz)}",
        f"- File: {entry.filename}",
        f"- sha256: {r.sha256}",
        "",
    ]
    text = r.text.strip() or "(no text)"
    lines += [f"> {line}".rstrip() for line in text.splitlines()]
    return lines


def _flat(text: str) -> str:
    return " ".join(text.split())


def render_timeline_html(pack: Pack, tz: tzinfo) -> str:
    """The timeline as one self-contained HTML page (agreements highlighted, all text escaped)."""
    c = pack.contract
    facts = [
        ("Client", c.client),
        ("Title", c.title or c.id),
        ("Status", c.status.value),
        ("Start", str(c.start or "not given")),
        ("Update interval", span_text(c.interval) if c.interval else "default"),
        ("Client addresses", ", ".join(c.emails) or "none given"),
        ("Period", _period_text(pack, tz)),
        ("Created", _stamp(pack.created, tz)),
        ("Contents", f"{len(pack.items)} items, {len(pack.entries)} ledger entries"),
        ("Ledger head at export", _head_text(pack)),
    ]
    fact_rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in facts)
    milestone_rows = "".join(
        f"<tr><td>{esc(m.id)}</td><td>{esc(m.name)}</td>"
        f'<td class="num">{esc(money_text(m.amount, m.currency))}</td>'
        f"<td>{esc(m.due or '')}</td><td>{esc(m.status.value)}</td><td>{esc(m.escrow.value)}</td></tr>"
        for m in c.milestones
    )
    milestones = (
        "<table><thead><tr><th>Id</th><th>Name</th><th>Amount</th><th>Due</th><th>Status</th>"
        f"<th>Escrow</th></tr></thead><tbody>{milestone_rows}</tbody></table>"
        if milestone_rows
        else '<p class="none">none</p>'
    )
    timeline = "\n".join(_html_entry(entry, tz) for entry in _timeline(pack))
    body = "\n".join(
        [
            f"<h1>Evidence pack: {esc(c.id)}</h1>",
            '<p class="meta">Every item below is in <code>items/</code> byte for byte; '
            "<code>sha256sum -c manifest.sha256</code> proves no file was changed "
            "(see README.txt).</p>",
            f"<table><tbody>{fact_rows}</tbody></table>",
            "<h2>Milestones (as of the export)</h2>",
            milestones,
            "<h2>Timeline</h2>",
            timeline or '<p class="none">Nothing in this period.</p>',
        ]
    )
    return page(f"Evidence pack: {c.id}", body)


def _html_entry(entry: PackItem | ContractEvent, tz: tzinfo) -> str:
    if isinstance(entry, ContractEvent):
        return (
            f'<div class="event"><span class="date">{esc(_stamp(entry.at, tz))}</span> '
            f"<strong>Ledger entry {entry.seq}:</strong> {esc(entry.text)}</div>"
        )
    r = entry.record
    sender, recipients = _who(r)
    agreement = r.kind is Kind.AGREEMENT
    badge = '<span class="flag urgent">AGREEMENT</span> ' if agreement else ""
    facts = [r.kind.value, r.direction.value, r.source.value]
    facts += [f"milestone {r.milestone}"] if r.milestone else []
    facts += [entry.revision] if entry.revision else []
    people = f"From: {esc(sender)}" + (f"<br>To: {esc(recipients)}" if recipients else "")
    attached = f"<p>Attachments: {esc(', '.join(r.attachments))}</p>" if r.attachments else ""
    return (
        f'<div class="item{" agreement" if agreement else ""}">'
        f'<h3>{badge}<span class="date">{esc(_stamp(r.date, tz))}</span> '
        f"{esc(r.subject or '(no subject)')}</h3>"
        f'<p class="meta">{esc(" / ".join(facts))}</p><p>{people}</p>{attached}'
        f"<pre>{esc(r.text.strip() or '(no text)')}</pre>"
        f"<p>Archived: {esc(_archived_text(entry, tz))}<br>"
        f'File: <a href="{esc(entry.filename)}">{esc(entry.filename)}</a><br>'
        f"sha256: <code>{esc(r.sha256)}</code></p></div>"
    )


def readme_text(pack: Pack, tz: tzinfo) -> str:
    """README.txt: what is in the pack and how to check it, in plain words."""
    c = pack.contract
    return f"""EVIDENCE PACK: {c.id} ({c.client})
Created {_stamp(pack.created, tz)} by corrlog. Period: {_period_text(pack, tz)}.

WHAT IS IN THIS FOLDER

  timeline.html    Every item of the contract in date order, agreements highlighted, with
                   milestone and contract changes. Open it in any web browser.
  timeline.md      The same timeline as plain text.
  items/           The original bytes of every item, exactly as they were received or
                   written: e-mails as .eml files (open them with any mail program), notes
                   as .md or .txt files. Each file is named by its date and its SHA-256
                   fingerprint.
  ledger.jsonl     The entries of corrlog's tamper-evident journal (the ledger) that record
                   these items and the contract's changes, one JSON object per line.
  manifest.sha256  The SHA-256 fingerprint of every other file in this folder.

HOW TO CHECK THAT NOTHING WAS CHANGED

1. The files. In this folder, run:

     sha256sum -c manifest.sha256              (Linux)
     shasum -a 256 -c manifest.sha256          (macOS)

   Every line must say OK. If a single byte of a file was changed, that file is reported
   as FAILED. On Windows, `Get-FileHash -Algorithm SHA256 FILE` in PowerShell prints a
   file's fingerprint to compare with its line in manifest.sha256.

2. The items. The long hexadecimal number in each file name under items/ is the SHA-256
   of that file's contents; `sha256sum items/*` shows the same numbers.

3. The ledger. Each line of ledger.jsonl is one journal entry. Its "hash" is the SHA-256
   of the JSON array [seq, time, event, sha256, origin, detail, prev_hash] written
   compactly (no spaces, UTF-8), and "prev_hash" is the hash of the entry before it in
   the full journal. So an entry cannot be changed without changing its hash, and no
   entry can be changed, removed or inserted without breaking the entry after it. The
   "sha256" of an entry that recorded an item is the fingerprint in that item's file
   name. These lines are an excerpt; where two have consecutive "seq" numbers, the second
   one's "prev_hash" must equal the first one's "hash". When this pack was made, the
   journal's latest entry was {_head_text(pack)}; the freelancer's own journal can be
   checked against it at any later time with `corrlog verify`.

   With Python 3 (no other software needed), this prints "ok" for every intact entry:

     python3 -c "import hashlib,json,sys
     for line in open('ledger.jsonl', encoding='utf-8'):
         e = json.loads(line)
         f = [e[k] for k in ('seq','time','event','sha256','origin','detail','prev_hash')]
         h = hashlib.sha256(json.dumps(f, ensure_ascii=False, separators=(',', ':')).encode()).hexdigest()
         print(e['seq'], 'ok' if h == e['hash'] else 'ALTERED')"

4. With corrlog installed, `corrlog verify --pack THIS-FOLDER` does all of the above.
"""


# verifying -----------------------------------------------------------------------------------


@dataclass
class PackReport:
    """What checking a pack found."""

    path: Path
    files: int = 0
    entries: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every file matches and the ledger excerpt is intact."""
        return not self.problems

    def summary(self) -> str:
        """One line for people."""
        if self.ok:
            return (
                f"ok: evidence pack {self.path}: {self.files} files match {MANIFEST}, "
                f"{self.entries} ledger entries intact"
            )
        return f"FAILED: {len(self.problems)} problem(s) in evidence pack {self.path}"


def verify_pack(path: Path) -> PackReport:
    """Check every file against the manifest, each item's name, and the ledger excerpt's hashes."""
    report = PackReport(path)
    if not path.is_dir():
        report.problems.append(f"{path}: not a folder")
        return report
    hashes = _check_manifest(path, report)
    named = _check_ledger(path, report)
    for name, digest in sorted(hashes.items()):
        if not name.startswith(f"{ITEMS}/"):
            continue
        match = _ITEM_NAME.fullmatch(name.removeprefix(f"{ITEMS}/"))
        if match is None:
            report.problems.append(f"{name}: not named <date>_<sha256>.<ext> as corrlog writes")
        elif digest != match[1]:
            report.problems.append(f"{name}: content does not match the sha256 in its name")
        elif match[1] not in named:
            report.problems.append(f"{name}: no entry in {LEDGER} records this item")
    return report


def _check_manifest(root: Path, report: PackReport) -> dict[str, str]:
    """Compare files with the manifest; return the actual sha256 of every file in the pack."""
    actual = {rel: _file_sha256(root / rel) for rel in _pack_files(root)}
    try:
        lines = (root / MANIFEST).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        report.problems.append(f"{MANIFEST}: cannot be read ({exc.__class__.__name__})")
        return actual
    listed: set[str] = set()
    for number, line in enumerate(lines, 1):
        match = _MANIFEST_LINE.fullmatch(line)
        if match is None:
            report.problems.append(f"{MANIFEST} line {number}: not in sha256sum format")
            continue
        expected, name = match[1].lower(), match[2]
        parts = PurePosixPath(name).parts
        if PurePosixPath(name).is_absolute() or ".." in parts:
            report.problems.append(f"{MANIFEST} line {number}: {name} points outside the pack")
            continue
        listed.add(name)
        if name not in actual:
            report.problems.append(f"{name}: listed in {MANIFEST} but missing")
        elif actual[name] != expected:
            report.problems.append(f"{name}: content does not match {MANIFEST} (file changed)")
        else:
            report.files += 1
    for name in sorted(set(actual) - listed):
        report.problems.append(f"{name}: not listed in {MANIFEST} (added after the export)")
    return actual


def _pack_files(root: Path) -> Iterable[str]:
    """Every file below the pack folder except the manifest itself."""
    for found in sorted(root.rglob("*")):
        name = found.relative_to(root).as_posix()
        if found.is_file() and name != MANIFEST:
            yield name


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _check_ledger(root: Path, report: PackReport) -> set[str]:
    """Check each entry's hash and the links between consecutive ones; return the items named."""
    named: set[str] = set()
    try:
        lines = (root / LEDGER).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        report.problems.append(f"{LEDGER}: cannot be read ({exc.__class__.__name__})")
        return named
    previous: Entry | None = None
    for number, line in enumerate(lines, 1):
        entry = _parse_entry(line)
        if entry is None:
            report.problems.append(f"{LEDGER} line {number}: not a ledger entry")
            continue
        report.entries += 1
        where = f"{LEDGER} line {number} (entry {entry.seq})"
        if entry.hash != entry.expected_hash():
            report.problems.append(f"{where}: contents do not match its hash (entry altered)")
        if entry.seq == 1 and entry.prev_hash != GENESIS:
            report.problems.append(f"{where}: the first entry must follow the genesis hash")
        if previous is not None and entry.seq <= previous.seq:
            report.problems.append(f"{where}: out of order after entry {previous.seq}")
        elif previous is not None and _breaks_link(previous, entry):
            report.problems.append(f"{where}: previous-hash link to entry {previous.seq} broken")
        if entry.sha256:
            named.add(entry.sha256)
        previous = entry
    return named


def _breaks_link(previous: Entry, entry: Entry) -> bool:
    """Whether two entries with consecutive sequence numbers fail to chain."""
    return entry.seq == previous.seq + 1 and entry.prev_hash != previous.hash


def _parse_entry(line: str) -> Entry | None:
    try:
        data = json.loads(line)
        entry = Entry(
            seq=int(data["seq"]),
            time=str(data["time"]),
            event=str(data["event"]),
            sha256=data["sha256"],
            origin=data["origin"],
            detail=data["detail"],
            prev_hash=str(data["prev_hash"]),
            hash=str(data["hash"]),
        )
    except (ValueError, KeyError, TypeError):
        return None
    for value in (entry.sha256, entry.origin, entry.detail):
        if value is not None and not isinstance(value, str):
            return None
    return entry
