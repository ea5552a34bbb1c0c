"""Email ingestion against a real Dovecot: capture filter, exactly once, no \\Seen, TLS, errors."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from support.cli import CorrlogHome
from support.dovecot import DovecotServer
from support.mail import AGREEMENT_NOTE, CLIENT, FRIEND, ME, add_imap_account, message, set_me

pytestmark = pytest.mark.imap


def db_count(home: CorrlogHome, sql: str) -> int:
    """Run a COUNT query on the home's database."""
    with sqlite3.connect(home.data / "corrlog.db") as conn:
        return int(conn.execute(sql).fetchone()[0])


def imap_records(home: CorrlogHome) -> int:
    """How many mail records exist."""
    return db_count(home, "SELECT COUNT(*) FROM records WHERE source = 'imap'")


def imap_ingests(home: CorrlogHome) -> int:
    """How many ledger entries archived new mail bytes."""
    return db_count(
        home, "SELECT COUNT(*) FROM ledger WHERE event = 'ingest' AND origin LIKE 'imap:%'"
    )


def ledger_size(home: CorrlogHome) -> int:
    """All ledger entries."""
    return db_count(home, "SELECT COUNT(*) FROM ledger")


@pytest.fixture
def mail_home(home: CorrlogHome, clean_mailboxes: DovecotServer) -> CorrlogHome:
    """A home with the Acme contract, `me` set, and alice's account configured."""
    home.note("acme/agreement.md", AGREEMENT_NOTE)
    set_me(home)
    add_imap_account(home, clean_mailboxes)
    return home


def test_only_client_mail_is_archived_once_and_never_marked_seen(
    mail_home: CorrlogHome, clean_mailboxes: DovecotServer
) -> None:
    """200 client messages in INBOX and Sent are archived, 50 personal ones are not; no \\Seen."""
    server = clean_mailboxes
    for n in range(150):
        server.append("alice", "INBOX", message(n))
    for n in range(150, 200):
        server.append("alice", "Sent", message(n, sender=ME, to=CLIENT))
    for n in range(200, 250):
        server.append("alice", "INBOX", message(n, sender=FRIEND, subject="Weekend plans"))
    result = mail_home.ok("sync")
    assert "imap work: 200 archived" in result.out
    assert "50 personal skipped" in result.out
    assert imap_records(mail_home) == 200
    assert imap_ingests(mail_home) == 200
    for folder in ("INBOX", "Sent"):
        assert all(b"\\Seen" not in flags for flags in server.flags("alice", folder).values())
    assert mail_home.ok("search", "word220", "--format", "ids").out == ""
    assert mail_home.ok("search", "subject:weekend", "--format", "ids").out == ""
    assert len(mail_home.ok("search", "word7", "--format", "ids").out.split()) == 1
    sent = json.loads(mail_home.ok("search", "word170", "--format", "json").out)
    assert [(h["direction"], h["contract"]) for h in sent] == [("out", "acme-site")]

    before = ledger_size(mail_home)
    assert "0 archived" in mail_home.ok("sync").out.split("imap work:")[1]
    assert ledger_size(mail_home) == before

    for n in range(300, 310):
        server.append("alice", "INBOX", message(n))
    assert "imap work: 10 archived" in mail_home.ok("sync").out
    assert imap_records(mail_home) == 210
    assert mail_home.ok("verify").out.startswith("ok:")


def test_uidvalidity_change_stores_nothing_twice(
    mail_home: CorrlogHome, clean_mailboxes: DovecotServer
) -> None:
    """A folder deleted and recreated with the same messages adds no record and no object."""
    server = clean_mailboxes
    server.create_folder("alice", "Projects")
    msgs = [message(n) for n in range(20)]
    for raw in msgs:
        server.append("alice", "Projects", raw)
    mail_home.config.write_text(mail_home.config.read_text() + 'folders = ["INBOX", "Projects"]\n')
    mail_home.ok("sync")
    old_validity = server.uidvalidity("alice", "Projects")
    objects = sorted(p.name for p in (mail_home.data / "archive").rglob("*") if p.is_file())
    server.delete_folder("alice", "Projects")
    server.create_folder("alice", "Projects")
    for raw in msgs:
        server.append("alice", "Projects", raw)
    assert server.uidvalidity("alice", "Projects") != old_validity
    mail_home.ok("sync")
    assert imap_records(mail_home) == 20
    assert imap_ingests(mail_home) == 20
    assert sorted(p.name for p in (mail_home.data / "archive").rglob("*") if p.is_file()) == objects


def test_same_message_in_two_folders_is_one_record_with_two_origins(
    mail_home: CorrlogHome, clean_mailboxes: DovecotServer
) -> None:
    """A copy in Archive is recorded as a second origin of the same record."""
    server = clean_mailboxes
    raw = message(1)
    server.append("alice", "INBOX", raw)
    server.append("alice", "Archive", raw)
    mail_home.config.write_text(mail_home.config.read_text() + 'folders = ["INBOX", "Archive"]\n')
    mail_home.ok("sync")
    assert imap_records(mail_home) == 1
    (record_id,) = mail_home.ok("search", "word1", "--format", "ids").out.split()
    shown = json.loads(mail_home.ok("show", record_id, "--format", "json").out)
    assert sorted(o["folder"] for o in shown["origins"]) == ["Archive", "INBOX"]


def test_interrupted_sync_resumes_with_exactly_the_rest(
    mail_home: CorrlogHome, clean_mailboxes: DovecotServer
) -> None:
    """kill -9 after some batches; the next sync archives the rest, nothing twice."""
    server = clean_mailboxes
    for n in range(120):
        server.append("alice", "INBOX", message(n))
    text = mail_home.config.read_text().replace("batch_size = 100", "batch_size = 10")
    mail_home.config.write_text(text)
    argv = [
        sys.executable,
        "-m",
        "corrlog",
        "--config",
        str(mail_home.config),
        "--log-format",
        "json",
        "sync",
    ]
    proc = subprocess.Popen(
        argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=mail_home.env()
    )
    assert proc.stderr is not None
    batches = 0
    deadline = time.monotonic() + 60
    while batches < 3 and time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        if b'"batch synced"' in line:
            batches += 1
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    proc.stderr.close()
    assert batches == 3
    partial = imap_records(mail_home)
    assert 30 <= partial < 120
    mail_home.ok("sync")
    assert imap_records(mail_home) == 120
    assert imap_ingests(mail_home) == 120
    assert mail_home.ok("verify").out.startswith("ok:")


@pytest.mark.parametrize("tls", ["implicit", "starttls"])
def test_tls_with_the_test_ca_works(
    home: CorrlogHome, clean_mailboxes: DovecotServer, tls: str
) -> None:
    """Implicit TLS and STARTTLS verify the server against ca_file."""
    clean_mailboxes.append("bob", "INBOX", message(5))
    home.note("acme/agreement.md", AGREEMENT_NOTE)
    add_imap_account(home, clean_mailboxes, user="bob", tls=tls)
    assert "imap work: 1 archived" in home.ok("sync").out


@pytest.mark.parametrize("tls", ["implicit", "starttls"])
def test_untrusted_certificate_is_refused_clearly(
    home: CorrlogHome, clean_mailboxes: DovecotServer, tls: str
) -> None:
    """Without ca_file the self-signed certificate is refused: one line, exit code 3."""
    add_imap_account(home, clean_mailboxes, user="bob", tls=tls, ca=False)
    result = home.run("sync")
    assert result.code == 3
    assert "Traceback" not in result.stderr
    assert "certificate is not trusted" in result.stderr
    assert "ca_file" in result.stderr


def test_wrong_password_is_one_line_exit_3_and_never_printed(
    mail_home: CorrlogHome, clean_mailboxes: DovecotServer
) -> None:
    """A refused login names the account; the other account still syncs; no password anywhere."""
    server = clean_mailboxes
    server.append("alice", "INBOX", message(1))
    user = server.throwaway_user()
    wrong = "Sup3r-Secret-Wr0ng-pw"
    add_imap_account(mail_home, server, name="broken", user=user, password=wrong)
    result = mail_home.run("--log-format", "json", "-vv", "sync")
    assert result.code == 3
    errors = [line for line in result.stderr.splitlines() if line.startswith("corrlog: error:")]
    assert len(errors) == 1 and "'broken'" in errors[0] and "login refused" in errors[0]
    assert "imap work: 1 archived" in result.out
    everything = result.out + result.stderr + server.log_text()
    for path in mail_home.data.rglob("*"):
        if path.is_file():
            everything += path.read_bytes().decode("latin-1")
    assert wrong not in everything
    assert server.password("alice") not in result.out + result.stderr


def test_unreachable_server_is_one_line_exit_3(home: CorrlogHome) -> None:
    """A closed port gives one clear line and exit code 3."""
    home.config.write_text(
        home.config.read_text()
        + '\n[[imap]]\nname = "gone"\nhost = "127.0.0.1"\nport = 9\nusername = "x"\npassword = "y"\n'
    )
    result = home.run("sync")
    assert result.code == 3
    assert "Traceback" not in result.stderr
    assert "'gone'" in result.stderr and "cannot connect" in result.stderr


def test_new_contract_captures_past_mail(
    mail_home: CorrlogHome, clean_mailboxes: DovecotServer
) -> None:
    """Adding a contract rescans synced folders and captures that client's earlier mail."""
    server = clean_mailboxes
    server.append("alice", "INBOX", message(1, sender="eve@globex.example"))
    mail_home.ok("sync")
    assert imap_records(mail_home) == 0
    mail_home.note(
        "globex/agreement.md",
        "---\ntype: agreement\ncontract: globex-app\nclient: Globex\nemails: [eve@globex.example]\n---\n# Globex\n",
    )
    mail_home.ok("sync")
    hits = json.loads(mail_home.ok("search", "word1", "--format", "json").out)
    assert [h["contract"] for h in hits] == ["globex-app"]


@pytest.mark.parametrize("how", ["password_file", "password_command"])
def test_password_from_a_file_or_a_command(
    home: CorrlogHome, clean_mailboxes: DovecotServer, how: str
) -> None:
    """The password can come from a file or from a command run without a shell."""
    secret_file = home.root / "imap-password"
    secret_file.write_text(clean_mailboxes.password("bob") + "\n")
    secret_file.chmod(0o600)
    home.note("acme/agreement.md", AGREEMENT_NOTE)
    clean_mailboxes.append("bob", "INBOX", message(3))
    source = (
        f'password_file = "{secret_file}"'
        if how == "password_file"
        else f'password_command = ["cat", "{secret_file}"]'
    )
    add_imap_account(home, clean_mailboxes, user="bob")
    text = home.config.read_text()
    text = text.replace(f'password = "{clean_mailboxes.password("bob")}"', source)
    home.config.write_text(text)
    result = home.run("sync")
    assert result.code == 0, result.stderr
    assert "imap work: 1 archived" in result.out


def test_password_file_readable_by_others_is_warned_about(
    home: CorrlogHome, clean_mailboxes: DovecotServer
) -> None:
    """A group/world-readable password file still works but gives a warning naming chmod."""
    secret_file = home.root / "imap-password"
    secret_file.write_text(clean_mailboxes.password("bob"))
    secret_file.chmod(0o644)
    add_imap_account(home, clean_mailboxes, user="bob")
    text = home.config.read_text().replace(
        f'password = "{clean_mailboxes.password("bob")}"', f'password_file = "{secret_file}"'
    )
    home.config.write_text(text)
    result = home.run("--log-format", "json", "sync")
    assert result.code == 0, result.stderr
    assert "chmod 600" in result.stderr


def test_non_ascii_password_is_a_clear_error(
    home: CorrlogHome, clean_mailboxes: DovecotServer
) -> None:
    """IMAP LOGIN cannot send non-ASCII: one line naming the account, exit 3, no traceback."""
    add_imap_account(
        home, clean_mailboxes, user=clean_mailboxes.throwaway_user(), password="pässwörd"
    )
    result = home.run("sync")
    assert result.code == 3
    assert "Traceback" not in result.stderr
    assert "non-ASCII" in result.stderr and "pässwörd" not in result.stderr
