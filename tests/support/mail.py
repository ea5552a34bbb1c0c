"""Build realistic test messages and configure corrlog homes for mail sources."""

from __future__ import annotations

import email.utils
import mailbox
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

from support.cli import CorrlogHome

ME = "me@freelancer.example"
CLIENT = "bob@acme.example"
FRIEND = "pal@personal.example"

AGREEMENT_NOTE = """---
type: agreement
contract: acme-site
client: Acme Corp
emails: ["@acme.example"]
start: 2026-01-01
---
# Acme website
Terms agreed.
"""


def message(
    n: int,
    *,
    sender: str = CLIENT,
    to: str = ME,
    subject: str | None = None,
    body: str | None = None,
    when: datetime | None = None,
    message_id: str | None = None,
    in_reply_to: str | None = None,
) -> bytes:
    """A plain-text message with a unique Message-ID and a unique word `wordN`."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject if subject is not None else f"Project note {n}"
    date = when or datetime(2026, 3, 1, 9, 0, tzinfo=UTC) + timedelta(hours=n)
    msg["Date"] = email.utils.format_datetime(date)
    msg["Message-ID"] = message_id or f"<m{n}.{abs(hash(sender)) % 9999}@test.example>"
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = in_reply_to
    msg.set_content(
        body if body is not None else f"Hello, this is message word{n} about the site.\n"
    )
    return bytes(msg)


def add_imap_account(
    home: CorrlogHome,
    server: object,
    *,
    name: str = "work",
    user: str = "alice",
    password: str | None = None,
    tls: str = "implicit",
    ca: bool = True,
    folders: list[str] | None = None,
    batch_size: int = 100,
) -> None:
    """Append an `[[imap]]` table for a test Dovecot user to the home's config."""
    port = server.tls_port if tls == "implicit" else server.port  # type: ignore[attr-defined]
    secret = password if password is not None else server.password(user)  # type: ignore[attr-defined]
    lines = [
        "",
        "[[imap]]",
        f'name = "{name}"',
        'host = "127.0.0.1"',
        f"port = {port}",
        f'tls = "{tls}"',
        f'username = "{user}"',
        f'password = "{secret}"',
        f"batch_size = {batch_size}",
    ]
    if ca:
        lines.append(f'ca_file = "{server.ca_file}"')  # type: ignore[attr-defined]
    if folders is not None:
        lines.append("folders = [" + ", ".join(f'"{f}"' for f in folders) + "]")
    with home.config.open("a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


def set_me(home: CorrlogHome, address: str = ME) -> None:
    """Set `me` in the home's config."""
    text = home.config.read_text().replace("me = []", f'me = ["{address}"]')
    home.config.write_text(text)


def write_maildir(path: Path, messages: list[bytes]) -> None:
    """Deliver messages into a Maildir (created if needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    box = mailbox.Maildir(str(path), create=True)
    for raw in messages:
        box.add(raw)
