"""The tools under test (corrlog per engine, notmuch, mu, the naive Whoosh baseline) and the queries.

Each tool knows how to make a fresh store for a Maildir (untimed), the command
that ingests it (timed as a whole process), how to count what it indexed, the
command for an incremental update and the command a user types for each query.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path

import measure

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
LIMIT = 20  # every tool shows at most this many hits per query (corrlog's default)


@dataclass(frozen=True)
class Query:
    """One of the eight queries, in each tool's syntax."""

    label: str
    corrlog: str
    xapian: str  # notmuch and mu share this syntax for our queries
    naive: str
    by_date: bool = False


QUERIES = (
    Query("rare word", "unanimously", "unanimously", "unanimously"),
    Query("common word", "thanks", "thanks", "thanks"),
    Query("two-word AND", "gas price", "gas price", "gas price"),
    Query("phrase", '"natural gas"', '"natural gas"', '"natural gas"'),
    Query(
        "from:",
        "from:pete.davis@enron.com",
        "from:pete.davis@enron.com",
        "from:pete.davis@enron.com",
    ),
    Query(
        "date range",
        "date:[2001-10-01 to 2001-10-31]",
        "date:2001-10-01..2001-10-31",
        "date:[20011001 to 20011031]",
    ),
    Query(
        "field + date range",
        "subject:meeting date:[2001-10-01 to 2001-12-31]",
        "subject:meeting date:2001-10-01..2001-12-31",
        "subject:meeting date:[20011001 to 20011231]",
    ),
    Query("sorted by date", "gas", "gas", "gas", by_date=True),
)

# the queries whose ids the tantivy engine must return exactly like the Whoosh engine
SAME_IDS = ("rare word", "two-word AND", "phrase", "from:")


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment without the user's corrlog/notmuch/mu settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CORRLOG_", "NOTMUCH_", "MU_", "XAPIAN_"))
    }
    env.update(extra or {})
    return env


def bytecode_env() -> dict[str, str]:
    """`clean_env()` without PYTHONDONTWRITEBYTECODE: corrlog runs as installed by pip, whose
    package has its bytecode compiled, not recompiled by every process."""
    env = clean_env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


class Tool:
    """Base class: one indexer with one store."""

    name = "?"
    kind = "?"
    dedup = "file"  # "message": one entry per Message-ID (else per content), "file": per file

    def __init__(self) -> None:
        self.store = Path()
        self.maildir = Path()

    def missing(self) -> str | None:
        """Why this tool cannot run here, or None."""
        return None

    def version(self) -> str:
        """The tool's version string."""
        return ""

    def prepare(self, store: Path, maildir: Path) -> None:
        """A fresh, empty store for `maildir` (untimed)."""
        if store.exists():
            shutil.rmtree(store)
        store.mkdir(parents=True)
        self.store, self.maildir = store, maildir

    def env(self) -> dict[str, str]:
        """The environment every command of this tool runs in."""
        return clean_env()

    def ingest_argv(self) -> list[str]:
        """The timed full ingest."""
        raise NotImplementedError

    def incr_argv(self, new_files: list[Path]) -> list[str]:
        """The timed update after new files appeared in the Maildir."""
        return self.ingest_argv()

    def count(self) -> int:
        """How many messages the store holds."""
        raise NotImplementedError

    def skipped(self, ingest: measure.Measured) -> int:
        """Files the tool said it would not index (not mail), from its output."""
        return 0

    def query_argv(self, q: Query) -> list[str]:
        """The query as a user runs it (at most LIMIT hits, the tool's normal output)."""
        raise NotImplementedError

    def hits(self, q: Query) -> int | None:
        """How many messages match (untimed; for comparing tools)."""
        return None

    def sizes(self) -> tuple[int, int]:
        """(index bytes, everything the tool stored)."""
        size = measure.dir_size(self.store)
        return size, size

    def run(self, argv: list[str], capture: bool = True) -> measure.Measured:
        """Run one of this tool's commands in its environment."""
        return measure.run(argv, env=self.env(), capture=capture)


def _lines(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.strip())


class Corrlog(Tool):
    """corrlog with one engine: `sync` ingests, `search` queries (no daemon)."""

    kind = "corrlog"
    dedup = "message"

    def __init__(self, binary: Path, engine: str = "whoosh") -> None:
        super().__init__()
        self.binary = binary
        self.engine = engine
        self.name = "corrlog" if engine == "whoosh" else f"corrlog-{engine}"

    @property
    def config(self) -> Path:
        """The benchmark's config file for this store."""
        return self.store / "corrlog.toml"

    @property
    def data_dir(self) -> Path:
        """corrlog's data directory for this store."""
        return self.store / "data"

    def missing(self) -> str | None:
        """Missing binary, or an engine this corrlog does not know yet."""
        if not self.binary.exists():
            return f"not installed ({self.binary} missing; run `make install`)"
        if self.engine == "whoosh":
            return None
        return probe_engine(self.binary, self.engine)

    def version(self) -> str:
        """`corrlog --version`."""
        return measure.run([str(self.binary), "--version"], capture=True).stdout.split()[-1]

    def env(self) -> dict[str, str]:
        """The clean environment, with bytecode caches used like an installed package's."""
        return bytecode_env()

    def prepare(self, store: Path, maildir: Path) -> None:
        """A config with capture = "all", one [[maildir]] source, no notes; a fresh data dir;
        the package byte-compiled (as pip does at install), so no timed run compiles it."""
        super().prepare(store, maildir)
        self.config.write_text(config_text(self.data_dir, maildir, self.engine))
        precompile(self.binary)

    def cli(self, *args: str) -> list[str]:
        """A corrlog command line with this store's config."""
        return [str(self.binary), "--config", str(self.config), "-q", *args]

    def ingest_argv(self) -> list[str]:
        """`corrlog sync`."""
        return self.cli("sync")

    def ids(self, query: str, by_date: bool = False) -> list[str]:
        """Every matching record id."""
        extra = ["--sort", "date"] if by_date else []
        result = self.run(
            self.cli("search", query, "--format", "ids", "--limit", "1000000", *extra)
        )
        result.check(f"corrlog search {query!r}")
        return [line.strip() for line in result.stdout.splitlines() if line.strip()]

    def count(self) -> int:
        """Records both in the state database (indexed = 1) and returned by `search '*'`."""
        found = len(self.ids("*"))
        with sqlite3.connect(f"file:{self.data_dir / 'corrlog.db'}?mode=ro", uri=True) as conn:
            (indexed,) = conn.execute("SELECT count(*) FROM records WHERE indexed = 1").fetchone()
        if indexed != found:
            raise RuntimeError(f"corrlog: {indexed} records indexed in the state, {found} found")
        return found

    def query_argv(self, q: Query) -> list[str]:
        """`corrlog search QUERY --limit 20 [--sort date]` (table output)."""
        extra = ["--sort", "date"] if q.by_date else []
        return self.cli("search", q.corrlog, "--limit", str(LIMIT), *extra)

    def hits(self, q: Query) -> int | None:
        """Every id of the query."""
        return len(self.ids(q.corrlog, q.by_date))

    def sizes(self) -> tuple[int, int]:
        """(the index directory, the whole data dir: archive + SQLite + index)."""
        return measure.dir_size(self.data_dir / "index"), measure.dir_size(self.data_dir)


def config_text(data_dir: Path, maildir: Path, engine: str) -> str:
    """The corrlog config the benchmark uses."""
    text = (
        f"data_dir = {str(data_dir)!r}\n"
        'capture = "all"\n'
        "\n[notes]\npaths = []\n"
        f'\n[[maildir]]\nname = "bench"\npath = {str(maildir)!r}\n'
    )
    if engine != "whoosh":
        text += f'\n[index]\nengine = "{engine}"\n'
    return text


def precompile(binary: Path) -> None:
    """Byte-compile the corrlog package that `binary` (a venv's console script) runs."""
    python = binary.parent / "python"
    where = measure.run(
        [str(python), "-c", "import corrlog, os; print(os.path.dirname(corrlog.__file__))"],
        env=bytecode_env(),
        capture=True,
    )
    where.check("locating the corrlog package")
    measure.run(
        [str(python), "-m", "compileall", "-q", where.stdout.strip()], env=bytecode_env()
    ).check("byte-compiling corrlog")


def probe_engine(binary: Path, engine: str) -> str | None:
    """None when this corrlog accepts `[index] engine = ENGINE`, else why not."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="corrlog-probe-") as tmp:
        root = Path(tmp)
        (root / "mail" / "cur").mkdir(parents=True)
        (root / "mail" / "new").mkdir()
        config = root / "corrlog.toml"
        config.write_text(config_text(root / "data", root / "mail", engine))
        result = measure.run(
            [str(binary), "--config", str(config), "-q", "sync"], env=clean_env(), capture=True
        )
    if result.returncode == 0:
        return None
    lines = (result.stderr.strip() or result.stdout.strip()).splitlines()
    reason = lines[-1] if lines else f"exit code {result.returncode}"
    if "unknown key" in reason:
        return "not implemented yet (`[index] engine` is an unknown config key)"
    return f"not available ({reason[:120]})"


class Notmuch(Tool):
    """`notmuch new` into a fresh database; NOTMUCH_CONFIG points at the store's config."""

    name = kind = "notmuch"
    dedup = "message"

    def missing(self) -> str | None:
        """Whether `notmuch` is on PATH."""
        return None if shutil.which("notmuch") else "not installed"

    def version(self) -> str:
        """`notmuch --version`."""
        return measure.run(["notmuch", "--version"], capture=True).stdout.strip()

    def prepare(self, store: Path, maildir: Path) -> None:
        """Config: database in the store, mail_root the Maildir, no hooks, no excluded tags."""
        super().prepare(store, maildir)
        (store / "db").mkdir()
        (store / "hooks").mkdir()
        (store / "config").write_text(
            "[database]\n"
            f"path={store / 'db'}\n"
            f"mail_root={maildir}\n"
            f"hook_dir={store / 'hooks'}\n"
            "[user]\nname=Bench\nprimary_email=bench@example.invalid\n"
            "[new]\ntags=unread;inbox\nignore=\n"
            "[search]\nexclude_tags=\n"
            "[maildir]\nsynchronize_flags=true\n"
        )

    def env(self) -> dict[str, str]:
        """NOTMUCH_CONFIG set to the store's config."""
        return clean_env({"NOTMUCH_CONFIG": str(self.store / "config")})

    def ingest_argv(self) -> list[str]:
        """`notmuch new`."""
        return ["notmuch", "new"]

    def skipped(self, ingest: measure.Measured) -> int:
        """`Note: Ignoring non-mail file: PATH` lines (e.g. a file that starts with a blank line)."""
        return ingest.stderr.count("Ignoring non-mail file")

    def count(self) -> int:
        """`notmuch count '*'`."""
        return int(self.run(["notmuch", "count", "*"]).check("notmuch count").stdout.strip())

    def query_argv(self, q: Query) -> list[str]:
        """`notmuch search --limit=20 [--sort=newest-first] QUERY` (threads, its normal output)."""
        extra = ["--sort=newest-first"] if q.by_date else []
        return ["notmuch", "search", f"--limit={LIMIT}", *extra, q.xapian]

    def hits(self, q: Query) -> int | None:
        """`notmuch count QUERY` (messages)."""
        return int(self.run(["notmuch", "count", q.xapian]).check("notmuch count").stdout.strip())


class Mu(Tool):
    """`mu index` into a fresh store made by `mu init --maildir --muhome`."""

    name = kind = "mu"

    def missing(self) -> str | None:
        """Whether `mu` is on PATH."""
        return None if shutil.which("mu") else "not installed"

    def version(self) -> str:
        """First line of `mu --version`."""
        return measure.run(["mu", "--version"], capture=True).stdout.splitlines()[0].strip()

    def prepare(self, store: Path, maildir: Path) -> None:
        """`mu init` (untimed)."""
        super().prepare(store, maildir)
        self.run(["mu", "init", f"--maildir={maildir}", f"--muhome={store}"]).check("mu init")

    def ingest_argv(self) -> list[str]:
        """`mu index`."""
        return ["mu", "index", f"--muhome={self.store}"]

    def _find(self, query: str) -> int:
        result = self.run(["mu", "find", f"--muhome={self.store}", query, "--fields", "i"])
        if result.returncode != 0 and "no matches" in result.stderr.lower():
            return 0
        return _lines(result.check(f"mu find {query!r}").stdout)

    def count(self) -> int:
        """`mu find '' --fields i | wc -l`."""
        return self._find("")

    def query_argv(self, q: Query) -> list[str]:
        """`mu find --maxnum=20 [--sortfield=date --reverse] QUERY`."""
        extra = ["--sortfield=date", "--reverse"] if q.by_date else []
        return ["mu", "find", f"--muhome={self.store}", f"--maxnum={LIMIT}", *extra, q.xapian]

    def hits(self, q: Query) -> int | None:
        """`mu find QUERY --fields i | wc -l`."""
        return self._find(q.xapian)


class Naive(Tool):
    """bench/naive_whoosh.py: one writer, one commit, `email` with policy.default."""

    name = "naive-whoosh"
    kind = "naive"

    def __init__(self, python: Path) -> None:
        super().__init__()
        self.python = python
        self.script = BENCH / "naive_whoosh.py"
        self.new_files: Path | None = None

    def missing(self) -> str | None:
        """Whether Whoosh imports in the venv's Python."""
        result = measure.run([str(self.python), "-c", "import whoosh"], capture=True)
        return None if result.returncode == 0 else "not installed (whoosh does not import)"

    def version(self) -> str:
        """The Whoosh version."""
        result = measure.run(
            [str(self.python), "-c", "import whoosh; print(whoosh.versionstring())"], capture=True
        )
        return f"whoosh {result.stdout.strip()} (python {sys.version.split()[0]})"

    def cli(self, *args: str) -> list[str]:
        """A command line of the baseline."""
        return [str(self.python), str(self.script), *args]

    def ingest_argv(self) -> list[str]:
        """`naive_whoosh.py index --maildir M --index I`."""
        return self.cli("index", "--maildir", str(self.maildir), "--index", str(self.store / "ix"))

    def incr_argv(self, new_files: list[Path]) -> list[str]:
        """`naive_whoosh.py index --index I --files-from LIST` (it has no change detection)."""
        listing = self.store / "new-files.txt"
        listing.write_text("".join(f"{p}\n" for p in new_files))
        return self.cli("index", "--index", str(self.store / "ix"), "--files-from", str(listing))

    def count(self) -> int:
        """Documents in the index."""
        result = self.run(self.cli("count", "--index", str(self.store / "ix")))
        return int(result.check("naive count").stdout.strip())

    def query_argv(self, q: Query) -> list[str]:
        """`naive_whoosh.py search QUERY --limit 20 [--sort date]`."""
        extra = ["--sort", "date"] if q.by_date else []
        return self.cli(
            "search", "--index", str(self.store / "ix"), q.naive, "--limit", str(LIMIT), *extra
        )

    def hits(self, q: Query) -> int | None:
        """Every hit of the query."""
        argv = self.cli("search", "--index", str(self.store / "ix"), q.naive, "--limit", "1000000")
        result = self.run(argv).check("naive search")
        return _lines(result.stdout) - 1
