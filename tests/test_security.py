"""Security: no secret in any output or file, private permissions, verified TLS, no shell anywhere."""

from __future__ import annotations

import base64
import contextlib
import json
import shlex
import socket
import ssl
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from support.cli import CorrlogHome, Result
from support.daemon import wait_for
from support.dovecot import DovecotServer
from support.faults import (
    daemon_config,
    events,
    run_cli,
    spawn_daemon,
    stop,
    tail,
    wait_ready,
)
from support.mail import (
    AGREEMENT_NOTE,
    CLIENT,
    ME,
    add_imap_account,
    message,
    set_me,
    write_maildir,
)
from support.smtp import PASSWORD as SMTP_PASSWORD
from support.smtp import USER as SMTP_USER
from support.smtp import SmtpServer

OAUTH_TOKEN = "ya29.Known-OAuth-Token-For-The-Leak-Test-7f3a9c"
WRONG_IMAP_PASSWORD = "Wr0ng-Imap-Secret-For-The-Leak-Test"
WRONG_SMTP_PASSWORD = "Wr0ng-Smtp-Secret-For-The-Leak-Test"


# Secrets never leak ---------------------------------------------------------------------------


def _forms(user: str, secret: str) -> dict[str, bytes]:
    """The ways a secret could show up: plain, base64, AUTH PLAIN and JSON-escaped."""
    raw = secret.encode()
    return {
        "plain": raw,
        "base64": base64.b64encode(raw),
        "AUTH PLAIN": base64.b64encode(b"\0" + user.encode() + b"\0" + raw),
        "json": json.dumps(secret).encode()[1:-1],
    }


def _account(home: CorrlogHome, server: DovecotServer, name: str, user: str, source: str) -> None:
    """Append an [[imap]] table whose secret comes from `source` (a TOML key = value line)."""
    text = (
        f'\n[[imap]]\nname = "{name}"\nhost = "127.0.0.1"\nport = {server.tls_port}\n'
        f'ca_file = "{server.ca_file}"\nusername = "{user}"\n{source}\n'
    )
    home.config.write_text(home.config.read_text() + text)


@dataclass
class Capture:
    """Everything the commands printed, with the command that printed it."""

    outputs: list[tuple[str, bytes]] = field(default_factory=list)

    def add(self, label: str, result: Result) -> Result:
        self.outputs.append((f"{label} (stdout)", result.stdout))
        self.outputs.append((f"{label} (stderr)", result.stderr.encode()))
        return result


@pytest.mark.slow
@pytest.mark.imap
def test_no_secret_reaches_any_output_log_or_file(
    home: CorrlogHome, clean_mailboxes: DovecotServer, smtp_server: SmtpServer
) -> None:
    """IMAP passwords (inline, file, command), an OAuth token and SMTP passwords, right and wrong, appear in no output, log line or data file."""
    server = clean_mailboxes
    set_me(home)
    home.note("acme/agreement.md", AGREEMENT_NOTE)
    daemon_config(home, poll="1h")
    secrets_dir = home.root / "secrets"
    secrets_dir.mkdir(mode=0o700)
    (secrets_dir / "bob").write_text(server.password("bob") + "\n")
    (secrets_dir / "carol").write_text(server.password("carol") + "\n")
    (secrets_dir / "token").write_text(OAUTH_TOKEN + "\n")
    for path in secrets_dir.iterdir():
        path.chmod(0o600)
    add_imap_account(home, server, name="inline", user="alice")
    _account(home, server, "fromfile", "bob", f'password_file = "{secrets_dir / "bob"}"')
    _account(
        home, server, "fromcommand", "carol",
        f'password_command = ["cat", "{secrets_dir / "carol"}"]',
    )  # fmt: skip
    wrong_user = server.throwaway_user()
    _account(home, server, "wrongpw", wrong_user, f'password = "{WRONG_IMAP_PASSWORD}"')
    _account(
        home, server, "oauth", "alice",
        f'oauth2_token_command = ["cat", "{secrets_dir / "token"}"]',
    )  # fmt: skip
    config = home.config.read_text()
    config += (
        f'\n[notify.email]\nhost = "127.0.0.1"\nport = {smtp_server.port}\ntls = "none"\n'
        f'username = "{SMTP_USER}"\npassword = "{SMTP_PASSWORD}"\n'
        f'from = "corrlog@freelancer.example"\nto = ["{ME}"]\ntimeout = 5\n'
    )
    home.config.write_text(config)
    for n, user in enumerate(("alice", "bob", "carol")):
        server.append(user, "INBOX", message(n, sender=CLIENT, to=ME))

    capture = Capture()
    first = capture.add("sync -vv json", run_cli(home, "-vv", "sync"))
    assert first.code == 3, first.stderr[-3000:]  # the wrong password and the OAuth account fail
    for name in ("inline", "fromfile", "fromcommand"):
        assert f"imap {name}: 1 archived" in first.out, first.out
    assert smtp_server.inbox.logins, "the SMTP notifier never logged in"
    capture.add("sync -vv console", home.run("--log-format", "console", "-vv", "sync"))
    capture.add("doctor", home.run("-vv", "doctor"))
    capture.add("digest --send", home.run("-vv", "digest", "--send"))
    log = home.root / "daemon.log"
    daemon = spawn_daemon(home, log, options=("-vv",))
    try:
        wait_ready(daemon, log, 90)
        wait_for(lambda: len(events(log, "imap sync failed")) >= 2, 30, "failing accounts tried")
    finally:
        assert stop(daemon) == 0, tail(log)
    capture.add("status", home.run("status", "--format", "json"))
    home.config.write_text(home.config.read_text().replace(SMTP_PASSWORD, WRONG_SMTP_PASSWORD))
    refused = capture.add("digest --send, wrong SMTP password", home.run("digest", "--send"))
    assert refused.code != 0 and refused.stderr.startswith("corrlog: error:"), refused.stderr

    secrets = {
        "IMAP password (inline)": ("alice", server.password("alice")),
        "IMAP password (password_file)": ("bob", server.password("bob")),
        "IMAP password (password_command)": ("carol", server.password("carol")),
        "wrong IMAP password": (wrong_user, WRONG_IMAP_PASSWORD),
        "OAuth token": ("alice", OAUTH_TOKEN),
        "SMTP password": (SMTP_USER, SMTP_PASSWORD),
        "wrong SMTP password": (SMTP_USER, WRONG_SMTP_PASSWORD),
    }
    places = list(capture.outputs)
    places.append(("daemon log", log.read_bytes()))
    skip = {home.config, *secrets_dir.iterdir()}
    files = [p for p in home.root.rglob("*") if p.is_file() and p not in skip]
    places += [(str(p.relative_to(home.root)), p.read_bytes()) for p in files]
    leaks = [
        f"{what} ({form}) in {where}"
        for what, (user, secret) in secrets.items()
        for form, needle in _forms(user, secret).items()
        for where, data in places
        if needle in data
    ]
    lines = sum(data.count(b"\n") for _where, data in places)
    print(
        f"\nfigures: secrets={len(secrets)}, forms=4, places={len(places)}, "
        f"files={len(files)}, lines={lines}, leaks={len(leaks)}"
    )
    assert leaks == []


# Private files whatever the umask ------------------------------------------------------------


def _loose(paths: list[Path]) -> list[str]:
    """Files not 0600 and folders not 0700, as 'mode path' strings."""
    found = []
    for path in paths:
        if path.is_symlink():
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        wanted = 0o700 if path.is_dir() else 0o600
        if mode & 0o077 or (path.is_dir() and mode != wanted):
            found.append(f"{mode:04o} {path}")
    return found


@pytest.mark.slow
def test_files_and_folders_are_private_even_under_umask_000(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """init, sync, reindex, the daemon, digest and export run under umask 000 create only 0600 files and 0700 folders."""
    root = tmp_path_factory.mktemp("umask")
    root.chmod(0o755)
    home = CorrlogHome(
        root, root / "config" / "corrlog.toml", root / "data", root / "data" / "notes"
    )
    init = run_cli(home, "init", "--data-dir", str(home.data), umask=0)
    assert init.code == 0, init.stderr
    mine = {home.notes / "acme", home.notes / "acme" / "agreement.md"}
    home.note("acme/agreement.md", AGREEMENT_NOTE)
    maildir = root / "maildir"
    write_maildir(maildir, [message(n) for n in range(5)])
    home.config.write_text(
        home.config.read_text() + f'\n[[maildir]]\nname = "box"\npath = "{maildir}"\n'
    )
    daemon_config(home, poll="1h")
    out = root / "out"
    out.mkdir()
    out.chmod(0o777)
    steps = [
        ("sync",),
        ("reindex",),
        ("digest", "--format", "html", "--out", str(out / "digest.html")),
        ("export", "acme-site", "--out", str(out / "pack")),
        ("verify",),
    ]
    for args in steps:
        result = run_cli(home, *args, umask=0)
        assert result.code == 0, (args, result.stderr[-2000:])
    log = root / "daemon.log"
    daemon = spawn_daemon(home, log, umask=0)
    try:
        wait_ready(daemon, log, 60)
        home.note("acme/later.md", "# Later\nWritten while the daemon runs.\n")
        mine |= {home.notes / "acme" / "later.md"}
        wait_for(lambda: (home.data / "status.json").exists(), 30, "status.json")
    finally:
        assert stop(daemon) == 0
    created = [
        p
        for p in [home.data, *home.data.rglob("*"), home.config.parent, home.config]
        if p not in mine
    ]
    created += [out / "digest.html", out / "pack", *(out / "pack").rglob("*")]
    loose = _loose(created)
    print(f"\nfigures: paths checked={len(created)}, loose={len(loose)}")
    assert loose == []


# TLS is verified, with a clear message --------------------------------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {done.stderr}")


@dataclass(frozen=True)
class Certificates:
    """A private CA and two server certificates it signed: one expired, one for another host."""

    ca: Path
    key: Path
    expired: Path
    wrong_host: Path


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """Made with openssl: a CA, an expired certificate for 127.0.0.1, a valid one for another host."""
    where = tmp_path_factory.mktemp("certs")
    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    try:
        _openssl(
            "req", "-x509", *curve, "-days", "2", "-subj", "/CN=corrlog test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign",
            "-keyout", "ca.key", "-out", "ca.pem", cwd=where,
        )  # fmt: skip
        _openssl("req", "-new", *curve, "-subj", "/CN=server", "-keyout", "server.key",
                 "-out", "server.csr", cwd=where)  # fmt: skip
        for name, days, san in (
            ("expired", "-1", "IP:127.0.0.1,DNS:localhost"),
            ("wrong-host", "2", "DNS:mail.other.example"),
        ):
            (where / f"{name}.ext").write_text(f"subjectAltName={san}\n")
            _openssl(
                "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", days, "-extfile", f"{name}.ext",
                "-out", f"{name}.pem", cwd=where,
            )  # fmt: skip
    except (FileNotFoundError, RuntimeError) as exc:
        pytest.skip(f"cannot make test certificates with openssl: {exc}")
    return Certificates(
        where / "ca.pem", where / "server.key", where / "expired.pem", where / "wrong-host.pem"
    )


class TinyTlsServer:
    """A loopback server speaking just enough IMAP or SMTP to reach (and record) the TLS handshake."""

    def __init__(self, cert: Path, key: Path, protocol: str, starttls: bool) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.protocol, self.starttls = protocol, starttls
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = int(self.sock.getsockname()[1])
        self.handshakes: list[str] = []
        self.plaintext: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="tiny-tls-server")

    def __enter__(self) -> TinyTlsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _peer = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                try:
                    self._talk(conn)
                except (OSError, ssl.SSLError) as exc:
                    self.handshakes.append(f"failed: {exc.__class__.__name__}")

    def _line(self, conn: socket.socket) -> bytes:
        data = b""
        while not data.endswith(b"\n"):
            chunk = conn.recv(1)
            if not chunk:
                raise ConnectionError("client closed")
            data += chunk
        self.plaintext.append(data)
        return data

    def _talk(self, conn: socket.socket) -> None:
        if self.starttls:
            self._until_starttls(conn)
        with self.context.wrap_socket(conn, server_side=True) as tls:
            self.handshakes.append("ok")
            tls.sendall(b"* OK ready\r\n" if self.protocol == "imap" else b"220 ready\r\n")

    def _until_starttls(self, conn: socket.socket) -> None:
        if self.protocol == "imap":
            conn.sendall(b"* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] tiny\r\n")
            while True:
                tag, _, command = self._line(conn).strip().partition(b" ")
                if command.upper() == b"CAPABILITY":
                    conn.sendall(
                        b"* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\n" + tag + b" OK done\r\n"
                    )
                elif command.upper() == b"STARTTLS":
                    conn.sendall(tag + b" OK begin TLS\r\n")
                    return
                else:
                    conn.sendall(tag + b" BAD only STARTTLS here\r\n")
        conn.sendall(b"220 tiny ESMTP\r\n")
        while True:
            command = self._line(conn).strip().upper()
            if command.startswith((b"EHLO", b"HELO")):
                conn.sendall(b"250-tiny\r\n250-STARTTLS\r\n250 AUTH PLAIN LOGIN\r\n")
            elif command == b"STARTTLS":
                conn.sendall(b"220 go ahead\r\n")
                return
            else:
                conn.sendall(b"530 STARTTLS first\r\n")


@contextlib.contextmanager
def tiny_server(cert: Path, key: Path, protocol: str, starttls: bool) -> Iterator[TinyTlsServer]:
    """Run a TinyTlsServer for the duration of the block."""
    with TinyTlsServer(cert, key, protocol, starttls) as server:
        yield server


PROBLEMS = {"expired": "certificate has expired", "wrong-host": "not valid for '127.0.0.1'"}
MODES = {
    "imap default (implicit)": ("imap", None),
    "imap starttls": ("imap", "starttls"),
    "smtp default (starttls)": ("smtp", None),
    "smtp implicit": ("smtp", "implicit"),
}


@pytest.mark.parametrize("problem", list(PROBLEMS))
@pytest.mark.parametrize("mode", list(MODES))
def test_bad_certificates_are_refused_with_a_clear_message(
    home: CorrlogHome, certificates: Certificates, mode: str, problem: str
) -> None:
    """With verification on by default, an expired or wrong-host certificate (from a trusted CA) is refused in one line naming the reason; nothing is sent in clear."""
    protocol, tls = MODES[mode]
    cert = certificates.expired if problem == "expired" else certificates.wrong_host
    set_me(home)
    home.note("acme/agreement.md", AGREEMENT_NOTE)
    if protocol == "smtp":
        home.ok("sync")  # the digest needs an archive; no notifier configured yet
    with tiny_server(cert, certificates.key, protocol, starttls=tls == "starttls" or (
        protocol == "smtp" and tls is None
    )) as server:  # fmt: skip
        tls_line = f'tls = "{tls}"\n' if tls else ""
        if protocol == "imap":
            home.config.write_text(
                home.config.read_text()
                + f'\n[[imap]]\nname = "remote"\nhost = "127.0.0.1"\nport = {server.port}\n'
                f'{tls_line}username = "me"\npassword = "Not-Sent-Imap-Secret"\n'
                f'ca_file = "{certificates.ca}"\n'
            )
            result = home.run("sync")
        else:
            home.config.write_text(
                home.config.read_text()
                + f'\n[notify.email]\nhost = "127.0.0.1"\nport = {server.port}\n{tls_line}'
                f'username = "me"\npassword = "Not-Sent-Smtp-Secret"\n'
                f'ca_file = "{certificates.ca}"\nfrom = "c@freelancer.example"\nto = ["{ME}"]\n'
            )
            result = home.run("digest", "--send")
        wait_for(lambda: server.handshakes, 10, "the handshake attempt")
    errors = [line for line in result.stderr.splitlines() if line.startswith("corrlog: error:")]
    print(f"\n{mode}, {problem}: {errors}")
    assert result.code != 0
    assert "Traceback" not in result.stderr
    assert len(errors) == 1, result.stderr[-2000:]
    assert "certificate" in errors[0] and PROBLEMS[problem] in errors[0]
    assert "ok" not in server.handshakes
    sent = b"".join(server.plaintext).upper()
    assert b"LOGIN " not in sent and b"AUTH" not in sent and b"NOT-SENT" not in sent


# No shell, ever ---------------------------------------------------------------------------------

SHELL_TRICKS = (
    "cat {secret}; touch {pwned}",
    "cat {secret} && touch {pwned}",
    "cat {secret} | touch {pwned}",
    "$(touch {pwned})",
    "`touch {pwned}`",
    "cat {secret}\ntouch {pwned}",
)


@pytest.mark.imap
@pytest.mark.parametrize(
    "trick", SHELL_TRICKS, ids=["semicolon", "and", "pipe", "dollar", "backtick", "newline"]
)
def test_password_command_runs_without_a_shell(
    home: CorrlogHome, clean_mailboxes: DovecotServer, trick: str
) -> None:
    """A password_command string with shell syntax is split into arguments, never run by a shell: the side effect never happens."""
    pwned = home.root / "PWNED"
    secret = home.root / "secret"
    secret.write_text(clean_mailboxes.password("bob"))
    add_imap_account(home, clean_mailboxes, user="bob")
    command = trick.format(secret=secret, pwned=pwned)
    home.config.write_text(
        home.config.read_text().replace(
            f'password = "{clean_mailboxes.password("bob")}"',
            f"password_command = {json.dumps(command)}",
        )
    )
    result = home.run("sync")
    assert "Traceback" not in result.stderr
    assert result.code in (0, 3), result.stderr
    assert not pwned.exists()


RECORDER = """\
import json, sys
with open(sys.argv[1], "a") as out:
    out.write(json.dumps({"argv": sys.argv[2:], "stdin": sys.stdin.read()}) + "\\n")
"""


def test_notify_command_gets_mail_content_on_stdin_only(home: CorrlogHome) -> None:
    """The command notifier runs without a shell; shell syntax in its config and in mail subjects and bodies never becomes a command line."""
    pwned = home.root / "PWNED"
    recorder = home.root / "recorder.py"
    recorder.write_text(RECORDER)
    record = home.root / "calls.jsonl"
    set_me(home)
    home.note("acme/agreement.md", AGREEMENT_NOTE)
    hostile = f"$(touch {pwned}); `touch {pwned}` | touch {pwned} && rm -rf ~"
    write_maildir(
        home.data / "maildir",
        [message(1, sender=CLIENT, subject=hostile, body=hostile)],
    )
    configured = f"{shlex.quote(sys.executable)} {recorder} {record} ; touch {pwned}"
    home.config.write_text(
        home.config.read_text() + f"\n[notify.command]\ncommand = {json.dumps(configured)}\n"
    )
    result = home.run("sync")
    assert result.code == 0, result.stderr
    calls = [json.loads(line) for line in record.read_text().splitlines()]
    assert calls, "the notifier was never called (no flag raised?)"
    assert all(call["argv"] == [";", "touch", str(pwned)] for call in calls)
    assert all(json.loads(call["stdin"])["contract"] == "acme-site" for call in calls)
    assert not pwned.exists()


# Message-ID reuse ---------------------------------------------------------------------------


def test_a_reused_message_id_cannot_hide_a_later_message(home: CorrlogHome) -> None:
    """A forged message carrying the Message-ID of a later genuine one does not hide it: both are searchable."""
    set_me(home)
    home.note("acme/agreement.md", AGREEMENT_NOTE)
    shared = "<approval-7@acme.example>"
    forged = message(1, subject="Cancelled", body="We cancel; no payment. zebra", message_id=shared)
    genuine = message(
        2, subject="Approved", body="We approve milestone 2. giraffe", message_id=shared
    )
    write_maildir(home.data / "maildir", [forged])
    home.ok("sync")
    write_maildir(home.data / "maildir", [genuine])
    home.ok("sync")
    assert len(home.ok("search", "zebra", "--format", "ids").out.split()) == 1
    assert len(home.ok("search", "giraffe", "--format", "ids").out.split()) == 1
