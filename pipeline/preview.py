"""The ``preview`` command: a draft as a self-contained HTML page laid out like the published pages.

It reads the draft as the editor left it (Markdown, hand edits and all). markdown-it parses it with raw HTML
turned off, so any HTML in the text is shown as text; the page template escapes everything else.
"""

from __future__ import annotations

from argparse import Namespace
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token
from markupsafe import Markup

from .errors import Outcome
from .project import Project
from .render import render
from .settings import settings_for
from .write import write_atomic

_MD = MarkdownIt("commonmark", {"html": False}).enable("table")


@dataclass
class Block:
    tokens: list[Token]

    @property
    def kind(self) -> str:
        return self.tokens[0].type.removesuffix("_open")

    @property
    def tag(self) -> str:
        return self.tokens[0].tag

    @property
    def text(self) -> str:
        return "".join(t.content for t in self.tokens if t.type == "inline")

    def html(self) -> Markup:
        return Markup(_MD.renderer.render(self.tokens, _MD.options, {}))  # noqa: S704 (markdown-it escapes)


@dataclass
class Card:
    blocks: list[Block] = field(default_factory=list)
    name: str = ""
    stats: list[tuple[str, str]] = field(default_factory=list)  # (label, value) from the card's table


@dataclass
class Lens:
    heading: Block
    quotes: list[list[Block]] = field(default_factory=list)  # each: the verdict line and the quote


def blocks_of(text: str) -> list[Block]:
    blocks, current, depth = [], [], 0
    for token in _MD.parse(text):
        current.append(token)
        depth += token.nesting
        if depth == 0:
            blocks.append(Block(current))
            current = []
    return blocks


def table_stats(block: Block) -> list[tuple[str, str]]:
    cells = [t.content for t in block.tokens if t.type == "inline"]
    half = len(cells) // 2
    return list(zip(cells[:half], cells[half:], strict=True)) if cells and len(cells) % 2 == 0 else []


def layout(text: str) -> dict[str, Any]:
    """Split the draft into header, cards, scorecard and footer, following the page's headings."""
    blocks = blocks_of(text)
    header: list[Block] = []
    cards: list[Card] = []
    lenses: list[Lens] = []
    footer: list[Block] = []
    part = "header"
    after_category = False
    for index, block in enumerate(blocks):
        following = blocks[index + 1] if index + 1 < len(blocks) else None
        starts_card = block.kind == "heading" and block.tag == "h2" and "scorecard" not in block.text.lower()
        category = block.kind == "paragraph" and following is not None and following.kind == "heading" \
            and following.tag == "h2" and "scorecard" not in following.text.lower()
        if block.kind == "hr":
            part = "footer"
            continue
        if part in ("header", "card") and (category or (starts_card and not after_category)):
            part = "card"
            cards.append(Card())
        after_category = category
        if block.kind == "heading" and block.tag == "h2" and "scorecard" in block.text.lower():
            part = "scorecard"
            continue
        if part == "header":
            header.append(block)
        elif part == "card":
            card = cards[-1]
            if starts_card:
                card.name = block.text
            if block.kind == "table" and not card.stats:
                card.stats = table_stats(block)
                if card.stats:
                    continue
            card.blocks.append(block)
        elif part == "scorecard":
            if block.kind == "heading":
                lenses.append(Lens(block))
            elif lenses:
                if block.kind == "paragraph" or not lenses[-1].quotes:
                    lenses[-1].quotes.append([])
                lenses[-1].quotes[-1].append(block)
        else:
            footer.append(block)
    title = next((b.text for b in header if b.kind == "heading" and b.tag == "h1"), "Comparison")
    return {"title": title, "header": header, "cards": cards, "lenses": lenses, "footer": footer}


def preview(root: Path, draft: Path) -> str:
    return render(root, "preview.html.j2", **layout(draft.read_text(encoding="utf-8")))


def command(root: Path, args: Namespace) -> Outcome:
    settings = settings_for(root, args)
    path = Project(root, settings).find_draft(args.draft)
    out = (root / args.out if args.out else settings.cache_dir / "preview" / f"{path.stem}.html").resolve()
    write_atomic(out, preview(root, path))
    return Outcome([f"Wrote {out} (open file://{out})"])
