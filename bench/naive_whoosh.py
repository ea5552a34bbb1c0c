"""The naive Whoosh baseline: what anyone would write first, to measure corrlog against.

One process, one `IndexWriter`, one commit; every message parsed with the stdlib
`email` package and `policy.default`; a schema close to corrlog's (stemmed
subject and body, both stored; `from`/`to` as lower-cased address keywords; a
sortable UTC date). No archive, no ledger, no SQLite, no capture filter, no
HTML-to-text, no quote stripping, no attachment text.

    naive_whoosh.py index --maildir DIR --index DIR          # fresh index of every message
    naive_whoosh.py index --index DIR --files-from LIST      # add these files (incremental)
    naive_whoosh.py count --index DIR
    naive_whoosh.py search --index DIR QUERY [--sort date] [--limit 20]

`index` prints one JSON line with the message count and the time spent parsing,
in `add_document` and in `commit`.
"""

from __future__ import annotations

import argparse
import email
import hashlib
import json
import os
import sys
import time
from datetime import UTC, datetime
from email import policy
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path
from typing import Any

from whoosh import index
from whoosh.analysis import StemmingAnalyzer
from whoosh.fields import DATETIME, ID, KEYWORD, STORED, TEXT, Schema
from whoosh.qparser import MultifieldParser
from whoosh.qparser.dateparse import DateParserPlugin

EPOCH = datetime(1970, 1, 1)


def make_schema() -> Schema:
    """Roughly corrlog's searchable fields, without the ones only corrlog has (contract, …)."""
    words = StemmingAnalyzer()
    return Schema(
        id=ID(stored=True, unique=True),
        path=STORED(),
        **{"from": KEYWORD(lowercase=True, scorable=True, stored=True)},
        to=KEYWORD(lowercase=True, scorable=True),
        subject=TEXT(stored=True, analyzer=words, field_boost=2.0),
        body=TEXT(stored=True, analyzer=words),
        date=DATETIME(sortable=True, stored=True),
    )


def maildir_files(root: Path) -> list[Path]:
    """Every message file in cur/ and new/ of every Maildir below `root`, sorted."""
    found = []
    for directory, subdirs, files in os.walk(root):
        here = Path(directory)
        if here.name in ("cur", "new"):
            found += [here / name for name in files if not name.startswith(".")]
        subdirs[:] = [d for d in subdirs if d != "tmp"]
    return sorted(found)


def _addresses(msg: Any, name: str) -> str:
    try:
        values = [str(v) for v in msg.get_all(name, [])]
    except Exception:
        return ""
    return " ".join(addr.lower() for _n, addr in getaddresses(values) if addr)


def _body(msg: Any) -> str:
    try:
        part = msg.get_body(preferencelist=("plain", "html"))
        if part is None:
            return ""
        content = part.get_content()
        return content if isinstance(content, str) else ""
    except Exception:
        payload = msg.get_payload(decode=True)
        return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""


def _date(msg: Any) -> datetime:
    try:
        value = parsedate_to_datetime(str(msg["date"]))
    except Exception:
        return EPOCH
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def document(path: Path, raw: bytes) -> dict[str, Any]:
    """The Whoosh document of one message file."""
    msg = email.message_from_bytes(raw, policy=policy.default)
    key = path.name.split(":2,", 1)[0]
    return {
        "id": hashlib.sha256(key.encode()).hexdigest()[:12],
        "path": str(path),
        "from": _addresses(msg, "from"),
        "to": _addresses(msg, "to") + " " + _addresses(msg, "cc"),
        "subject": str(msg["subject"] or ""),
        "body": _body(msg),
        "date": _date(msg),
    }


def cmd_index(args: argparse.Namespace) -> int:
    """Index every file (fresh), or the listed files into an existing index."""
    directory = Path(args.index)
    if args.files_from:
        files = [Path(line) for line in Path(args.files_from).read_text().splitlines() if line]
        ix = index.open_dir(str(directory))
    else:
        files = maildir_files(Path(args.maildir))
        directory.mkdir(parents=True, exist_ok=True)
        ix = index.create_in(str(directory), make_schema())
    parse = add = 0.0
    writer = ix.writer()
    for path in files:
        started = time.perf_counter()
        doc = document(path, path.read_bytes())
        parsed = time.perf_counter()
        writer.add_document(**doc)
        added = time.perf_counter()
        parse += parsed - started
        add += added - parsed
    started = time.perf_counter()
    writer.commit()
    commit = time.perf_counter() - started
    print(
        json.dumps(
            {"messages": len(files), "parse_s": parse, "add_s": add, "commit_s": commit},
        )
    )
    return 0


def cmd_count(args: argparse.Namespace) -> int:
    """Print the number of documents."""
    print(index.open_dir(str(args.index)).doc_count())
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    """Print the hits of a query, one line each (date, sender, subject)."""
    ix = index.open_dir(str(args.index))
    parser = MultifieldParser(["subject", "body"], ix.schema)
    parser.add_plugin(DateParserPlugin(free=False))
    parsed = parser.parse(args.query)
    with ix.searcher() as searcher:
        if args.sort == "date":
            hits = searcher.search(parsed, limit=args.limit, sortedby="date", reverse=True)
        else:
            hits = searcher.search(parsed, limit=args.limit)
        for hit in hits:
            date = hit.get("date")
            day = date.date().isoformat() if isinstance(date, datetime) else "-"
            print(f"{hit['id']}  {day}  {hit.get('from', '')[:30]:30}  {hit.get('subject', '')}")
        print(f"({len(hits)} of {hits.estimated_length()} matches)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command line of the baseline."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("index")
    p.add_argument("--index", required=True)
    p.add_argument("--maildir")
    p.add_argument("--files-from")
    p.set_defaults(run=cmd_index)
    p = sub.add_parser("count")
    p.add_argument("--index", required=True)
    p.set_defaults(run=cmd_count)
    p = sub.add_parser("search")
    p.add_argument("--index", required=True)
    p.add_argument("query")
    p.add_argument("--sort", choices=["relevance", "date"], default="relevance")
    p.add_argument("--limit", type=int, default=20)
    p.set_defaults(run=cmd_search)
    args = parser.parse_args(argv)
    if args.command == "index" and not (args.maildir or args.files_from):
        parser.error("index needs --maildir or --files-from")
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
