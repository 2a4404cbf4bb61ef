"""The ``quotes`` command: each tool's quotes across the drafts, lens by lens, and whether the pages agree.

On each page a quote is "raw" (the model's reply as generated), "edited" (an editor changed it there: the
approved text of that review) or "carried" (an approved text taken from another page). A (tool, lens) is
"approved" when every page shows one approved text, "divergent" when the pages show different texts.
"""

from __future__ import annotations

import json
from argparse import Namespace
from dataclasses import dataclass, field
from pathlib import Path

from .errors import BAD_INPUT, OK, InputError, Outcome
from .library import Library, Shown
from .project import Project
from .review import parse_section
from .serving import shown_provider
from .settings import settings_for


@dataclass
class Quote:
    tool: str
    lens: str
    pages: list[Shown] = field(default_factory=list)

    @property
    def state(self) -> str:
        if len({shown.text for shown in self.pages}) > 1:
            return "divergent"
        return "approved" if any(shown.state != "raw" for shown in self.pages) else "raw"


def collect(project: Project, tools: list[str], library: Library | None = None) -> list[Quote]:
    found: dict[tuple[str, str], Quote] = {}
    for name, showings in (library or Library.of(project)).shown.items():
        lens, slug = parse_section(name)
        if not tools or slug in tools:
            found[(slug, lens)] = Quote(slug, lens, sorted(showings, key=lambda shown: shown.page))
    order = {p.lens: i for i, p in enumerate(project.personas)}
    return sorted(found.values(), key=lambda q: (q.tool, order.get(q.lens, len(order))))


def describe(shown: Shown) -> str:
    state = {"edited": "edited here", "carried": f"approved in {shown.source}", "raw": "raw"}[shown.state]
    return state + (", pinned" if shown.pinned else "") + f", served by {shown_provider(shown.served_by)}"


def command(root: Path, args: Namespace) -> Outcome:
    project = Project(root, settings_for(root, args))
    for slug in args.tools:
        if not project.tool_path(slug).is_file():
            raise InputError("command line", "TOOL", f"{slug!r} has no fact sheet in tools/")
    library = Library.of(project)
    quotes = collect(project, args.tools, library)
    # A page that cannot be read is not left out in silence: what it shows is unknown, so the answer is incomplete.
    errors = [error.message for error in library.unreadable.values()]
    code = BAD_INPUT if errors else OK
    if args.json:
        return Outcome([json.dumps([{"tool": q.tool, "lens": q.lens, "state": q.state, "pages": [
            {"page": s.page, "state": s.state, "text": s.text, "approved_in": s.source, "pinned": s.pinned,
             "served_by": s.served_by or None}
            for s in q.pages]} for q in quotes], indent=2, ensure_ascii=False)], code, errors)
    lines = []
    for quote in quotes:
        lines.append(f"{quote.tool} / {quote.lens}: {quote.state}")
        for shown in quote.pages:
            lines.append(f"  {shown.page} ({describe(shown)}): {shown.text[:100]}"
                         + ("..." if len(shown.text) > 100 else ""))
    return Outcome(lines or ["No quotes: no draft under outputs/ carries one."], code, errors)

