"""The ``quotes`` command: each tool's quotes across the drafts, lens by lens, and whether the pages agree.

On each page a quote is "raw" (the model's reply as generated), "edited" (an editor changed it there: the
approved text of that review) or "carried" (an approved text taken from another page). A (tool, lens) is
"approved" when every page shows one approved text, "divergent" when the pages show different texts.

``--sameness``: the stock phrases of the catalogue (per lens, phrases of four words or more that recur in more
than one quote in eight, outside the house signposts, with the pages), and the quotes each draft's sidecar flags
as making another quote's point or as a near miss on length.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from .errors import InputError, Outcome
from .library import Library, Shown
from .project import Project
from .review import describe_section, parse_section
from .sameness import Stock, Terms, house_phrases, stock_phrases, stock_report, tool_terms
from .serving import shown_provider


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


def _terms(project: Project, slug: str) -> Terms:
    try:
        return tool_terms(project.tool(slug), slug)
    except InputError:  # a tool whose fact sheet is gone: its slug names it
        return tool_terms(None, slug)


def stock(project: Project, quotes: list[Quote]) -> tuple[dict[str, list[Stock]], dict[str, int]]:
    """The stock phrases of the quotes as the pages show them now (one text on several pages counts once), and how
    many quotes each lens has."""
    shown = [(q.lens, f"{q.tool} on {s.page}", s.text, _terms(project, q.tool)) for q in quotes for s in q.pages
             if s.text]
    products = frozenset(word for path in sorted(project.root.glob("tools/*.toml"))
                         for word in _terms(project, path.stem).names)
    counts: dict[str, int] = {}
    for lens, *_ in {(lens, text, terms) for lens, _, text, terms in shown}:  # a text on several pages: once
        counts[lens] = counts.get(lens, 0) + 1
    return stock_phrases(shown, house_phrases(project.personas), products), counts


def flagged(project: Project, tools: list[str]) -> list[tuple[str, str, str, str]]:
    """(page, section, kind, what) for every quote a draft's sidecar flags: "same point" or "length"."""
    found = []
    for path, record in project.recorded:
        for name, section in record.sections.items():
            if tools and parse_section(name)[1] not in tools:
                continue
            found += [(project.shown(path), name, "same point", flag) for flag in section.sameness]
            found += [(project.shown(path), name, "length", note) for note in section.notes]
    return sorted(found)


def sameness(project: Project, quotes: list[Quote], tools: list[str], as_json: bool) -> Outcome:
    report, counts = stock(project, quotes)
    flags = flagged(project, tools)
    if as_json:
        return Outcome([json.dumps({"stock_phrases": {lens: [{"phrase": s.phrase, "quotes": len(s.where),
                                                              "pages": s.where} for s in found]
                                                      for lens, found in report.items()},
                                    "flags": [{"page": page, "section": name, "kind": kind, "text": text}
                                              for page, name, kind, text in flags]}, indent=2, ensure_ascii=False)])
    lines = ["Stock phrases across the drafts (outside the house signposts), per lens:",
             *("  " + line for line in stock_report(report, counts))]
    if flags:
        lines.append("Flagged for the editor when generated (accepted, not asked again):")
        lines += [f"  {page}: {describe_section(name)} " + (f"repeats the {text}" if kind == "same point" else text)
                  for page, name, kind, text in flags]
    return Outcome(lines)
