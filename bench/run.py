"""corrlog's benchmark against notmuch, mu and a naive Whoosh indexer: the one entry point.

    .venv/bin/python bench/run.py --corpus ../shared/corpus --set small [--runs 3]
        [--query-runs 20] [--incr-runs 3] [--idle-seconds 60] [--out bench/results/FILE.json]

In one run, on one copy of the corpus extracted into a temporary directory:

1. full ingest by every tool into a fresh store, `--runs` times (interleaved),
   each as a whole process: wall time, CPU time, peak RSS (wait4), store size,
   and the indexed count checked against the corpus;
2. the eight queries as whole processes, median of `--query-runs`, plus the
   hit count of each (untimed);
3. the `incr` set (100 messages) copied into the Maildir and each tool's
   update timed, count checked again; `--incr-runs` times, every store put back
   between runs (median reported); then the same for corrlog as `corrlog sync`
   while `corrlog run` serves the store (the daemon started before the messages
   arrive);
4. `corrlog run` started on the ingested data dir: CPU and RSS over
   `--idle-seconds`, and the queries through the daemon when a search socket
   exists;
5. a table on stdout and every figure as JSON in `--out`.

A peer that is not installed (or a corrlog engine that does not exist yet) is
reported as such and skipped. Exit code 1 when a tool indexed the wrong count.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import signal
import socket
import stat
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path
from typing import Any

import measure
from tools import QUERIES, ROOT, SAME_IDS, Corrlog, Mu, Naive, Notmuch, Tool

EXPECTED = {"small": 2000, "large": 44655, "incr": 100}
TOOL_NAMES = ("corrlog", "corrlog-tantivy", "notmuch", "mu", "naive-whoosh")


def say(*parts: object) -> None:
    """Progress on stderr, so stdout carries only the final table."""
    print(*parts, file=sys.stderr, flush=True)


# setup ---------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """What this machine is."""
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "date_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "mem_gib": round(mem_kb / 1024 / 1024, 1),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "git_commit": commit + (" (src/ modified)" if dirty else ""),
        "loadavg_start": measure.loadavg(),
    }


def extract(corpus: Path, name: str, into: Path) -> Path:
    """Unpack enron-NAME.tar.gz into `into`; return the top folder (`into/NAME`)."""
    tarball = corpus / f"enron-{name}.tar.gz"
    if not tarball.is_file():
        raise SystemExit(f"bench: {tarball} not found (give --corpus the folder of the tarballs)")
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-xzf", str(tarball), "-C", str(into)], check=True)
    top = into / name
    if not top.is_dir():
        raise SystemExit(f"bench: {tarball} did not unpack into {name}/")
    return top


def message_files(root: Path) -> list[Path]:
    """Every file in a cur/ or new/ folder below `root`."""
    found = []
    for directory, subdirs, files in os.walk(root):
        if Path(directory).name in ("cur", "new"):
            found += [Path(directory) / f for f in files if not f.startswith(".")]
        subdirs[:] = [d for d in subdirs if d != "tmp"]
    return sorted(found)


def distinct_messages(files: list[Path]) -> int:
    """Messages as mail tools count them: one per Message-ID, else one per distinct content.

    Reading every file here also warms the page cache, so that no tool pays for
    the first disk read. (The large set holds 40 byte-identical copies of
    messages that have no Message-ID: corrlog and notmuch store each once, mu
    and the baseline index every file.)
    """
    parser = BytesHeaderParser(policy=compat32)
    keys: set[tuple[str, str]] = set()
    for path in files:
        raw = path.read_bytes()
        message_id = str(parser.parsebytes(raw).get("message-id") or "").strip()
        keys.add(("id", message_id) if message_id else ("sha", hashlib.sha256(raw).hexdigest()))
    return len(keys)


def add_incr(incr: Path, maildir: Path) -> tuple[list[Path], list[Path]]:
    """Copy the incr messages into the same folders of the Maildir (making missing folders);
    (the files added, the folders made)."""
    added: list[Path] = []
    made: list[Path] = []
    for source in message_files(incr):
        relative = source.relative_to(incr)
        target = maildir / relative
        folder = target.parent.parent
        for sub in ("cur", "new", "tmp"):
            missing, path = [], folder / sub
            while not path.exists():
                missing.append(path)
                path = path.parent
            if missing:
                (folder / sub).mkdir(parents=True)
                made += missing
        shutil.copy2(source, target)
        added.append(target)
    return added, made


def remove_incr(added: list[Path], made: list[Path]) -> None:
    """Undo `add_incr`: the files, then the folders it made (deepest first)."""
    for path in added:
        path.unlink()
    for folder in sorted(made, key=lambda p: len(p.parts), reverse=True):
        folder.rmdir()


def make_tools(args: argparse.Namespace) -> list[Tool]:
    """The tools asked for, in display order."""
    wanted = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = set(wanted) - set(TOOL_NAMES)
    if unknown:
        raise SystemExit(f"bench: unknown tool(s) {', '.join(sorted(unknown))}")
    made: dict[str, Tool] = {
        "corrlog": Corrlog(args.corrlog, "whoosh"),
        "corrlog-tantivy": Corrlog(args.corrlog, "tantivy"),
        "notmuch": Notmuch(),
        "mu": Mu(),
        "naive-whoosh": Naive(args.python),
    }
    return [made[name] for name in TOOL_NAMES if name in wanted]


# phases --------------------------------------------------------------------------------------


def expected_count(tool: Tool, corpus: dict[str, int], extra: int = 0) -> int:
    """What `tool` should hold: every file, or every distinct message (see distinct_messages)."""
    return corpus["messages" if tool.dedup == "message" else "files"] + extra


def ingest(
    tools: list[Tool], maildir: Path, stores: Path, runs: int, corpus: dict[str, int]
) -> dict[str, Any]:
    """Every tool `runs` times into a fresh store, interleaved; the last store is kept."""
    results: dict[str, Any] = {t.name: {"runs": []} for t in tools}
    for run in range(1, runs + 1):
        for tool in tools:
            store = stores / tool.name / f"run{run}"
            tool.prepare(store, maildir)
            load = measure.loadavg()[0]
            m = measure.run(tool.ingest_argv(), env=tool.env(), capture=True)
            m.check(f"{tool.name} ingest")
            count = tool.count()
            skipped = tool.skipped(m)
            expected = expected_count(tool, corpus) - skipped
            index_b, store_b = tool.sizes()
            entry = {
                "wall_s": m.wall_s,
                "cpu_s": m.cpu_s,
                "user_s": m.user_s,
                "sys_s": m.sys_s,
                "maxrss_kb": m.maxrss_kb,
                "count": count,
                "count_ok": count == expected,
                "expected": expected,
                "skipped": skipped,
                "index_bytes": index_b,
                "store_bytes": store_b,
                "loadavg_1m": load,
            }
            if tool.kind == "naive":
                entry["phases"] = json.loads(m.stdout.strip().splitlines()[-1])
            results[tool.name]["runs"].append(entry)
            say(
                f"  ingest run {run}/{runs} {tool.name:16} {m.wall_s:7.2f} s "
                f"{corpus['files'] / m.wall_s:7.1f} msg/s  peak {m.maxrss_kb / 1024:6.1f} MB  "
                f"count {count}{'' if count == expected else f' != {expected} !'}  load {load:.2f}"
            )
            previous = stores / tool.name / f"run{run - 1}"
            if previous.exists():
                shutil.rmtree(previous)
    for _name, result in results.items():
        walls = [r["wall_s"] for r in result["runs"]]
        result["median_s"] = statistics.median(walls)
        result["msgs_per_s"] = corpus["files"] / result["median_s"]
        result["peak_rss_kb"] = max(r["maxrss_kb"] for r in result["runs"])
        result["cpu_s"] = statistics.median(r["cpu_s"] for r in result["runs"])
        result["index_bytes"] = result["runs"][-1]["index_bytes"]
        result["store_bytes"] = result["runs"][-1]["store_bytes"]
        result["count"] = result["runs"][-1]["count"]
        result["expected"] = result["runs"][-1]["expected"]
        result["skipped"] = result["runs"][-1]["skipped"]
        result["count_ok"] = all(r["count_ok"] for r in result["runs"])
    return results


def time_queries(
    tools: list[Tool], runs: int, argv_for: Any = None, label: str = ""
) -> dict[str, Any]:
    """Median wall time of every query for every tool, whole processes, interleaved."""
    times: dict[str, dict[str, list[float]]] = {
        t.name: {q.label: [] for q in QUERIES} for t in tools
    }
    failures: dict[str, dict[str, str]] = {t.name: {} for t in tools}
    for i in range(runs):
        for q in QUERIES:
            for tool in tools:
                argv = argv_for(tool, q) if argv_for else tool.query_argv(q)
                m = measure.run(argv, env=tool.env(), capture=False)
                if m.returncode != 0:
                    failures[tool.name][q.label] = f"exit {m.returncode}: {m.stderr.strip()[-200:]}"
                times[tool.name][q.label].append(m.wall_s)
        if (i + 1) % 5 == 0 or i + 1 == runs:
            say(f"  queries{label}: {i + 1}/{runs} rounds")
    out: dict[str, Any] = {}
    for tool in tools:
        medians = {label: statistics.median(ts) for label, ts in times[tool.name].items()}
        out[tool.name] = {
            "median_ms": {k: v * 1000 for k, v in medians.items()},
            "median_of_8_ms": statistics.median(medians.values()) * 1000,
            "all_s": times[tool.name],
            "failures": failures[tool.name],
        }
    return out


def query_hits(tools: list[Tool]) -> dict[str, dict[str, int | None]]:
    """How many messages each query matches in each tool (untimed)."""
    return {t.name: {q.label: t.hits(q) for q in QUERIES} for t in tools}


def same_ids(whoosh: Corrlog, tantivy: Corrlog) -> dict[str, bool]:
    """Whether the tantivy engine returns the Whoosh engine's ids for the SAME_IDS queries."""
    result = {}
    for q in QUERIES:
        if q.label in SAME_IDS:
            result[q.label] = set(whoosh.ids(q.corrlog)) == set(tantivy.ids(q.corrlog))
    return result


def incremental(
    tools: list[Tool], incr: Path, maildir: Path, before: dict[str, Any], runs: int
) -> tuple[dict[str, Any], dict[str, Path]]:
    """Each tool's update after the incr messages arrived, `runs` times, count checked.

    Between runs every store is put back as it was before the first (a copy taken then)
    and the new files and folders are removed again, so every run indexes the same 100
    messages into the same full store. The median run is reported. The new messages are
    taken out of the Maildir after the last run too (`via_daemon` puts them back). Returns
    the figures and corrlog's copies of its stores from before the update (for
    `via_daemon`; the caller removes them).
    """
    snapshots = {}
    for tool in tools:
        if runs > 1 or isinstance(tool, Corrlog):
            snapshots[tool.name] = tool.store.with_name(tool.store.name + "-before-incr")
            shutil.copytree(tool.store, snapshots[tool.name], symlinks=True)
    os.sync()  # the copies' writeback must not land in a timed run's flush
    timed: dict[str, list[dict[str, Any]]] = {tool.name: [] for tool in tools}
    for run in range(1, runs + 1):
        new_files, made = add_incr(incr, maildir)
        for tool in tools:
            entry = _incremental_run(tool, tool.incr_argv(new_files), len(new_files), before, run)
            entry.pop("stderr")
            timed[tool.name].append(entry)
        remove_incr(new_files, made)
        if run < runs:
            for tool in tools:
                _restore(tool, snapshots[tool.name])
            os.sync()  # corrlog's syncfs(2) would otherwise wait for these copies too
    kept = {}
    for name, snapshot in snapshots.items():
        if any(isinstance(t, Corrlog) and t.name == name for t in tools):
            kept[name] = snapshot
        else:
            shutil.rmtree(snapshot)
    return {name: _median_run(entries) for name, entries in timed.items()}, kept


def _restore(tool: Tool, snapshot: Path) -> None:
    shutil.rmtree(tool.store)
    shutil.copytree(snapshot, tool.store, symlinks=True)


def _median_run(entries: list[dict[str, Any]]) -> dict[str, Any]:
    median = sorted(entries, key=lambda e: e["wall_s"])[(len(entries) - 1) // 2]
    return {
        **median,
        "wall_s": statistics.median(e["wall_s"] for e in entries),
        "cpu_s": statistics.median(e["cpu_s"] for e in entries),
        "maxrss_kb": max(e["maxrss_kb"] for e in entries),
        "count_ok": all(e["count_ok"] for e in entries),
        "runs": entries,
    }


def via_daemon(
    tools: list[Corrlog],
    snapshots: dict[str, Path],
    incr: Path,
    maildir: Path,
    before: dict[str, Any],
    runs: int,
    workdir: Path,
    timeout: float,
) -> dict[str, Any]:
    """`corrlog sync` while `corrlog run` serves the store: the same update, through the daemon.

    Each run (the new messages out of the Maildir, as `incremental` leaves it): the store
    put back as it was before the update; the daemon started and ready; the messages
    copied in; then the timed `corrlog sync` (whole process), as a user asks for a sync
    while the daemon runs. Afterwards the Maildir and every store hold the new messages.
    """
    out: dict[str, Any] = {}
    for tool in tools:
        entries = []
        for run in range(1, runs + 1):
            _restore(tool, snapshots[tool.name])
            os.sync()
            running = Daemon(tool, workdir, timeout, label="-incr")
            problem = running.start()
            if problem is not None:
                out[tool.name] = {"error": problem}
                break
            try:
                new_files, made = add_incr(incr, maildir)
                argv = tool.cli("sync")
                entry = _incremental_run(tool, argv, len(new_files), before, run, " via daemon")
                entry["answered_by"] = _answered_by(entry.pop("stderr", ""))
                entries.append(entry)
            finally:
                running.stop()
            remove_incr(new_files, made)
        if entries and tool.name not in out:
            out[tool.name] = _median_run(entries)
    add_incr(incr, maildir)
    return out


def _answered_by(stderr: str) -> str:
    """Which process did the sync, as the client says under CORRLOG_DEBUG_SEARCH_PATH."""
    for line in stderr.splitlines():
        if line.startswith("corrlog: ") and " answered by " in line:
            return line.rsplit(" answered by ", 1)[1]
    return "unknown"


def _incremental_run(
    tool: Tool, argv: list[str], added: int, before: dict[str, Any], run: int, label: str = ""
) -> dict[str, Any]:
    """One timed update of one tool, its count checked."""
    env = tool.env() | ({"CORRLOG_DEBUG_SEARCH_PATH": "1"} if label else {})
    m = measure.run(argv, env=env, capture=True)
    m.check(f"{tool.name} incremental{label}")
    skipped = tool.skipped(m)
    expected = before[tool.name]["count"] + added - skipped
    count = tool.count()
    say(
        f"  incremental{label} run {run} {tool.name:16} {m.wall_s:7.2f} s  count {count}"
        f"{'' if count == expected else f' != {expected} !'}"
    )
    return {
        "wall_s": m.wall_s,
        "cpu_s": m.cpu_s,
        "maxrss_kb": m.maxrss_kb,
        "count": count,
        "count_ok": count == expected,
        "expected": expected,
        "skipped": skipped,
        "stderr": m.stderr,
    }


def find_sockets(data_dir: Path) -> list[str]:
    """Unix sockets in the data dir (top level and one below): a search socket, if any."""
    found = []
    for path in [*data_dir.glob("*"), *data_dir.glob("*/*")]:
        try:
            if stat.S_ISSOCK(path.lstat().st_mode):
                found.append(str(path))
        except OSError:
            continue
    return found


class Daemon:
    """`corrlog run` on a tool's store, started and waited for (READY=1), then stopped."""

    def __init__(self, tool: Corrlog, workdir: Path, timeout: float, label: str = "") -> None:
        self.tool, self.timeout = tool, timeout
        self.notify_path = workdir / f"notify-{tool.name}{label}.sock"
        self.log_path = workdir / f"daemon-{tool.name}{label}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready_s = 0.0

    def start(self) -> str | None:
        """Start it and wait for READY=1; None when ready, else what went wrong (then stopped)."""
        self.notify_path.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        listener.bind(str(self.notify_path))
        listener.settimeout(1.0)
        tool = self.tool
        env = tool.env() | {"NOTIFY_SOCKET": str(self.notify_path)}
        argv = [str(tool.binary), "--config", str(tool.config), "--log-format", "json", "run"]
        started = time.perf_counter()
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        try:
            while time.perf_counter() - started < self.timeout and self.proc.poll() is None:
                try:
                    message = listener.recv(4096).decode("utf-8", "replace")
                except TimeoutError:
                    continue
                if "READY=1" in message.split("\n"):
                    self.ready_s = time.perf_counter() - started
                    return None
        finally:
            listener.close()
            self.notify_path.unlink(missing_ok=True)
        problem = (
            f"exited with {self.proc.returncode} before READY"
            if self.proc.poll() is not None
            else f"no READY=1 within {self.timeout:.0f} s"
        )
        self.stop()
        return problem

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after 60 s; the exit code."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode


def daemon(
    tool: Corrlog, workdir: Path, idle_seconds: float, query_runs: int, timeout: float
) -> dict[str, Any]:
    """`corrlog run` on the ingested store: ready time, idle CPU and RSS, search via the daemon."""
    running = Daemon(tool, workdir, timeout)
    problem = running.start()
    if problem is not None:
        return {"error": problem, "exit_code": running.stop()}
    assert running.proc is not None
    pid = running.proc.pid
    result: dict[str, Any] = {"pid": pid, "ready_s": running.ready_s}
    try:
        result["rss_at_ready_kb"] = measure.proc_rss_kb(pid)
        say(f"  daemon {tool.name}: ready after {running.ready_s:.1f} s; settling 5 s")
        time.sleep(5)
        say(f"  daemon {tool.name}: sampling CPU and RSS for {idle_seconds:.0f} s")
        sample = measure.sample_idle(pid, idle_seconds)
        result.update(
            idle_seconds=sample.seconds,
            idle_cpu_s=sample.cpu_s,
            idle_cpu_percent=sample.cpu_percent,
            idle_rss_max_kb=sample.rss_max_kb,
            idle_rss_median_kb=sample.rss_median_kb,
        )
        sockets = find_sockets(tool.data_dir)
        result["sockets"] = sockets
        if sockets:
            say(f"  daemon {tool.name}: socket(s) {sockets}; timing the queries through it")
            result["queries"] = time_queries([tool], query_runs, label=" via daemon")[tool.name]
            result["rss_after_queries_kb"] = measure.proc_rss_kb(pid)
        else:
            result["queries"] = None
            result["search_via_daemon"] = "not implemented yet (no search socket)"
    finally:
        result["exit_code"] = running.stop()
    return result


# report --------------------------------------------------------------------------------------


def mb(value: float) -> str:
    """Bytes as MB with one decimal."""
    return f"{value / 1e6:.1f}"


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain text table (right-aligned numbers)."""
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        cells = [
            str(c).ljust(w) if i == 0 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells))
    return "\n".join(lines)


def count_cell(r: dict[str, Any]) -> str:
    """`44615 ok`, or the count and what was expected; files a tool refused are named."""
    note = f" ({r['skipped']} non-mail file skipped)" if r.get("skipped") else ""
    if r["count_ok"]:
        return f"{r['count']} ok{note}"
    return f"{r['count']} WRONG, want {r['expected']}{note}"


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, or None when either is missing."""
    return a / b if a is not None and b else None


def goals(res: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's acceptance goals, each with its figure and whether it is met."""
    ing, inc, q = res["ingest"], res["incremental"], res["queries"]
    full = res["set"] == "large"
    scope = "" if full else " [small set; the goal is stated for the full corpus]"
    out: list[dict[str, Any]] = []

    def add(goal: str, value: str, met: bool | None, note: str = "") -> None:
        out.append({"goal": goal, "value": value, "met": met, "note": note})

    cw, nv = ing.get("corrlog"), ing.get("naive-whoosh")
    r = ratio(cw and cw["msgs_per_s"], nv and nv["msgs_per_s"])
    add(
        "Whoosh engine ingest >= 2x naive Whoosh",
        f"{r:.2f}x" if r else "n/a",
        None if r is None else r >= 2.0,
        scope,
    )
    nm = ing.get("notmuch")
    r = ratio(cw and cw["peak_rss_kb"], nm and nm["peak_rss_kb"])
    add(
        "Whoosh engine peak RSS <= notmuch's",
        f"{r:.2f}x notmuch" if r else "n/a",
        None if r is None else r <= 1.0,
        scope,
    )
    tv = ing.get("corrlog-tantivy")
    peers = [ing[p]["msgs_per_s"] for p in ("notmuch", "mu") if p in ing]
    if tv and peers:
        r = tv["msgs_per_s"] / max(peers)
        add("tantivy ingest >= 1.2x faster peer", f"{r:.2f}x", r >= 1.2, scope)
    else:
        why = res["unavailable"].get("corrlog-tantivy", "no peer measured")
        add("tantivy ingest >= 1.2x faster peer", why.split(" (")[0], False)
    if res.get("same_ids"):
        ok = all(res["same_ids"].values())
        add("tantivy ids == Whoosh ids (rare, AND, phrase, from:)", str(res["same_ids"]), ok)
    else:
        add("tantivy ids == Whoosh ids (rare, AND, phrase, from:)", "no tantivy engine", False)
    nmq = q.get("notmuch", {}).get("median_of_8_ms")
    daemon_q = None
    for name in ("corrlog", "corrlog-tantivy"):
        d = res["daemon"].get(name) or {}
        if d.get("queries"):
            daemon_q = d["queries"]["median_of_8_ms"]
            r = ratio(daemon_q, nmq)
            add(
                f"search via daemon ({name}) median <= 2x notmuch",
                f"{daemon_q:.0f} ms vs {nmq:.0f} ms = {r:.1f}x" if r else "n/a",
                None if r is None else r <= 2.0,
            )
    if daemon_q is None:
        cq = q.get("corrlog", {}).get("median_of_8_ms")
        r = ratio(cq, nmq)
        add(
            "search via daemon median <= 2x notmuch",
            "not implemented yet (no search socket)",
            False,
            f"without daemon: {cq:.0f} ms vs {nmq:.0f} ms = {r:.1f}x" if r and cq and nmq else "",
        )
    peers_inc = [inc[p]["wall_s"] for p in ("notmuch", "mu") if p in inc]
    for name in ("corrlog", "corrlog-tantivy"):
        if name in inc and peers_inc:
            r = inc[name]["wall_s"] / min(peers_inc)
            add(
                f"incremental 100 ({name}) no slower than either peer",
                f"{inc[name]['wall_s']:.2f} s = {r:.1f}x the faster peer",
                r <= 1.0,
            )
    via = res.get("incremental_daemon", {})
    for name in ("corrlog", "corrlog-tantivy"):
        if name in via and peers_inc:
            d = via[name]
            if "error" in d:
                add(f"incremental 100 through the daemon ({name})", d["error"], False)
                continue
            r = d["wall_s"] / min(peers_inc)
            add(
                f"incremental 100 through the daemon ({name}) no slower than either peer",
                f"{d['wall_s']:.2f} s = {r:.1f}x the faster peer",
                r <= 1.0,
                f"answered by {d.get('answered_by', 'unknown')}",
            )
    for name, d in res["daemon"].items():
        if "idle_cpu_percent" in d:
            add(
                f"idle daemon ({name}) < 0.5% CPU",
                f"{d['idle_cpu_percent']:.2f}%",
                d["idle_cpu_percent"] < 0.5,
            )
            add(
                f"idle daemon ({name}) < 100 MB RSS",
                f"{d['idle_rss_max_kb'] / 1024:.1f} MB",
                d["idle_rss_max_kb"] / 1024 < 100,
            )
        elif "error" in d:
            add(f"idle daemon ({name})", d["error"], False)
    return out


def report(res: dict[str, Any]) -> str:
    """The readable summary printed at the end."""
    m, n = res["machine"], res["expected"]
    parts = [
        f"corrlog benchmark, set {res['set']} ({n} message files, {res.get('distinct_messages', n)} distinct "
        f"messages; + {res['incr_expected']} incremental), "
        f"{res['runs']} ingest run(s), {res['query_runs']} query run(s)",
        f"{m['date_utc']}  {m['nproc']} cores  {m['mem_gib']} GiB  {m['cpu']}  Python {m['python']}  "
        f"corrlog {res['versions'].get('corrlog', '?')} @ {m['git_commit']}",
        f"load average at start {m['loadavg_start']}, at end {m.get('loadavg_end')}",
        "",
    ]
    ing = res["ingest"]
    rows = []
    for name in TOOL_NAMES:
        if name in ing:
            r = ing[name]
            rows.append(
                [
                    name,
                    f"{r['median_s']:.2f}",
                    f"{r['msgs_per_s']:.0f}",
                    f"{r['cpu_s']:.1f}",
                    f"{r['peak_rss_kb'] / 1024:.0f}",
                    mb(r["index_bytes"]),
                    mb(r["store_bytes"]),
                    count_cell(r),
                ]
            )
    parts += [
        "Full ingest (median of runs; whole process)",
        table(
            ["tool", "wall s", "msg/s", "cpu s", "peak RSS MB", "index MB", "store MB", "count"],
            rows,
        ),
        *[f"{name}: {why}" for name, why in res["unavailable"].items()],
        "",
    ]
    nv = ing.get("naive-whoosh")
    ratio_rows = []
    for name in TOOL_NAMES:
        if name not in ing:
            continue
        r = ing[name]
        cells = [name]
        for peer in ("naive-whoosh", "notmuch", "mu"):
            p = ing.get(peer)
            cells.append(f"{r['msgs_per_s'] / p['msgs_per_s']:.2f}x" if p else "-")
        nmr = ing.get("notmuch")
        cells.append(f"{r['peak_rss_kb'] / nmr['peak_rss_kb']:.2f}x" if nmr else "-")
        ratio_rows.append(cells)
    if nv or ing.get("notmuch"):
        parts += [
            "Ingest speed ratios (row tool's msg/s / column tool's) and peak RSS vs notmuch",
            table(["tool", "vs naive-whoosh", "vs notmuch", "vs mu", "RSS vs notmuch"], ratio_rows),
            "",
        ]
    inc = res["incremental"]
    rows = [
        [
            name,
            f"{r['wall_s']:.2f}",
            " / ".join(f"{run['wall_s']:.2f}" for run in r.get("runs", [r])),
            f"{r['cpu_s']:.2f}",
            f"{r['maxrss_kb'] / 1024:.0f}",
            count_cell(r),
        ]
        for name, r in inc.items()
    ]
    incr_runs = res.get("incr_runs", 1)
    parts += [
        f"Incremental: {res['incr_expected']} new messages into the full index "
        + ("(one run)" if incr_runs == 1 else f"(median of {incr_runs} runs, store restored)"),
        table(["tool", "wall s", "runs, wall s", "cpu s", "peak RSS MB", "count"], rows),
        "",
    ]
    via = res.get("incremental_daemon", {})
    if via:
        rows = [
            [name, "-", r["error"], "", "", ""]
            if "error" in r
            else [
                name,
                f"{r['wall_s']:.2f}",
                " / ".join(f"{run['wall_s']:.2f}" for run in r["runs"]),
                f"{r['maxrss_kb'] / 1024:.0f}",
                count_cell(r),
                r.get("answered_by", "unknown"),
            ]
            for name, r in via.items()
        ]
        parts += [
            "Incremental through the daemon: the same messages, `corrlog sync` while "
            "`corrlog run` serves the store (whole client process)",
            table(
                ["tool", "wall s", "runs, wall s", "client RSS MB", "count", "answered by"], rows
            ),
            "",
        ]
    q, hits = res["queries"], res["hits"]
    names = [name for name in TOOL_NAMES if name in q]
    rows = []
    for query in QUERIES:
        row = [query.label]
        for name in names:
            h = hits.get(name, {}).get(query.label)
            row.append(f"{q[name]['median_ms'][query.label]:.0f} ({h if h is not None else '?'})")
        rows.append(row)
    rows.append(["median of the 8", *[f"{q[name]['median_of_8_ms']:.0f}" for name in names]])
    parts += [
        f"Queries: median ms of {res['query_runs']} whole-process runs (total hits); "
        "corrlog without a daemon",
        table(["query", *names], rows),
    ]
    failed = {name: q[name]["failures"] for name in names if q[name]["failures"]}
    if failed:
        parts.append(f"query failures: {failed}")
    for name, d in res["daemon"].items():
        if d.get("queries"):
            dq = d["queries"]["median_ms"]
            parts.append(
                f"{name} with daemon: "
                + ", ".join(f"{k} {v:.0f}" for k, v in dq.items())
                + f"; median {d['queries']['median_of_8_ms']:.0f} ms"
                + (
                    f"; daemon RSS after them {d['rss_after_queries_kb'] / 1024:.0f} MB"
                    if d.get("rss_after_queries_kb")
                    else ""
                )
            )
        else:
            parts.append(
                f"{name} with daemon: {d.get('search_via_daemon', d.get('error', 'not measured'))}"
            )
    parts.append("")
    rows = []
    for name, d in res["daemon"].items():
        if "idle_cpu_percent" in d:
            rows.append(
                [
                    name,
                    f"{d['ready_s']:.1f}",
                    f"{d['idle_seconds']:.0f}",
                    f"{d['idle_cpu_s']:.2f}",
                    f"{d['idle_cpu_percent']:.2f}",
                    f"{d['idle_rss_median_kb'] / 1024:.1f}",
                    f"{d['idle_rss_max_kb'] / 1024:.1f}",
                ]
            )
        else:
            rows.append([name, d.get("error", "skipped"), "", "", "", "", ""])
    if rows:
        parts += [
            "Idle daemon (`corrlog run` on the ingested data dir, after the incremental update)",
            table(
                ["daemon", "ready s", "window s", "cpu s", "cpu %", "RSS MB median", "RSS MB max"],
                rows,
            ),
            "",
        ]
    rows = [
        [
            g["goal"],
            g["value"],
            {True: "met", False: "NOT met", None: "n/a"}[g["met"]],
            g["note"].strip(),
        ]
        for g in res["goals"]
    ]
    parts += ["Goals (issue 7)", table(["goal", "figure", "status", "note"], rows)]
    return "\n".join(parts)


# main ----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    default_corpus = ROOT.parent / "shared" / "corpus"
    default_python = ROOT / ".venv" / "bin" / "python"
    p = argparse.ArgumentParser(
        description="Benchmark corrlog against notmuch, mu and a naive Whoosh indexer.",
        epilog="Example: .venv/bin/python bench/run.py --corpus ../shared/corpus --set small",
    )
    p.add_argument("--corpus", type=Path, default=default_corpus, help="folder of enron-*.tar.gz")
    p.add_argument("--set", choices=["small", "large"], default="small")
    p.add_argument("--runs", type=int, default=3, help="full ingests per tool (default 3)")
    p.add_argument("--query-runs", type=int, default=20, help="runs per query (default 20)")
    p.add_argument(
        "--incr-runs",
        type=int,
        default=3,
        help="incremental updates per tool, each into the same full store (default 3)",
    )
    p.add_argument("--idle-seconds", type=float, default=60.0, help="idle window (default 60)")
    p.add_argument("--daemon-timeout", type=float, default=1800.0, help="wait for READY=1")
    p.add_argument("--tools", default=",".join(TOOL_NAMES), help="comma-separated subset")
    p.add_argument("--out", type=Path, help="JSON results (default bench/results/DATE-SET.json)")
    p.add_argument("--workdir", type=Path, help="where the temp dir goes (default $TMPDIR)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (corpus and stores)")
    p.add_argument("--corrlog", type=Path, default=ROOT / ".venv" / "bin" / "corrlog")
    p.add_argument(
        "--python",
        type=Path,
        default=default_python if default_python.exists() else Path(sys.executable),
        help="Python with Whoosh for the naive baseline (default the project venv's)",
    )
    p.add_argument(
        "--install-peers",
        action="store_true",
        help="run scripts/ensure-bench-peers.sh first (apt-get install notmuch maildir-utils)",
    )
    p.add_argument(
        "--report",
        type=Path,
        metavar="JSON",
        help="only print the table of a saved result (goals recomputed) and exit",
    )
    args = p.parse_args(argv)
    if args.runs < 1 or args.query_runs < 1 or args.incr_runs < 1:
        p.error("--runs, --query-runs and --incr-runs must be at least 1")
    args.corpus = args.corpus.resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    """Run every phase and print the table."""
    args = parse_args(argv)
    if args.report:
        saved = json.loads(args.report.read_text())
        saved["goals"] = goals(saved)
        print(report(saved))
        return 0
    if args.install_peers:
        subprocess.run(["bash", str(ROOT / "scripts" / "ensure-bench-peers.sh")], check=True)
    started = time.perf_counter()
    res: dict[str, Any] = {
        "set": args.set,
        "runs": args.runs,
        "incr_runs": args.incr_runs,
        "query_runs": args.query_runs,
        "machine": machine(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }
    tmp = Path(tempfile.mkdtemp(prefix="corrlog-bench-", dir=args.workdir))
    say(f"bench: working in {tmp}")
    try:
        maildir = extract(args.corpus, args.set, tmp / "corpus")
        incr = extract(args.corpus, "incr", tmp / "incr")
        files = message_files(maildir)
        expected = len(files)
        incr_expected = len(message_files(incr))
        corpus = {"files": expected, "messages": distinct_messages(files)}
        res["expected"], res["incr_expected"] = expected, incr_expected
        res["distinct_messages"] = corpus["messages"]
        say(f"bench: {expected} message files, {corpus['messages']} distinct messages")
        if expected != EXPECTED[args.set] or incr_expected != EXPECTED["incr"]:
            say(
                f"bench: warning: corpus has {expected}+{incr_expected} messages, "
                f"its README says {EXPECTED[args.set]}+{EXPECTED['incr']}"
            )

        tools, unavailable, versions = [], {}, {}
        for tool in make_tools(args):
            why = tool.missing()
            if why:
                unavailable[tool.name] = why
                say(f"bench: {tool.name}: {why}")
            else:
                tools.append(tool)
                versions[tool.name] = tool.version()
        res["unavailable"], res["versions"] = unavailable, versions
        say(f"bench: tools {', '.join(t.name for t in tools)}; versions {versions}")

        say(f"bench: full ingest of {expected} messages, {args.runs} run(s) per tool")
        res["ingest"] = ingest(tools, maildir, tmp / "stores", args.runs, corpus)

        say("bench: hit counts")
        res["hits"] = query_hits(tools)
        whoosh = next((t for t in tools if t.name == "corrlog"), None)
        tantivy = next((t for t in tools if t.name == "corrlog-tantivy"), None)
        if isinstance(whoosh, Corrlog) and isinstance(tantivy, Corrlog):
            res["same_ids"] = same_ids(whoosh, tantivy)
        say(f"bench: queries, {args.query_runs} runs each")
        res["queries"] = time_queries(tools, args.query_runs)

        say(f"bench: incremental ({incr_expected} messages), {args.incr_runs} run(s) per tool")
        res["incremental"], snapshots = incremental(
            tools, incr, maildir, res["ingest"], args.incr_runs
        )
        corrlogs = [t for t in tools if isinstance(t, Corrlog)]
        say(f"bench: incremental through the daemon, {args.incr_runs} run(s) per corrlog engine")
        res["incremental_daemon"] = via_daemon(
            corrlogs, snapshots, incr, maildir, res["ingest"], args.incr_runs, tmp,
            args.daemon_timeout,
        )  # fmt: skip
        for snapshot in snapshots.values():
            shutil.rmtree(snapshot)

        res["daemon"] = {}
        for tool in tools:
            if isinstance(tool, Corrlog) and args.idle_seconds > 0:
                res["daemon"][tool.name] = daemon(
                    tool, tmp, args.idle_seconds, args.query_runs, args.daemon_timeout
                )
        res["machine"]["loadavg_end"] = measure.loadavg()
        res["total_s"] = time.perf_counter() - started
        res["goals"] = goals(res)
    finally:
        if args.keep:
            say(f"bench: kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    text = report(res)
    print(text)
    print(f"\n(total {res['total_s'] / 60:.1f} min)")
    out = args.out or ROOT / "bench" / "results" / (
        datetime.now(UTC).strftime("%Y%m%dT%H%MZ") + f"-{args.set}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    res["table"] = text
    out.write_text(json.dumps(res, indent=2, default=str) + "\n")
    say(f"bench: results written to {out}")
    wrong = [n for n, r in {**res["ingest"], **res["incremental"]}.items() if not r["count_ok"]]
    if wrong:
        say(f"bench: WRONG indexed count for {', '.join(sorted(set(wrong)))}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
