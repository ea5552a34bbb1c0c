"""Notifiers: where a raised flag is announced (the log always; a command; email over SMTP)."""

from __future__ import annotations

import json
import smtplib
import ssl
import subprocess
from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any, Protocol

from corrlog.config import CommandNotifier, EmailNotifier, NotifySettings
from corrlog.errors import CorrlogError
from corrlog.logging import get_logger
from corrlog.rules.flags import Flag
from corrlog.secrets import read_secret_file, reveal, run_secret_command


class NotifyError(CorrlogError):
    """A notification could not be delivered."""


def flag_json(flag: Flag, *, event: str) -> dict[str, Any]:
    """The JSON a notifier receives for one flag."""
    return {
        "event": event,
        "contract": flag.contract,
        "flag": flag.name.value,
        "milestone": flag.milestone,
        "since": flag.since.isoformat(),
        "detail": flag.detail,
    }


class Notifier(Protocol):
    """Something that can announce a flag."""

    def send(self, flag: Flag, *, event: str) -> None:
        """Deliver one notification (raise NotifyError on failure)."""


class LogNotifier:
    """Write the flag to the log (always on)."""

    def send(self, flag: Flag, *, event: str) -> None:
        """Log one line."""
        get_logger(contract=flag.contract, flag=flag.name.value).warning(
            f"flag {event}", detail=flag.detail, since=flag.since.isoformat()
        )


class CommandRunner:
    """Run a program (no shell) with the flag as JSON on stdin."""

    def __init__(self, config: CommandNotifier) -> None:
        self.config = config

    def send(self, flag: Flag, *, event: str) -> None:
        """Run the command once."""
        data = json.dumps(flag_json(flag, event=event)).encode()
        name = self.config.command[0]
        try:
            proc = subprocess.run(
                self.config.command,
                input=data,
                capture_output=True,
                timeout=self.config.timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise NotifyError(f"notify command {name!r} failed: {exc.__class__.__name__}") from None
        if proc.returncode != 0:
            raise NotifyError(f"notify command {name!r} exited with {proc.returncode}")


class EmailSender:
    """Send mail through SMTP with verified TLS."""

    def __init__(self, config: EmailNotifier) -> None:
        self.config = config

    def _password(self) -> str | None:
        config, what = self.config, "notify.email"
        if config.password is not None:
            return reveal(config.password)
        if config.password_file is not None:
            return read_secret_file(config.password_file, what)
        if config.password_command is not None:
            return run_secret_command(config.password_command, what)
        return None

    def _connect(self) -> smtplib.SMTP:
        config = self.config
        context = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
        if config.tls == "implicit":
            return smtplib.SMTP_SSL(
                config.host, config.effective_port, timeout=config.timeout, context=context
            )
        smtp = smtplib.SMTP(config.host, config.effective_port, timeout=config.timeout)
        if config.tls == "starttls":
            smtp.starttls(context=context)
        return smtp

    def send_message(self, message: EmailMessage) -> None:
        """Deliver a prepared message to the configured recipients."""
        config = self.config
        message["From"] = config.sender
        message["To"] = ", ".join(config.to)
        message["Date"] = format_datetime(datetime.now().astimezone())
        message["Message-ID"] = make_msgid(domain="corrlog.invalid")
        where = f"{config.host}:{config.effective_port}"
        try:
            with self._connect() as smtp:
                password = self._password()
                if config.username and password is not None:
                    smtp.login(config.username, password)
                smtp.send_message(message)
        except NotifyError:
            raise
        except CorrlogError as exc:
            raise NotifyError(f"cannot send mail via {where}: {exc}") from None
        except smtplib.SMTPAuthenticationError:
            raise NotifyError(
                f"SMTP server {where} refused the login for {config.username!r}"
            ) from None
        except ssl.SSLCertVerificationError as exc:
            raise NotifyError(
                f"SMTP server {where}: TLS certificate not trusted ({exc.verify_message}); set ca_file"
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise NotifyError(f"cannot send mail via {where}: {exc.__class__.__name__}") from None

    def send(self, flag: Flag, *, event: str) -> None:
        """Mail one flag."""
        message = EmailMessage()
        message["Subject"] = f"[corrlog] {flag.contract}: {flag.name.value}"
        body = f"{flag.detail}\n\nContract: {flag.contract}\nFlag: {flag.name.value}\n"
        if flag.milestone:
            body += f"Milestone: {flag.milestone}\n"
        body += f"Since: {flag.since.isoformat()}\n"
        message.set_content(body)
        self.send_message(message)


def notifiers(settings: NotifySettings) -> Sequence[Notifier]:
    """The configured notifiers; the log notifier first and always."""
    found: list[Notifier] = [LogNotifier()]
    if settings.command is not None:
        found.append(CommandRunner(settings.command))
    if settings.email is not None:
        found.append(EmailSender(settings.email))
    return found
