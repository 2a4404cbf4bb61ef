"""Assemble the comparison page from the fact sheets and the panel's reviews."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .generate import Review
from .load import FactSheet, Persona
from .render import render

NO_VOTES = "—"


@dataclass(frozen=True)
class Card:
    slug: str
    sheet: FactSheet
    panel_ship: str
    community: str


@dataclass(frozen=True)
class Row:
    persona: Persona
    a: Review
    b: Review


def panel_ship(verdicts: list[str]) -> str:
    """Share of the panel whose verdict is ship, as a whole percentage."""
    if not verdicts:
        return NO_VOTES
    return f"{round(100 * verdicts.count('ship') / len(verdicts))}%"


def assemble(root: Path, personas: list[Persona], tools: dict[str, FactSheet],
             reviews: dict[tuple[str, str], Review]) -> str:
    (slug_a, sheet_a), (slug_b, sheet_b) = tools.items()
    cards = [
        Card(slug, sheet, panel_ship([reviews[(p.lens, slug)].verdict for p in personas]), NO_VOTES)
        for slug, sheet in ((slug_a, sheet_a), (slug_b, sheet_b))
    ]
    rows = [Row(p, reviews[(p.lens, slug_a)], reviews[(p.lens, slug_b)]) for p in personas]
    return render(root, "page.md.j2", a=cards[0], b=cards[1], scorecard=rows)
