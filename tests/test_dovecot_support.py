"""The test Dovecot (tests/support/dovecot.py) behaves like the real server tests rely on."""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path

import imapclient
import pytest
from imapclient.exceptions import LoginError

import support.dovecot
from support.dovecot import DovecotServer, _process_group_members

pytestmark = pytest.mark.imap

MESSAGE = (
    b"From: Client <client@example.test>\r\n"
    b"To: alice@example.test\r\n"
    b"Subject: Milestone 2 approved\r\n"
    b"Message-ID: <m2@example.test>\r\n"
    b"Date: Mon, 03 Mar 2025 10:00:00 +0000\r\n"
    b"\r\n"
    b"Approved, releasing escrow.\r\n"
)


def _wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def test_login_and_select_inbox(dovecot: DovecotServer) -> None:
    with dovecot.client("alice") as client:
        info = client.select_folder("INBOX")
        assert b"EXISTS" in info
        assert b"UIDVALIDITY" in info
        assert client.has_capability("UIDPLUS")
        assert client.has_capability("IDLE")


def test_append_returns_the_uids_that_uids_lists(clean_mailboxes: DovecotServer) -> None:
    server = clean_mailboxes
    appended = [server.append("alice", "INBOX", MESSAGE) for _ in range(3)]
    assert appended == sorted(set(appended))
    assert server.uids("alice", "INBOX") == appended
    sent = server.append("alice", "Sent", MESSAGE, flags=(b"\\Seen",))
    assert server.uids("alice", "Sent") == [sent]
    assert server.flags("alice", "Sent") == {sent: (b"\\Seen",)}


def test_clean_mailboxes_empties_between_tests(clean_mailboxes: DovecotServer) -> None:
    server = clean_mailboxes
    server.create_folder("bob", "Clients/Acme")
    server.append("bob", "Clients/Acme", MESSAGE)
    server.append("bob", "INBOX", MESSAGE)
    server.reset("bob")
    assert server.uids("bob", "INBOX") == []
    assert sorted(server.folders("bob")) == ["Archive", "INBOX", "Sent"]


def test_body_peek_does_not_set_seen(clean_mailboxes: DovecotServer) -> None:
    server = clean_mailboxes
    uid = server.append("alice", "INBOX", MESSAGE)
    with server.client("alice") as client:
        client.select_folder("INBOX")  # read-write: a plain BODY[] would set \Seen
        data = client.fetch([uid], ["BODY.PEEK[]"])
        assert data[uid][b"BODY[]"] == MESSAGE
    assert b"\\Seen" not in server.flags("alice", "INBOX")[uid]
    # ...whereas BODY[] does, so flags() really observes the server's state.
    with server.client("alice") as client:
        client.select_folder("INBOX")
        client.fetch([uid], ["BODY[]"])
    assert b"\\Seen" in server.flags("alice", "INBOX")[uid]


def test_implicit_tls_verifies_with_ca_file(dovecot: DovecotServer) -> None:
    context = ssl.create_default_context(cafile=str(dovecot.ca_file))
    with imapclient.IMAPClient(
        dovecot.host, port=dovecot.tls_port, ssl=True, ssl_context=context, timeout=10
    ) as client:
        client.login("alice", dovecot.password("alice"))
        client.select_folder("INBOX", readonly=True)


def test_implicit_tls_without_ca_file_fails_verification(dovecot: DovecotServer) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        imapclient.IMAPClient(
            dovecot.host,
            port=dovecot.tls_port,
            ssl=True,
            ssl_context=ssl.create_default_context(),
            timeout=10,
        )


def test_starttls_with_ca_file(dovecot: DovecotServer) -> None:
    client = imapclient.IMAPClient(dovecot.host, port=dovecot.port, ssl=False, timeout=10)
    try:
        assert client.has_capability("STARTTLS")
        client.starttls(dovecot.ssl_context())
        client.login("bob", dovecot.password("bob"))
        client.select_folder("INBOX", readonly=True)
    finally:
        client.logout()


def test_starttls_without_ca_file_fails_verification(dovecot: DovecotServer) -> None:
    client = imapclient.IMAPClient(dovecot.host, port=dovecot.port, ssl=False, timeout=10)
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            client.starttls(ssl.create_default_context())
    finally:
        with contextlib.suppress(OSError):  # the failed handshake already closed it
            client.shutdown()


def test_recreating_a_folder_changes_uidvalidity(clean_mailboxes: DovecotServer) -> None:
    server = clean_mailboxes
    server.create_folder("alice", "Clients")
    before = server.uidvalidity("alice", "Clients")
    server.delete_folder("alice", "Clients")
    server.create_folder("alice", "Clients")
    assert server.uidvalidity("alice", "Clients") != before


def test_sent_and_archive_are_special_use(dovecot: DovecotServer) -> None:
    with dovecot.client("carol") as client:
        listed = {name: flags for flags, _delim, name in client.list_folders()}
        assert b"\\Sent" in listed["Sent"]
        assert b"\\Archive" in listed["Archive"]
        assert client.find_special_folder(b"\\Sent") == "Sent"
        subscribed = {name for _flags, _delim, name in client.list_sub_folders()}
        assert {"Sent", "Archive"} <= subscribed


def test_wrong_password_fails_fast(dovecot: DovecotServer) -> None:
    user = dovecot.throwaway_user()
    client = imapclient.IMAPClient(dovecot.host, port=dovecot.port, ssl=False, timeout=10)
    try:
        started = time.monotonic()
        with pytest.raises(LoginError):
            client.login(user, dovecot.password(user) + "-wrong")
        assert time.monotonic() - started < 1.0
    finally:
        client.shutdown()
    assert dovecot.throwaway_user() != user
    # No authentication penalty for the next login from the same IP either.
    started = time.monotonic()
    dovecot.client("carol").logout()
    assert time.monotonic() - started < 1.0


def test_idle_sees_append_from_another_connection(clean_mailboxes: DovecotServer) -> None:
    server = clean_mailboxes
    with server.client("alice") as watcher:
        watcher.select_folder("INBOX", readonly=True)
        watcher.idle()
        try:
            uid = server.append("alice", "INBOX", MESSAGE)
            deadline = time.monotonic() + 5.0
            responses: list[tuple[object, ...]] = []
            while time.monotonic() < deadline:
                responses += watcher.idle_check(timeout=0.2)
                if any(r[1:2] == (b"EXISTS",) for r in responses):
                    break
        finally:
            watcher.idle_done()
    assert any(r[1:2] == (b"EXISTS",) for r in responses), responses
    assert server.uids("alice", "INBOX") == [uid]


def test_logs_show_logins_but_never_passwords(dovecot: DovecotServer) -> None:
    dovecot.client("carol").logout()
    assert _wait_until(lambda: "user=<carol>" in dovecot.log_text())
    log = dovecot.log_text()
    for user in dovecot.users:
        assert dovecot.password(user) not in log


def test_kill_then_restart_keeps_mail_and_ports(dovecot_fresh: DovecotServer) -> None:
    server = dovecot_fresh
    uid = server.append("alice", "INBOX", MESSAGE)
    validity = server.uidvalidity("alice", "INBOX")
    port, tls_port, pgid = server.port, server.tls_port, server.pid
    assert pgid is not None

    server.kill()
    assert not server.running
    assert _process_group_members(pgid) == []
    assert not _port_open(server.host, port)

    server.restart()
    assert (server.port, server.tls_port) == (port, tls_port)
    assert server.uids("alice", "INBOX") == [uid]
    assert server.uidvalidity("alice", "INBOX") == validity
    assert server.append("alice", "INBOX", MESSAGE) > uid


def test_stop_leaves_no_processes_and_restart_works(dovecot_fresh: DovecotServer) -> None:
    server = dovecot_fresh
    pgid = server.pid
    assert pgid is not None
    with server.client("bob") as client:  # an open mail session must not block stop()
        client.select_folder("INBOX")
        server.stop()
    assert _process_group_members(pgid) == []
    server.start()
    with server.client("bob") as client:
        client.select_folder("INBOX")


def test_missing_dovecot_fails_instead_of_skipping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(support.dovecot, "DOVECOT_BIN", Path("/nonexistent/sbin/dovecot"))
    with pytest.raises(pytest.fail.Exception, match=r"scripts/ensure-dovecot\.sh"):
        support.dovecot._start_or_fail()
