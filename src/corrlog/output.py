"""Printers for people and scripts: search results as a table, JSON or ids (no logic here)."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterable
from typing import Any

import click

from corrlog.index import MARK_END, MARK_START, Hit

_CONTROL = re.compile(r"[\x00-\x01\x04-\x08\x0b-\x1f\x7f-\x9f]")


def clean(text: str) -> str:
    """Neutralise control characters (terminal escapes) in text shown on a terminal."""
    return _CONTROL.sub("\N{REPLACEMENT CHARACTER}", text)


def hit_json(hit: Hit) -> dict[str, Any]:
    """The stable JSON shape of one search result (documented in the README)."""
    f = hit.fields
    recipients = f.get("recipients") or []
    return {
        "id": f.get("id"),
        "kind": f.get("kind"),
        "source": f.get("source"),
        "origin": f.get("origin"),
        "direction": f.get("direction"),
        "client": f.get("client") or None,
        "contract": f.get("contract") or None,
        "milestone": f.get("milestone") or None,
        "date": f.get("date_iso"),
        "subject": f.get("subject", ""),
        "from": f.get("sender") or None,
        "to": list(recipients),
        "snippet": hit.snippet,
        "score": hit.score,
        "sha256": f.get("sha256"),
    }


def render_json(hits: Iterable[Hit]) -> str:
    """One JSON array."""
    return json.dumps([hit_json(h) for h in hits], ensure_ascii=False, indent=2)


def render_ids(hits: Iterable[Hit]) -> str:
    """One id per line."""
    return "\n".join(str(h.fields.get("id")) for h in hits)


def _highlight(marked: str, color: bool) -> str:
    text = clean(" ".join(marked.split()))
    if color:
        text = re.sub(
            f"{MARK_START}(.*?){MARK_END}",
            lambda m: click.style(m.group(1), bold=True, fg="yellow"),
            text,
        )
        return text
    return text.replace(MARK_START, "*").replace(MARK_END, "*")


def render_table(hits: list[Hit], total: int, color: bool, width: int | None = None) -> str:
    """Readable rows: id, date, kind, contract, who, subject; then the highlighted snippet.

    `width` is the terminal's (default: this process's, as shutil sees it).
    """
    if not hits:
        return "no matches"
    if width is None:
        width = shutil.get_terminal_size((100, 20)).columns
    lines = []
    for hit in hits:
        f = hit.fields
        who = f.get("sender") or f.get("source", "")
        head = "  ".join(
            [
                str(f.get("id")),
                str(f.get("date_iso", ""))[:10],
                f"{f.get('kind', ''):<9}",
                f"{(f.get('contract') or '-'):<14}",
                clean(str(who))[:28],
                clean(str(f.get("subject", ""))),
            ]
        )
        lines.append(click.style(head[:width], bold=True) if color else head[:width])
        snippet = _highlight(hit.marked_snippet, color)
        if snippet:
            lines.append("    " + snippet[: max(40, width * 2)])
    shown = f"{len(hits)} of {total}" if total > len(hits) else str(len(hits))
    lines.append(f"({shown} match{'es' if total != 1 else ''})")
    return "\n".join(lines)
