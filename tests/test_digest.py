"""The weekly digest: pure model, golden Markdown/JSON, safe HTML, a real browser, SMTP, systemd."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import struct
import subprocess
import sys
import zlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path

import html5lib
import pytest

from corrlog.digest import Archived, Week, build_digest
from corrlog.ingest import note_record_id
from corrlog.model import (
    Contract,
    Direction,
    Escrow,
    Kind,
    Milestone,
    MilestoneStatus,
    Origin,
    Record,
    SourceKind,
)
from corrlog.render_digest import render_html, render_json, render_markdown
from corrlog.rules.flags import FlagSettings
from support.cli import CorrlogHome, Result
from support.mail import FRIEND, ME, message, set_me, write_maildir
from support.smtp import PASSWORD, USER, SmtpServer

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
ARTIFACTS = ROOT / "tests" / "artifacts"
TZ = "Asia/Kolkata"  # +05:30 all year: a non-UTC zone whose offset never changes
NOW = "2026-11-30T08:00:00+05:30"  # Monday morning: the default week is 2026-W48
BOB, EVE = "bob@acme.example", "eve@globex.example"
HOSTILE_SUBJECT = "<script>alert(1)</script>"
HOSTILE_BODY = "<img src=x onerror=alert(2)> We agree to the revised price."
NOTES = {
    "contracts/acme-site.md": """---
type: agreement
contract: acme-site
client: Acme Corp
title: Acme website
emails: ["@acme.example"]
interval: 7d
start: 2026-09-01
date: 2026-09-01T09:00:00+00:00
milestones:
  - {id: m1, name: Design, amount: 1500, currency: EUR, due: 2026-11-15, escrow: funded, status: submitted, since: 2026-11-10}
  - {id: m2, name: Build, amount: 3000, currency: EUR, due: 2026-12-05, escrow: unfunded, status: open}
---
# Acme website agreement
Five pages, two rounds of changes.
""",
    "contracts/acme-app.md": """---
type: agreement
contract: acme-app
client: Acme Corp
title: Acme mobile app
emails: ["@acme.example"]
interval: 14d
start: 2026-10-01
date: 2026-10-01T09:00:00+00:00
---
# Acme app agreement
""",
    "contracts/globex.md": """---
type: agreement
contract: globex-ops
client: Globex
title: Globex operations audit
emails: [eve@globex.example]
interval: 5d
start: 2026-10-01
date: 2026-10-01T09:00:00+00:00
milestones:
  - {id: g1, name: Audit, amount: 800, currency: USD, due: 2026-11-20, escrow: funded, status: open}
---
# Globex agreement
""",
    "contracts/initech.md": """---
type: agreement
contract: initech
client: Initech
emails: ["@initech.example"]
status: paused
start: 2026-09-01
date: 2026-09-01T09:00:00+00:00
---
# Initech agreement
""",
    "acme-site/2026-11-12.md": "---\ntype: update\ndate: 2026-11-12T10:00:00+00:00\n---\n"
    "# Design delivered\nMockups sent.\n",
    "acme-site/2026-11-25.md": "---\ntype: update\ndate: 2026-11-25T10:00:00+00:00\n---\n"
    "# Build sprint 1 done\nBuild: home page done.\n",
}


def at(moment: str) -> datetime:
    """A UTC moment of the scenario."""
    return datetime.fromisoformat(f"{moment}+00:00")


MAIL = [
    message(1, sender=BOB, subject=f"[acme-site] {HOSTILE_SUBJECT}", body=HOSTILE_BODY,
            when=at("2026-11-24T09:00:00"), message_id="<d1@acme.example>"),
    message(2, sender=ME, to=BOB, subject="[acme-site] [update] staging link",
            body="Staging is up.", when=at("2026-11-26T09:00:00"), message_id="<d2@free.example>"),
    message(3, sender=BOB, subject="Invoice question", body="Which contract is this for?",
            when=at("2026-11-27T09:00:00"), message_id="<d3@acme.example>"),
    message(4, sender=EVE, subject="Audit scope", body="Please include the VPN.",
            when=at("2026-11-02T09:00:00"), message_id="<d4@globex.example>"),
    message(5, sender=FRIEND, subject="Dinner", body="Dinner on Friday? quetzal",
            when=at("2026-11-25T09:00:00"), message_id="<d5@personal.example>"),
    message(6, sender=BOB, subject="[acme-site] Next week", body="See you Monday.",
            when=at("2026-12-01T09:00:00"), message_id="<d6@acme.example>"),
]  # fmt: skip


def run(home: CorrlogHome, *args: str) -> Result:
    """Run corrlog in the scenario's time zone."""
    return home.run(*args, env=home.env(TZ=TZ))


def ok(home: CorrlogHome, *args: str) -> Result:
    """Run corrlog in the scenario's time zone and assert exit code 0."""
    result = run(home, *args)
    assert result.code == 0, f"corrlog {' '.join(args)} -> {result.code}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> CorrlogHome:
    """Four contracts (one paused), notes and Maildir mail around week 2026-W48, synced once."""
    home = CorrlogHome.create(tmp_path_factory.mktemp("digest"))
    for relative, text in NOTES.items():
        home.note(relative, text)
    set_me(home)
    write_maildir(home.data / "maildir", MAIL)
    ok(home, "sync")
    return home


def sanitise(text: str, home: CorrlogHome) -> str:
    """Replace the values that depend on the temp dir or the wall clock."""
    for relative in NOTES:
        path = (home.notes / relative).resolve()
        text = text.replace(note_record_id(str(path)), f"<note:{relative}>")
    text = re.sub(r"(Items archived this week: ).*", r"\1<volatile>", text)
    return text


def check_golden(name: str, actual: str) -> None:
    """Compare with tests/golden/NAME; UPDATE_GOLDEN=1 rewrites it instead."""
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    assert path.read_text(encoding="utf-8") == actual


# the pure model --------------------------------------------------------------------------------


def test_week_parsing_and_bounds() -> None:
    """`2026-W48` is Monday 23 to Sunday 29 November; nonsense weeks are refused with a hint."""
    week = Week.parse("2026-W48")
    tz = timezone(timedelta(hours=5, minutes=30))
    assert (week.label, week.monday.isoformat()) == ("2026-W48", "2026-11-23")
    assert week.start(tz).isoformat() == "2026-11-23T00:00:00+05:30"
    assert week.end(tz).isoformat() == "2026-11-30T00:00:00+05:30"
    assert Week.parse("2026-w53") == Week(2026, 53)
    for bad, hint in [("2026-48", "like 2026-W48"), ("2025-W53", "weeks 1 to 52")]:
        with pytest.raises(ValueError, match=hint):
            Week.parse(bad)


def test_last_complete_week_is_taken_in_the_local_time_zone() -> None:
    """Sunday 20:00 UTC is already Monday in India: the last complete week differs by zone."""
    now = datetime(2026, 11, 29, 20, 0, tzinfo=UTC)
    assert Week.last_complete(now, UTC) == Week(2026, 47)
    assert Week.last_complete(now, timezone(timedelta(hours=5, minutes=30))) == Week(2026, 48)
    assert Week.last_complete(datetime(2027, 1, 4, 9, tzinfo=UTC), UTC) == Week(2026, 53)


def _record(n: int, day: str, kind: Kind, contract: str | None = "c") -> Record:
    """A note record at noon UTC of `day`."""
    return Record(
        id=f"r{n}",
        source=SourceKind.NOTES,
        kind=kind,
        direction=Direction.INTERNAL,
        date=datetime.fromisoformat(f"{day}T12:00:00+00:00"),
        subject=f"item {n}",
        sha256="0" * 64,
        origin=Origin(SourceKind.NOTES, "n", f"/n/{n}.md"),
        client="C",
        contract=contract,
    )


def test_digest_of_a_past_week_shows_that_week_as_of_its_end() -> None:
    """Later records do not count; the chart covers 8 weeks; archived items are counted by source."""
    contract = Contract(id="c", client="C", start=datetime(2026, 10, 1).date())
    records = [
        _record(1, "2026-10-20", Kind.UPDATE),
        _record(2, "2026-11-03", Kind.UPDATE),
        _record(3, "2026-11-04", Kind.AGREEMENT),
        _record(4, "2026-11-20", Kind.UPDATE),
        _record(5, "2026-11-05", Kind.MESSAGE, contract=None),
    ]
    archived = [
        Archived(datetime(2026, 11, 3, 8, tzinfo=UTC), SourceKind.NOTES),
        Archived(datetime(2026, 11, 4, 8, tzinfo=UTC), SourceKind.IMAP),
        Archived(datetime(2026, 11, 10, 8, tzinfo=UTC), SourceKind.IMAP),
    ]
    digest = build_digest(
        [contract],
        records,
        archived,
        Week(2026, 45),
        datetime(2026, 12, 1, tzinfo=UTC),
        tz=UTC,
        settings=FlagSettings(),
    )
    (section,) = digest.contracts
    assert digest.as_of == datetime(2026, 11, 9, tzinfo=UTC)
    assert [r.id for r in section.updates] == ["r2"]
    assert [r.id for r in section.agreements] == ["r3"]
    assert section.last_update is not None and section.last_update.id == "r2"
    assert section.days_since_update == 5
    assert [(w.number, n) for w, n in section.activity] == [
        (38, 0), (39, 0), (40, 0), (41, 0), (42, 0), (43, 1), (44, 0), (45, 1),
    ]  # fmt: skip
    assert [r.id for r in digest.unlinked] == ["r5"]
    assert dict(digest.totals.archived) == {
        SourceKind.NOTES: 1,
        SourceKind.IMAP: 1,
        SourceKind.MAILDIR: 0,
    }
    assert [(f.flag.name.value, f.flag.detail) for f in digest.flags] == [
        (
            "client-silent",
            "no message from the client since the contract started on 2026-10-01 (39 days)",
        )
    ]


HOSTILE = {
    "client": '<b onmouseover="alert(3)">Evil & Co</b>',
    "title": "<script>title()</script>",
    "milestone": "<svg onload=alert(4)>",
    "currency": "<i>EUR</i>",
    "update": "<script>alert(1)</script>",
    "unlinked": "</td></tr></table><iframe src=//evil.example>",
}


def test_every_text_field_is_escaped_in_the_html_digest() -> None:
    """Client, title, subjects, milestone names, currencies and flag details render as text."""
    milestone = Milestone(
        "m1",
        HOSTILE["milestone"],
        100.0,
        HOSTILE["currency"],
        datetime(2026, 12, 2).date(),
        Escrow.UNFUNDED,
        MilestoneStatus.OPEN,
    )
    contract = Contract(
        id="evil",
        client=HOSTILE["client"],
        title=HOSTILE["title"],
        start=datetime(2026, 10, 1).date(),
        milestones=(milestone,),
    )
    update = replace(_record(1, "2026-11-24", Kind.UPDATE, "evil"), subject=HOSTILE["update"])
    update = replace(update, milestone="m1", client=HOSTILE["client"])
    stray = replace(_record(2, "2026-11-25", Kind.MESSAGE, None), subject=HOSTILE["unlinked"])
    digest = build_digest(
        [contract],
        [update, stray],
        [],
        Week(2026, 48),
        datetime(2026, 11, 30, tzinfo=UTC),
        tz=UTC,
        settings=FlagSettings(),
    )
    assert {f.flag.name.value for f in digest.flags} >= {"unfunded-work", "milestone-due"}
    page = render_html(digest)
    parser = html5lib.HTMLParser(strict=True)
    tree = parser.parse(page)
    assert parser.errors == []
    for value in HOSTILE.values():
        assert value not in page
    assert html_escaped(HOSTILE["update"]) in page
    ns = {"h": "http://www.w3.org/1999/xhtml"}
    for tag in ("script", "iframe", "b", "i"):
        assert tree.findall(f".//h:{tag}", ns) == [], tag
    assert json.loads(render_json(digest))["contracts"][0]["client"] == HOSTILE["client"]
    assert HOSTILE["update"] in render_markdown(digest)


# golden files ------------------------------------------------------------------------------------


def test_markdown_digest_matches_the_golden_file(scenario: CorrlogHome) -> None:
    """The default week at a fixed --now renders exactly as tests/golden/digest.md."""
    out = ok(scenario, "digest", "--now", NOW).out
    check_golden("digest.md", sanitise(out, scenario))


def test_json_digest_matches_the_golden_file(scenario: CorrlogHome) -> None:
    """The JSON digest has the documented shape and matches tests/golden/digest.json."""
    out = ok(scenario, "digest", "--now", NOW, "--week", "2026-W48", "--format", "json").out
    data = json.loads(out)
    assert list(data)[:5] == ["week", "period", "contracts", "flags", "unlinked"]
    assert "totals" in data
    assert [c["id"] for c in data["contracts"]] == ["acme-app", "acme-site", "globex-ops"]
    documented = {
        "id",
        "client",
        "last_update",
        "days_since_update",
        "updates_this_week",
        "agreements_this_week",
        "open_flags",
        "milestones_due",
        "awaiting_payment",
    }
    assert all(documented <= set(c) for c in data["contracts"])
    data["totals"]["archived_this_week"] = "<volatile>"
    text = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    check_golden("digest.json", sanitise(text, scenario))


def test_digest_leaves_out_personal_mail_paused_contracts_and_later_items(
    scenario: CorrlogHome,
) -> None:
    """No friend's mail, no paused contract, nothing dated after the week; the unlinked item shows."""
    out = ok(scenario, "digest", "--now", NOW, "--format", "json").out
    assert FRIEND not in out and "quetzal" not in out and "Dinner" not in out
    assert "initech" not in out and "Next week" not in out
    data = json.loads(out)
    assert [u["subject"] for u in data["unlinked"]] == ["Invoice question"]


def test_file_output_and_argument_errors(scenario: CorrlogHome, tmp_path: Path) -> None:
    """--out writes the file; a bad --week or a missing [notify.email] for --send exit with 2."""
    target = tmp_path / "digest.md"
    result = ok(scenario, "digest", "--now", NOW, "--out", str(target))
    assert result.out == ""
    assert target.read_text().startswith("# corrlog weekly digest 2026-W48")
    bad = run(scenario, "digest", "--week", "2026-48")
    assert (bad.code, "write it like 2026-W48" in bad.stderr) == (2, True)
    unsendable = run(scenario, "digest", "--send")
    assert unsendable.code == 2
    assert "[notify.email]" in unsendable.stderr


def test_archived_totals_count_what_this_weeks_sync_archived(scenario: CorrlogHome) -> None:
    """In the week of the sync, the totals count each archived note and message by source."""
    now = datetime.now(UTC).isoformat()
    week = Week.of(datetime.now(UTC).astimezone(timezone(timedelta(hours=5, minutes=30))).date())
    out = ok(scenario, "digest", "--now", now, "--week", week.label, "--format", "json").out
    archived = json.loads(out)["totals"]["archived_this_week"]
    captured = len(MAIL) - 1  # the friend's mail is never archived
    assert archived == {"notes": len(NOTES), "imap": 0, "maildir": captured}


# HTML ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digest_html(scenario: CorrlogHome) -> str:
    """The HTML digest of the scenario."""
    return ok(scenario, "digest", "--now", NOW, "--format", "html").out


def test_html_digest_is_valid_html(digest_html: str) -> None:
    """html5lib parses the page in strict mode without a single error."""
    parser = html5lib.HTMLParser(strict=True)
    parser.parse(digest_html)
    assert parser.errors == []
    assert digest_html.startswith("<!DOCTYPE html>")


def test_html_digest_escapes_hostile_subjects_and_is_self_contained(digest_html: str) -> None:
    """A `<script>` subject renders as text; no script, no external URL, an inline SVG chart."""
    assert HOSTILE_SUBJECT not in digest_html
    assert html_escaped(HOSTILE_SUBJECT) in digest_html
    tree = html5lib.parse(digest_html, namespaceHTMLElements=False)
    assert tree.findall(".//script") == []
    assert tree.findall(".//img") == []
    assert re.findall(r"(?:src|href)\s*=", digest_html) == []
    urls = set(re.findall(r"https?://[^\s\"'<>]+", digest_html))
    assert urls == {"http://www.w3.org/2000/svg"}
    assert len(tree.findall(".//{http://www.w3.org/2000/svg}svg")) == 3


def html_escaped(text: str) -> str:
    """How html.escape writes text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def find_chromium() -> str | None:
    """Debian's chromium (scripts/ensure-chromium.sh installs it)."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def screenshot(browser: str, page: Path, png: Path, profile: Path) -> list[str]:
    """Render `page` headless into `png`; return the browser's console messages."""
    proc = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            "--window-size=900,1300",
            "--enable-logging=stderr",
            "--v=0",
            f"--screenshot={png}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]


def png_grey(data: bytes) -> list[int]:
    """The grey level (first channel) of every pixel of an 8-bit, non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks, header = 8, [], b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        header = body if kind == b"IHDR" else header
        chunks += [body] if kind == b"IDAT" else []
        pos += 12 + length
    width, height, depth, colour, _c, _f, interlace = struct.unpack(">IIBBBBB", header)
    assert (depth, interlace) == (8, 0)
    bpp = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    stride, raw = width * bpp, zlib.decompress(b"".join(chunks))
    previous, grey = bytearray(stride), []
    for y in range(height):
        start = y * (stride + 1)
        line = unfilter(raw[start], bytearray(raw[start + 1 : start + 1 + stride]), previous, bpp)
        grey += line[0::bpp]
        previous = line
    return grey


def unfilter(kind: int, line: bytearray, previous: bytearray, bpp: int) -> bytearray:
    """Undo one PNG row filter (none, sub, up, average, Paeth)."""
    if kind == 2:
        return bytearray((x + b) & 255 for x, b in zip(line, previous, strict=True))
    for i in range(len(line) if kind else 0):
        a = line[i - bpp] if i >= bpp else 0
        b, c = previous[i], (previous[i - bpp] if i >= bpp else 0)
        if kind == 1:
            line[i] = (line[i] + a) & 255
        elif kind == 3:
            line[i] = (line[i] + ((a + b) >> 1)) & 255
        else:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    return line


def test_html_digest_renders_in_headless_chromium(digest_html: str, tmp_path: Path) -> None:
    """Chromium renders the page without console messages and the screenshot is not blank."""
    browser = find_chromium()
    if browser is None:
        pytest.skip("chromium not installed (scripts/ensure-chromium.sh installs it)")
    probe = tmp_path / "probe.html"
    probe.write_text("<!DOCTYPE html><title>p</title><script>console.error('probe-42')</script>")
    assert any(
        "probe-42" in m for m in screenshot(browser, probe, tmp_path / "p.png", tmp_path / "pp")
    )
    page = tmp_path / "digest.html"
    page.write_text(digest_html, encoding="utf-8")
    ARTIFACTS.mkdir(exist_ok=True)
    png = ARTIFACTS / "digest.png"
    assert screenshot(browser, page, png, tmp_path / "profile") == []
    grey = png_grey(png.read_bytes())
    mean = sum(grey) / len(grey)
    variance = sum((g - mean) ** 2 for g in grey) / len(grey)
    dark = sum(1 for g in grey if g < 128) / len(grey)
    assert variance > 100, f"screenshot looks blank (variance {variance:.1f})"
    assert dark > 0.005, f"hardly any text drawn ({dark:.2%} dark pixels)"


# sending ---------------------------------------------------------------------------------------


def test_send_delivers_one_message_with_html_and_plain_text(
    scenario: CorrlogHome, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    """`--send` mails one multipart/alternative message: the Markdown text and the HTML page."""
    config = tmp_path / "corrlog.toml"
    config.write_text(
        scenario.config.read_text()
        + f'\n[notify.email]\nhost = "127.0.0.1"\nport = {smtp_server.port}\ntls = "none"\n'
        f'username = "{USER}"\npassword = "{PASSWORD}"\nfrom = "corrlog@free.example"\n'
        f'to = ["{ME}"]\n'
    )
    sender_home = replace(scenario, config=config)
    result = ok(sender_home, "digest", "--now", NOW, "--send")
    assert result.out == ""
    assert "sent to" in result.stderr
    (mail,) = smtp_server.inbox.messages
    assert isinstance(mail, EmailMessage)
    assert mail.get_content_type() == "multipart/alternative"
    assert mail["Subject"] == "[corrlog] weekly digest 2026-W48: 7 open flags"
    assert mail["To"] == ME
    parts = {part.get_content_type(): part.get_content() for part in mail.iter_parts()}
    assert set(parts) == {"text/plain", "text/html"}
    assert parts["text/plain"].startswith("# corrlog weekly digest 2026-W48")
    assert "<svg" in parts["text/html"] and html_escaped(HOSTILE_SUBJECT) in parts["text/html"]
    assert smtp_server.inbox.logins == [USER]


# systemd -----------------------------------------------------------------------------------------


def test_digest_timer_fires_mondays_at_eight_and_the_units_verify(tmp_path: Path) -> None:
    """The timer is weekly on Monday 08:00 local, persistent; both units pass systemd-analyze verify."""
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze not found (install Debian's systemd package)")
    timer = (ROOT / "systemd" / "corrlog-digest.timer").read_text()
    service = (ROOT / "systemd" / "corrlog-digest.service").read_text()
    assert "Persistent=true" in timer.splitlines()
    (calendar,) = [
        line.split("=", 1)[1] for line in timer.splitlines() if line.startswith("OnCalendar=")
    ]
    normalised = subprocess.run(
        [tool, "calendar", "--iterations=2", calendar], capture_output=True, text=True, check=True
    ).stdout
    assert "Normalized form: Mon *-*-* 08:00:00" in normalised
    elapses = re.findall(r"(?:Next elapse|Iter\. #2): (\w{3}) \S+ (\d\d:\d\d:\d\d)", normalised)
    assert elapses == [("Mon", "08:00:00"), ("Mon", "08:00:00")]
    (exec_start,) = [line for line in service.splitlines() if line.startswith("ExecStart=")]
    argv = shlex.split(exec_start.removeprefix("ExecStart="))
    assert argv[1:] == ["--log-format", "json", "digest", "--send"]
    corrlog = Path(sys.executable).with_name("corrlog")
    (tmp_path / "corrlog-digest.service").write_text(
        service.replace(exec_start, f"ExecStart={corrlog} {shlex.join(argv[1:])}")
    )
    (tmp_path / "corrlog-digest.timer").write_text(timer)
    result = subprocess.run(
        [tool, "verify", "--man=no", *(str(p) for p in sorted(tmp_path.iterdir()))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
