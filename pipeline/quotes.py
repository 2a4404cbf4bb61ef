"""The ``quotes`` command: each tool's quotes across the drafts, lens by lens, and whether the pages agree.

A quote on a page is "raw" when it is the text as generated, "edited" when an editor changed it; a (tool, lens)
is "divergent" when the pages that carry a current review of it show different texts.
"""

from __future__ import annotations

import json
from argparse import Namespace
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import InputError, Outcome
from .merge import as_edited
from .project import Project
from .provenance import read_record
from .review import is_card, parse_section
from .settings import settings_for
from .stale import draft_lines


@dataclass
class Carried:
    page: str
    text: str
    state: str  # "raw" or "edited"


@dataclass
class Quote:
    tool: str
    lens: str
    pages: list[Carried] = field(default_factory=list)

    @property
    def state(self) -> str:
        texts = {carried.text for carried in self.pages}
        if len(texts) > 1:
            return "divergent"
        return "edited" if any(carried.state == "edited" for carried in self.pages) else "raw"


def shown_quote(lines: list[str]) -> str:
    """The quote a section shows: its blockquote lines, without the quotation marks the page adds."""
    text = " ".join(line.lstrip(">").strip() for line in lines if line.startswith(">"))
    return text.strip().removeprefix("“").removesuffix("”").strip()


def collect(project: Project, tools: list[str]) -> list[Quote]:
    found: dict[tuple[str, str], Quote] = {}
    for path in project.all_drafts():
        record = read_record(path)
        if record is None:
            continue
        lines = draft_lines(path)
        edited = as_edited(record.page, lines)
        for name, section in record.sections.items():
            if is_card(name) or not section.quote:
                continue
            lens, slug = parse_section(name)
            if tools and slug not in tools:
                continue
            text = shown_quote(edited.section(name).split("\n")) if name in edited.spans else ""
            state = "raw" if text == section.quote else "edited"
            found.setdefault((slug, lens), Quote(slug, lens)).pages.append(Carried(project.shown(path), text, state))
    order = {p.lens: i for i, p in enumerate(project.personas)}
    return sorted(found.values(), key=lambda q: (q.tool, order.get(q.lens, len(order))))


def command(root: Path, args: Namespace) -> Outcome:
    project = Project(root, settings_for(root, args))
    for slug in args.tools:
        if not project.tool_path(slug).is_file():
            raise InputError("command line", "TOOL", f"{slug!r} has no fact sheet in tools/")
    quotes = collect(project, args.tools)
    if args.json:
        return Outcome([json.dumps([{"tool": q.tool, "lens": q.lens, "state": q.state,
                                     "pages": [asdict(c) for c in q.pages]} for q in quotes], indent=2,
                                   ensure_ascii=False)])
    lines = []
    for quote in quotes:
        lines.append(f"{quote.tool} / {quote.lens}: {quote.state}")
        for carried in quote.pages:
            lines.append(f"  {carried.page} ({carried.state}): {carried.text[:100]}"
                         + ("..." if len(carried.text) > 100 else ""))
    return Outcome(lines or ["No quotes: no draft under outputs/ carries one."])


def approved_texts(project: Project, keys: dict[str, str], skip: Path) -> tuple[dict[str, tuple[str, str]], list[str]]:
    """For the sections in ``keys`` (section id -> the review's current cache key), the text an editor approved
    in another draft for the same review: (text, page) by section. Two different approved texts for one review
    are not chosen between: they come back as problems, for an editor."""
    wanted = {key: name for name, key in keys.items()}
    seen: dict[str, dict[str, str]] = {}  # section -> text -> page
    for path, record in project.recorded:
        if path.resolve() == skip.resolve():
            continue
        edited = None
        for name, section in record.sections.items():
            if section.key not in wanted or not section.quote or section.missing:
                continue
            edited = edited or as_edited(record.page, draft_lines(path))
            if name not in edited.spans:
                continue
            text = shown_quote(edited.section(name).split("\n"))
            if text and text != section.quote:
                seen.setdefault(wanted[section.key], {}).setdefault(text, project.shown(path))
    chosen = {name: next(iter(texts.items())) for name, texts in seen.items() if len(texts) == 1}
    problems = [f"{name}: two different approved texts ({', '.join(texts.values())}); the raw reply is used, an "
                "editor must choose" for name, texts in seen.items() if len(texts) > 1]
    return chosen, problems
