"""The ``preview`` command: a draft as a self-contained HTML page laid out like the published pages.

It reads the draft as the editor left it (Markdown, hand edits and all) and lays it out from the page's sections,
which the sidecar knows: each section of the page as last generated is mapped onto the editor's lines with a line
diff, so a card or a quote lands in its tool's column with whatever the editor added to it, and everything else
(the frame: title, dek, headings, text an editor put between sections, the footer) is shown where it stands.
A draft without a sidecar is laid out from its headings instead, and the page says so.

Unresolved refresh conflicts (diff3 markers, labelled or not, or the older HTML comment) are found on the lines
before any Markdown parsing, by the reader every command uses (``merge.unresolved``), and shown as callouts.
markdown-it parses with raw HTML turned off, so HTML in the text is shown as text; images become their alt text
and links their text, so the page loads nothing; the template escapes the rest.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markupsafe import Markup, escape

from .errors import InputError
from .merge import Unresolved, line_owners, marker, unresolved
from .provenance import DraftFile, Record, sidecar_path
from .render import render
from .review import CARD, FRAME, model_label, parse_section, section_id
from .serving import shown_provider


def _image_as_text(self: RendererHTML, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    return str(escape(self.renderInlineAsText(tokens[idx].children or [], options, env)))


def _link_open(self: RendererHTML, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    return '<span class="link">'


def _link_close(self: RendererHTML, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    return "</span>"


_MD = MarkdownIt("commonmark", {"html": False}).enable("table")
_MD.add_render_rule("image", _image_as_text)  # never an <img>: the preview loads nothing
_MD.add_render_rule("link_open", _link_open)  # the link's text, no address
_MD.add_render_rule("link_close", _link_close)

_VERDICT = re.compile(r":\s*(ship|skip)\s*", re.IGNORECASE)


def _colour_verdict(tokens: list[Token]) -> None:
    """``**<Tool name>**: Ship`` gets its verdict word wrapped in ``<span class="verdict ship">``."""
    if [t.type for t in tokens] != ["paragraph_open", "inline", "paragraph_close"]:
        return
    children = [c for c in tokens[1].children or [] if not (c.type == "text" and not c.content)]
    if [c.type for c in children[:1] + children[-2:]] != ["strong_open", "strong_close", "text"]:
        return
    match = _VERDICT.fullmatch(children[-1].content)
    if not match:
        return
    verdict = match.group(1)
    children[-1:] = [Token("text", "", 0, content=": "),
                     Token("span_open", "span", 1, attrs={"class": f"verdict {verdict.lower()}"}),
                     Token("text", "", 0, content=verdict), Token("span_close", "span", -1)]
    tokens[1].children = children


@dataclass
class Block:
    """One top-level Markdown block (a paragraph, a heading, a table, a blockquote ...)."""

    tokens: list[Token]
    kind: str = field(init=False)
    marks: tuple[str, ...] = ()  # claims the fact sheet does not support: highlighted for the editor to check

    def __post_init__(self) -> None:
        self.kind = self.tokens[0].type.removesuffix("_open")
        _colour_verdict(self.tokens)

    @property
    def tag(self) -> str:
        return self.tokens[0].tag

    @property
    def text(self) -> str:
        return "".join(t.content for t in self.tokens if t.type == "inline")

    @property
    def is_verdict(self) -> bool:
        return any(c.type == "span_open" for t in self.tokens if t.type == "inline" for c in t.children or [])

    def html(self) -> Markup:
        html = _MD.renderer.render(self.tokens, _MD.options, {})
        for claim in self.marks:  # markdown-it escaped the text; the claim is matched in its escaped form
            shown = str(escape(claim))
            html = html.replace(shown, f'<mark class="check" title="Not in the fact sheet: check it">{shown}</mark>', 1)
        return Markup(html)  # noqa: S704 (markdown-it escapes)


@dataclass
class CardFigures:
    """A card's figures, from its table: (label, value as inline HTML)."""

    pairs: list[tuple[str, Markup]]
    kind: str = "stats"


@dataclass
class Literal:
    """A line shown exactly as written: a conflict marker left without its partners."""

    line: str
    kind: str = "literal"


@dataclass
class ConflictPart:
    label: str
    detail: str
    blocks: list[Block]
    empty: str = "(nothing: these lines are empty)"


@dataclass
class ConflictCallout:
    title: str
    parts: list[ConflictPart]
    about: str = ""
    kind: str = "conflict"


Item = Block | CardFigures | Literal | ConflictCallout


def blocks_of(text: str) -> list[Block]:
    blocks, current, depth = [], [], 0
    for token in _MD.parse(text):
        current.append(token)
        depth += token.nesting
        if depth == 0:
            blocks.append(Block(current))
            current = []
    return blocks


# --- conflicts, found on lines before Markdown sees them ------------------------------------------------------


@dataclass(frozen=True)
class ConflictSpan:
    """Lines [start, end) of the draft holding one unresolved conflict."""

    start: int
    end: int
    item: ConflictCallout
    about_text_above: bool = False  # the older comment form: it follows the editor's text it is about


def _part(label: str, detail: str, lines: Sequence[str]) -> ConflictPart:
    shown = detail[len(label):].lstrip(" :-") if detail.lower().startswith(label.lower()) else detail
    return ConflictPart(label, shown, blocks_of("\n".join(lines)))


def _region(block: Unresolved) -> ConflictSpan:
    """A conflict block (merge.unresolved reads them, for every command) as the callout the page shows."""
    if block.about_text_above:  # the older comment form: its body is the generation, the editor's text is above
        parts = [ConflictPart("Your edit", "", [], "the text just above, kept as you left it"),
                 _part("Generated now", "not applied", block.generated or ())]
        callout = ConflictCallout("Unresolved conflict: pick one and delete the comment", parts,
                                  f"conflict in {block.what}")
        return ConflictSpan(block.start, block.end, callout, about_text_above=True)
    mine, ancestor, closing = block.labels
    parts = [_part("Your edit", mine, block.editor)]
    if block.base is not None:
        parts.append(_part("Generated last time", ancestor, block.base))
    if block.generated is not None:  # the closing marker says what the new generation is; ======= says nothing
        parts.append(_part("Generated now", closing, block.generated))
    callout = ConflictCallout("Unresolved conflict: pick one and delete the markers", parts)
    return ConflictSpan(block.start, block.end, callout)


def find_conflicts(lines: list[str], blocks: list[Unresolved] | None = None) -> list[ConflictSpan]:
    """The conflict blocks of ``lines`` (``blocks``, when the draft has read them) as callouts. A ``<<<<<<<`` line
    that nothing closes is no callout: it is shown as the line it is."""
    return [_region(block) for block in (unresolved(lines) if blocks is None else blocks) if block.complete]


def items_of(lines: list[str], start: int, end: int, regions: dict[int, ConflictSpan]) -> list[Item]:
    """Lines [start, end) of the draft as items; conflicts (all of whose lines are in the range) as callouts."""
    items: list[Item] = []
    text: list[str] = []

    def flush() -> None:
        items.extend(blocks_of("\n".join(text)))
        text.clear()

    index = start
    while index < end:
        region = regions.get(index)
        mark = marker(lines[index])
        if region and region.end <= end:
            flush()
            items.append(region.item)
            index = region.end
            continue
        if mark and mark[0] != "=======":  # a stray marker line would parse as nested blockquotes
            flush()
            items.append(Literal(lines[index]))
        else:
            text.append(lines[index])
        index += 1
    flush()
    return items


# --- the page: frame text and rows of two columns -----------------------------------------------------------------


@dataclass
class Column:
    section: str
    items: list[Item]
    after: list[Item] = field(default_factory=list)  # frame text right after the section, before the next one
    flags: list[str] = field(default_factory=list)  # the quote's claims the fact sheet does not support
    sameness: list[str] = field(default_factory=list)  # earlier quotes on the page it makes the same point as
    notes: list[str] = field(default_factory=list)  # near misses on length, accepted
    source: str = ""  # a quote's model and the provider that served it, as the sidecar records them


@dataclass
class LayoutRow:
    kind: str  # "cards" or "lens"
    left: Column
    right: Column
    top: list[Item] = field(default_factory=list)  # a lens row's heading


@dataclass
class Frame:
    items: list[Item]
    role: str = "frame"  # "header", "frame" or "footer"
    kind: str = "frame"


Part = Frame | LayoutRow


def table_stats(block: Block) -> list[tuple[str, Markup]]:
    """A one-row table as (label, value) pairs; [] for any other shape."""
    rows: list[list[Token]] = []
    for token in block.tokens:
        if token.type == "tr_open":
            rows.append([])
        elif token.type == "inline" and rows:
            rows[-1].append(token)
    if len(rows) != 2 or len(rows[0]) != len(rows[1]) or not rows[0]:
        return []
    return [(label.content, Markup(_MD.renderer.render([value], _MD.options, {})))  # noqa: S704
            for label, value in zip(rows[0], rows[1], strict=True)]


def list_stats(block: Block) -> list[tuple[str, Markup]]:
    """A list of ``Label: **value**`` items (the card's figures, one per line) as (label, value) pairs; [] for any
    other list."""
    pairs: list[tuple[str, Markup]] = []
    for token in block.tokens:
        if token.type != "inline":
            continue
        label, colon, _ = token.content.partition(": ")
        html = _MD.renderer.render([token], _MD.options, {})
        if not colon or not label or not html.startswith(f"{escape(label)}: "):
            return []
        value = html.removeprefix(f"{escape(label)}: ").strip()
        if value.startswith("<strong>") and value.endswith("</strong>") and value.count("<strong>") == 1:
            value = value.removeprefix("<strong>").removesuffix("</strong>")  # the tile shows it bold already
        pairs.append((label, Markup(value)))  # noqa: S704
    return pairs


def card_items(items: list[Item]) -> list[Item]:
    """The card's figures (a list of ``Label: value`` lines, or the older one-row table) become its figure tiles,
    in place; anything else is shown as it is."""
    for index, item in enumerate(items):
        if isinstance(item, Block) and item.kind in ("table", "bullet_list"):
            pairs = table_stats(item) if item.kind == "table" else list_stats(item)
            if pairs:
                return [*items[:index], CardFigures(pairs), *items[index + 1:]]
    return items


def _split_heading(items: list[Item]) -> tuple[list[Item], list[Item]]:
    """Frame text before a lens row: what precedes its heading stays outside the row, the heading goes in."""
    last = max((k for k, item in enumerate(items)
                if isinstance(item, Block) and item.kind == "heading" and item.tag not in ("h1", "h2")), default=None)
    return (items, []) if last is None else (items[:last], items[last:])


def sectioned(record: Record, draft: DraftFile) -> list[Part]:
    """Rows from the sidecar's sections mapped onto the editor's lines; frame text between them in place."""
    lines = draft.lines
    regions = find_conflicts(lines, draft.conflicts)
    by_start = {region.start: region for region in regions}
    base = record.page
    slug_a, slug_b = record.tools
    kinds: list[str] = []
    for name, _ in sorted(base.spans.items(), key=lambda item: item[1]):
        kind, slug = parse_section(name)
        if slug in record.tools and kind not in kinds:
            kinds.append(kind)
    known = {section_id(kind, slug) for kind in kinds for slug in record.tools}
    owners = [owner if owner in known else FRAME for owner in line_owners(base, lines, regions)]

    def items(start: int, end: int, owner: str, after: str | None = None) -> list[Item]:
        """Lines of ``owner`` in [start, end); with ``after``, only those whose last section line is ``after``'s."""
        found: list[Item] = []
        index, last = start, None
        while index < end:
            if owners[index] != owner:
                last = owners[index] if owners[index] != FRAME else last
                index += 1
                continue
            run = index
            while run < end and owners[run] == owner:
                run += 1
            if after is None or last == after:
                found += items_of(lines, index, run, by_start)
            index = run
        return found

    def column(kind: str, name: str, start: int, end: int) -> Column:
        shown = items(start, end, name)
        section = record.sections.get(name)
        flags = list(section.flags) if section else []
        for item in shown:
            if isinstance(item, Block):
                item.marks = tuple(flags)
        source = f"{model_label(section.model, section.provider)}, served by {shown_provider(section.served_by)}" \
            if section and section.key and section.model and not section.missing else ""
        # Frame text between the row's two sections sits under the one it follows: in reading order, in place.
        return Column(name, card_items(shown) if kind == CARD else shown, items(start, end, FRAME, after=name), flags,
                      list(section.sameness) if section else [], list(section.notes) if section else [], source)

    rows = []
    for kind in kinds:
        left, right = section_id(kind, slug_a), section_id(kind, slug_b)
        where = [j for j, owner in enumerate(owners) if owner in (left, right)]
        if where:
            rows.append((kind, left, right, where[0], where[-1] + 1))
    parts: list[Part] = []
    position = 0
    for kind, left, right, start, end in rows:
        before = items(position, start, FRAME)
        outside, top = _split_heading(before) if kind != CARD else (before, [])
        if outside or not parts:
            parts.append(Frame(outside, "header" if not parts else "frame"))
        # Owners follow the page's section order (matching keeps it), so rows never overlap.
        parts.append(LayoutRow("cards" if kind == CARD else "lens", column(kind, left, start, end),
                         column(kind, right, start, end), top))
        position = end
    parts.append(Frame(items(position, len(lines), FRAME), "footer" if rows else "frame"))
    return parts


# --- without a sidecar: from the headings ---------------------------------------------------------------------


def _starts_quote(item: Item) -> bool:
    if isinstance(item, Block):
        return item.is_verdict
    if isinstance(item, ConflictCallout) and not item.about:
        return any(part.blocks and part.blocks[0].is_verdict for part in item.parts)
    return False


def by_headings(draft: DraftFile) -> list[Part]:
    """Header, cards, scorecard and footer, following the page's headings, for a draft without a sidecar."""
    lines = draft.lines
    regions = find_conflicts(lines, draft.conflicts)
    items = items_of(lines, 0, len(lines), {region.start: region for region in regions})
    header: list[Item] = []
    cards: list[list[Item]] = []
    intro: list[Item] = []
    lenses: list[tuple[list[Item], list[list[Item]]]] = []
    footer: list[Item] = []
    part = "header"
    after_category = False

    def is_h2(item: Item | None, scorecard: bool) -> bool:
        return isinstance(item, Block) and item.kind == "heading" and item.tag == "h2" \
            and ("scorecard" in item.text.lower()) == scorecard

    for index, item in enumerate(items):
        following = items[index + 1] if index + 1 < len(items) else None
        category = isinstance(item, Block) and item.kind == "paragraph" and is_h2(following, False)
        if part in ("header", "card") and (category or (is_h2(item, False) and not after_category)):
            part = "card"
            cards.append([])
        after_category = category
        if part in ("header", "card") and is_h2(item, True):
            part = "scorecard"
        elif part == "scorecard" and isinstance(item, Block) and item.kind == "hr":
            part = "footer"
        if part == "header":
            header.append(item)
        elif part == "card":
            cards[-1].append(item)
        elif part == "footer":
            footer.append(item)
        elif isinstance(item, Block) and item.kind == "heading" and item.tag not in ("h1", "h2"):
            lenses.append(([item], []))
        elif not lenses:
            intro.append(item)
        elif _starts_quote(item):
            lenses[-1][1].append([item])
        elif lenses[-1][1]:
            lenses[-1][1][-1].append(item)
        else:
            lenses[-1][0].append(item)
    parts: list[Part] = [Frame(header, "header")]
    if cards:
        cards += [[], []]
        parts.append(LayoutRow("cards", Column("", card_items(cards[0])),
                         Column("", card_items(cards[1]), [item for card in cards[2:] for item in card])))
    parts.append(Frame(intro))
    for top, quotes in lenses:
        quotes += [[], []]
        parts.append(LayoutRow("lens", Column("", quotes[0]),
                         Column("", quotes[1], [item for quote in quotes[2:] for item in quote]), top))
    parts.append(Frame(footer, "footer"))
    return parts


def title_of(parts: list[Part]) -> str:
    frames = [item for part in parts if isinstance(part, Frame) for item in part.items]
    return next((item.text for item in frames if isinstance(item, Block) and item.tag == "h1"), "Comparison")


def preview(root: Path, path: Path) -> str:
    draft = DraftFile(path)
    draft.lines  # noqa: B018 (a draft that cannot be read is the one error, as in every command)
    notice = ""
    try:
        record = draft.record
    except InputError as exc:
        record, notice = None, f"The sidecar could not be read ({exc.problem}), so"
    if record is None:
        notice = notice or f"This draft has no sidecar ({sidecar_path(path).name}), so"
        notice += " the preview follows its headings: text an editor added may sit in a neighbouring column."
        parts = by_headings(draft)
    else:
        parts = sectioned(record, draft)
    return render(root, "preview.html.j2", title=title_of(parts), notice=notice, parts=parts)


def is_stream(path: Path) -> bool:
    """A terminal, a device or a pipe (``/dev/stdout``, a FIFO): written straight to, never replaced."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)
