"""Shared fixtures: a temp corrlog home, a CLI runner, and the Dovecot plugin."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from corrlog import logging as corrlog_logging
from support.cli import CorrlogHome

pytest_plugins = ["support.dovecot", "support.smtp"]


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """Each test starts with default logging and no registered secrets."""
    corrlog_logging.reset()
    yield
    corrlog_logging.reset()


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    """Fail a test that leaves a thread of its own running."""
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    for thread in leaked:
        thread.join(timeout=2)
    still = [t.name for t in leaked if t.is_alive()]
    assert not still, f"threads leaked: {still}"


@pytest.fixture
def home(tmp_path_factory: pytest.TempPathFactory) -> CorrlogHome:
    """An initialised corrlog home: config, data dir and notes folder in a temp dir."""
    return CorrlogHome.create(tmp_path_factory.mktemp("corrlog"))
