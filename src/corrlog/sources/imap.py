"""The IMAP source: connect (TLS verified), list folders, and fetch by UID without setting \\Seen."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import imapclient
from imapclient.exceptions import IMAPClientError, LoginError

from corrlog.config import ImapAccount
from corrlog.errors import AuthError, ConnectError, SourceError
from corrlog.secrets import read_secret_file, reveal, run_secret_command

HEADER_FIELDS = "FROM TO CC REPLY-TO SUBJECT MESSAGE-ID DATE IN-REPLY-TO REFERENCES"
_HEADER_ITEM = f"BODY.PEEK[HEADER.FIELDS ({HEADER_FIELDS})]"


@dataclass(frozen=True, slots=True)
class FolderState:
    """A selected folder's identity and size."""

    name: str
    uidvalidity: int
    exists: int


def _credentials(account: ImapAccount) -> tuple[str, bool]:
    """(secret, is_oauth_token) for an account, fetched fresh on every connect."""
    what = f"imap account {account.name!r}"
    if account.password is not None:
        return reveal(account.password), False
    if account.password_file is not None:
        return read_secret_file(account.password_file, what), False
    if account.password_command is not None:
        return run_secret_command(account.password_command, what), False
    assert account.oauth2_token_command is not None
    return run_secret_command(account.oauth2_token_command, what), True


def ssl_context(account: ImapAccount) -> ssl.SSLContext:
    """A verifying TLS context (the system CAs, or the account's `ca_file`)."""
    cafile = str(account.ca_file) if account.ca_file else None
    try:
        return ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as exc:
        raise SourceError(
            f"imap account {account.name!r}: cannot load ca_file {cafile}: {exc}"
        ) from None


class ImapConnection:
    """One logged-in connection to an account; use as a context manager."""

    def __init__(self, account: ImapAccount) -> None:
        self.account = account
        self.client: Any = None
        self.select_name = ""

    def _where(self) -> str:
        return f"imap account {self.account.name!r} ({self.account.host}:{self.account.effective_port})"

    def __enter__(self) -> ImapConnection:
        self.client = self._connect()
        try:
            self._login()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Log out (or just drop the socket when that fails)."""
        if self.client is None:
            return
        with contextlib.suppress(Exception):
            self.client.logout()
        with contextlib.suppress(Exception):
            self.client.shutdown()
        self.client = None

    def _connect(self) -> Any:
        account = self.account
        context = ssl_context(account) if account.tls != "none" else None
        try:
            client = imapclient.IMAPClient(
                account.host,
                port=account.effective_port,
                ssl=account.tls == "implicit",
                ssl_context=context,
                timeout=account.timeout,
            )
            if account.tls == "starttls":
                client.starttls(context)
        except ssl.SSLCertVerificationError as exc:
            raise ConnectError(
                f"{self._where()}: the server's TLS certificate is not trusted ({exc.verify_message}); "
                "if it uses a private CA, set ca_file to its certificate"
            ) from None
        except ssl.SSLError as exc:
            raise ConnectError(f"{self._where()}: TLS failed ({exc.reason or exc})") from None
        except TimeoutError:
            raise ConnectError(
                f"{self._where()}: no answer within {account.timeout:.0f}s"
            ) from None
        except (OSError, IMAPClientError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or exc.__class__.__name__
            raise ConnectError(f"{self._where()}: cannot connect: {reason}") from None
        client.normalise_times = False
        return client

    def _login(self) -> None:
        secret, oauth = _credentials(self.account)
        try:
            if oauth:
                self.client.oauth2_login(self.account.username, secret)
            else:
                self.client.login(self.account.username, secret)
        except UnicodeEncodeError:
            raise AuthError(
                f"{self._where()}: the password has non-ASCII characters, which IMAP LOGIN cannot "
                "send; use an app password or oauth2_token_command"
            ) from None
        except LoginError:
            raise AuthError(
                f"{self._where()}: login refused for user {self.account.username!r}; check the password"
            ) from None
        except (OSError, IMAPClientError) as exc:
            raise ConnectError(
                f"{self._where()}: connection lost during login ({exc.__class__.__name__})"
            ) from None

    def folders(self) -> list[str]:
        """The configured folders, else INBOX plus the folder flagged \\Sent."""
        if self.account.folders:
            return list(self.account.folders)
        found = ["INBOX"]
        for flags, _delimiter, name in self._call(self.client.list_folders):
            if b"\\Sent" in flags and name not in found:
                found.append(name)
        return found

    def select(self, folder: str) -> FolderState:
        """Select a folder read-only (so nothing we do can change flags)."""
        try:
            info = self.client.select_folder(folder, readonly=True)
        except (TimeoutError, OSError) as exc:
            raise ConnectError(
                f"{self._where()}: connection lost ({exc.__class__.__name__})"
            ) from None
        except IMAPClientError as exc:
            raise SourceError(f"{self._where()}: cannot open folder {folder!r}: {exc}") from None
        self.select_name = folder
        return FolderState(folder, int(info[b"UIDVALIDITY"]), int(info.get(b"EXISTS", 0)))

    def uids_after(self, last_uid: int) -> list[int]:
        """UIDs greater than `last_uid`, ascending."""
        found = self._call(self.client.search, ["UID", f"{last_uid + 1}:*"])
        return sorted(uid for uid in found if uid > last_uid)

    def uids_upto(self, last_uid: int) -> list[int]:
        """UIDs up to and including `last_uid`, ascending (for rescans)."""
        if last_uid < 1:
            return []
        return sorted(self._call(self.client.search, ["UID", f"1:{last_uid}"]))

    def headers(self, uids: Sequence[int]) -> dict[int, bytes]:
        """The capture-relevant header fields of each message (BODY.PEEK: no \\Seen)."""
        if not uids:
            return {}
        data = self._call(self.client.fetch, list(uids), [_HEADER_ITEM])
        result = {}
        for uid, fields in data.items():
            raw = next((v for k, v in fields.items() if k.startswith(b"BODY[")), b"")
            result[uid] = raw or b""
        return result

    def messages(self, uids: Sequence[int]) -> Iterator[tuple[int, bytes, datetime | None]]:
        """(uid, whole message, INTERNALDATE) via BODY.PEEK[] — never sets \\Seen."""
        if not uids:
            return
        data = self._call(self.client.fetch, list(uids), ["BODY.PEEK[]", "INTERNALDATE"])
        for uid in sorted(data):
            fields = data[uid]
            raw = fields.get(b"BODY[]")
            if raw is None:
                continue
            yield uid, bytes(raw), fields.get(b"INTERNALDATE")

    def _call(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except TimeoutError:
            raise ConnectError(f"{self._where()}: the server stopped answering") from None
        except (OSError, IMAPClientError) as exc:
            raise ConnectError(f"{self._where()}: {exc.__class__.__name__}: {exc}") from None


def iter_batches(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    """Consecutive slices of at most `size` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
