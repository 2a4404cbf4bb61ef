"""Assemble the comparison page from the fact sheets and the panel's reviews, and find its sections."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from .errors import InputError
from .load import FactSheet, Persona
from .render import md, render
from .review import Review, card_id, is_card, section_id

NO_VOTES = "—"
# A card's figures, one per line with a blank line between (so an edit to one never conflicts with a change to
# another in a three-way merge). Panel ship is worked out from the verdicts on the page; a pinned card keeps its
# text but still takes the new panel ship line.
PANEL_SHIP, COMMUNITY, ENTRY = "Panel ship", "Community", "Entry"
# Section marks live only between rendering and splitting: md() strips control characters from every value.
_OPEN, _CLOSE = "\x00section:", "\x00/section\x00"
_MARK = re.compile("\x00section:([^\x00]*)\x00|\x00/section\x00")


@dataclass(frozen=True)
class Card:
    slug: str
    sheet: FactSheet
    panel_ship: str
    community: str

    @property
    def section(self) -> str:
        return card_id(self.slug)

    @property
    def figures(self) -> list[tuple[str, str]]:
        return [(PANEL_SHIP, self.panel_ship), (COMMUNITY, self.community), (ENTRY, self.sheet.entry)]


# A quote's verdict line, as the page template writes it: ``**<tool name>**: Ship``.
VERDICT_LINE = re.compile(r"^\*\*.+\*\*:\s*(ship|skip)\s*$", re.IGNORECASE)


def figure_line(line: str, label: str) -> bool:
    """Whether ``line`` is the card figure ``label`` as the page template writes it."""
    return line.startswith(f"- {label}: ")


@dataclass(frozen=True)
class Row:
    persona: Persona
    a: Review
    b: Review


@dataclass(frozen=True)
class Page:
    """A rendered page, and where each section (``card:<slug>``, ``<lens>:<slug>``) lies: [start, end) lines."""

    text: str
    spans: dict[str, tuple[int, int]] = field(default_factory=dict)

    @cached_property
    def _lines(self) -> tuple[str, ...]:  # split once: the rule compares many sections of one page
        return tuple(self.text.split("\n"))

    @property
    def lines(self) -> list[str]:
        """The page's lines, as a list of the caller's own to change."""
        return list(self._lines)

    def section(self, name: str) -> str:
        start, end = self.spans[name]
        return "\n".join(self._lines[start:end])

    def keep(self, base: Page, names: list[str]) -> Page:
        """This page with the named sections' text taken from ``base`` (pinned sections keep their old text,
        except a card's panel ship, which follows the panel)."""
        lines, spans = self.lines, dict(self.spans)
        for name in sorted((n for n in names if n in spans and n in base.spans), key=lambda n: -spans[n][0]):
            start, end = spans[name]
            old = base.section(name).split("\n")
            if is_card(name):
                new = next((line for line in lines[start:end] if figure_line(line, PANEL_SHIP)), None)
                old = [new if new is not None and figure_line(line, PANEL_SHIP) else line for line in old]
            lines[start:end] = old
            shift = len(old) - (end - start)
            spans = {n: (s + shift, e + shift) if s >= end else (s, e) for n, (s, e) in spans.items()}
            spans[name] = (start, start + len(old))
        return Page("\n".join(lines), spans)

    def replaced(self, name: str, shown: str, instead: str) -> Page:
        """This page with the named section showing the quote ``instead`` where it showed ``shown``."""
        start, end = self.spans[name]
        lines = self.lines
        lines[start:end] = [line.replace(md(shown), md(instead)) for line in lines[start:end]]
        return Page("\n".join(lines), self.spans)

    def frame(self) -> str:
        """The page outside its sections."""
        lines = self.lines
        for start, end in sorted(self.spans.values(), reverse=True):
            lines[start:end] = ["\x00"]
        return "\n".join(lines)


def section_ids(personas: list[Persona], slugs: list[str]) -> list[str]:
    return [card_id(slug) for slug in slugs] + [section_id(p.lens, slug) for p in personas for slug in slugs]


def vote_shares(votes: dict[str, int]) -> dict[str, str]:
    """Each tool's share of the community votes, as a whole percentage; none when nobody voted."""
    total = sum(votes.values())
    return {slug: f"{round(100 * count / total)}%" for slug, count in votes.items()} if total else {}


def panel_ship(verdicts: list[str]) -> str:
    """Share of the panel whose verdict is ship, as a whole percentage (a missing review has no verdict)."""
    verdicts = [verdict for verdict in verdicts if verdict]
    if not verdicts:
        return NO_VOTES
    return f"{round(100 * verdicts.count('ship') / len(verdicts))}%"


def _mark(name: str, caller: Callable[[], str]) -> str:
    return f"{_OPEN}{name}\x00{caller()}{_CLOSE}"


def split_sections(marked: str, expected: list[str], template: Path) -> Page:
    """Remove the section marks and record each section's lines; the template must mark each section once."""
    text, spans, opened, position = [], {}, None, 0
    offset = 0
    for match in _MARK.finditer(marked):
        text.append(marked[position:match.start()])
        offset += match.start() - position
        position = match.end()
        if match.group(1) is not None:
            if opened is not None:
                raise InputError(template, None, f"section {match.group(1)!r} starts inside section {opened[0]!r}")
            opened = (match.group(1), offset)
        elif opened is not None:
            spans[opened[0]] = (opened[1], offset)
            opened = None
    text.append(marked[position:])
    page = "".join(text)
    lines: dict[str, tuple[int, int]] = {}
    for name, (start, end) in spans.items():
        chunk = page[start:end]
        if not chunk.strip():
            raise InputError(template, None, f"section {name!r} is empty")
        first = start + len(chunk) - len(chunk.lstrip())
        last = start + len(chunk.rstrip())
        lines[name] = (page.count("\n", 0, first), page.count("\n", 0, last) + 1)
    missing = [name for name in expected if name not in lines]
    if missing:
        raise InputError(template, None, f"section {missing[0]!r} is not marked",
                         hint="Wrap each card and each quote in {% call section(...) %}...{% endcall %}.")
    ordered = sorted(lines.items(), key=lambda item: item[1])
    for (one, (_, end)), (two, (start, _)) in zip(ordered, ordered[1:], strict=False):
        if start < end:
            raise InputError(template, None, f"sections {one!r} and {two!r} share a line")
    return Page(page, lines)


def assemble(root: Path, personas: list[Persona], tools: dict[str, FactSheet], reviews: dict[str, Review],
             community: dict[str, str] | None = None, verdicts: dict[str, str] | None = None) -> Page:
    """``reviews`` by section id (``<lens>:<slug>``); ``community``: each tool's vote share; ``verdicts``: the
    verdicts as the page shows them where an editor changed one (panel ship follows the page)."""
    (slug_a, sheet_a), (slug_b, sheet_b) = tools.items()
    shown = {**{name: review.verdict for name, review in reviews.items()}, **(verdicts or {})}
    cards = [
        Card(slug, sheet, panel_ship([shown[section_id(p.lens, slug)] for p in personas]),
             (community or {}).get(slug, NO_VOTES))
        for slug, sheet in ((slug_a, sheet_a), (slug_b, sheet_b))
    ]
    rows = [Row(p, reviews[section_id(p.lens, slug_a)], reviews[section_id(p.lens, slug_b)]) for p in personas]
    marked = render(root, "page.md.j2", a=cards[0], b=cards[1], scorecard=rows, section=_mark)
    return split_sections(marked, section_ids(personas, [slug_a, slug_b]), root / "prompts" / "page.md.j2")
