"""systemd's sd_notify datagram protocol (READY=1, STATUS=…, WATCHDOG=1), spoken directly."""

from __future__ import annotations

import socket
from collections.abc import Mapping


class SystemdNotifier:
    """Send state lines to $NOTIFY_SOCKET; a no-op when not run by systemd."""

    def __init__(self, address: str | None, watchdog_usec: int | None = None) -> None:
        self._address = address
        self.watchdog_interval = watchdog_usec / 2_000_000 if watchdog_usec else None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> SystemdNotifier:
        """Read NOTIFY_SOCKET and WATCHDOG_USEC (passed in, never read at import)."""
        usec = environ.get("WATCHDOG_USEC", "")
        return cls(environ.get("NOTIFY_SOCKET") or None, int(usec) if usec.isdigit() else None)

    @property
    def enabled(self) -> bool:
        """Whether systemd is listening."""
        return self._address is not None

    def notify(self, *lines: str) -> None:
        """Send `KEY=value` lines in one datagram (errors are ignored: systemd may be gone)."""
        if self._address is None:
            return
        address = self._address
        if address.startswith("@"):
            address = "\0" + address[1:]
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.connect(address)
                sock.sendall("\n".join(lines).encode())
        except OSError:
            return
