"""Distinct voices measured on the calibration corpus: the sameness check against hand labels, the stock phrases
of a set of writers, and the lengths they write (for the near-miss band of ``validate.NEAR_MISS``).

Hand labels (``calibration/sameness/labels.jsonl``, one JSON object a line) say, for pairs of one writer's
quotes, whether an editor would cut one as making the other's point:

- ``{"kind": "lenses", "writer", "tool", "pair": [lens, lens], "same_point": bool, "shared": "..."}``: two lenses
  on one tool;
- ``{"kind": "tools", "writer", "lens", "pair": [tool, tool], "same_point": bool, "shared": "..."}``: one lens on
  two tools.

A writer is named by its corpus file (``w1`` names ``w1-terse-american.jsonl``).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError, clip
from .load import FactSheet, Persona
from .sameness import (
    QUOTE_DICE,
    STOCK_SHARE,
    Overlap,
    house_phrases,
    overlap,
    prepare,
    stock_phrases,
    stock_report,
    tool_terms,
)
from .validate import word_band

LABELS = Path("sameness") / "labels.jsonl"


@dataclass(frozen=True)
class WriterQuote:
    writer: str  # the corpus file's name, without .jsonl
    tool: str
    lens: str
    quote: str


def read_writers(folder: Path) -> list[WriterQuote]:
    """Every quote of every writer's file (``*.jsonl``, one ``{"tool", "lens", "quote", ...}`` a line) in
    ``folder``; files whose name starts with ``junk`` make no lens's points and are left out."""
    files = sorted(path for path in folder.glob("*.jsonl") if not path.name.startswith("junk"))
    if not files:
        raise InputError(folder, None, "no writers' files (*.jsonl) here")
    quotes = []
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                quotes.append(WriterQuote(path.stem, str(entry["tool"]), str(entry["lens"]), str(entry["quote"])))
            except (ValueError, KeyError, TypeError) as exc:
                raise InputError(path, f"line {number}", f"not a writer's quote ({exc})") from None
    return quotes


@dataclass(frozen=True)
class Label:
    kind: str  # "lenses" or "tools"
    writer: str
    where: str  # the tool (for lenses) or the lens (for tools)
    pair: tuple[str, str]
    same: bool
    shared: str


def read_labels(path: Path) -> list[Label]:
    labels = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            kind = str(entry["kind"])
            if kind not in ("lenses", "tools"):
                raise ValueError(f"kind {kind!r} is neither lenses nor tools")
            one, two = entry["pair"]
            labels.append(Label(kind, str(entry["writer"]), str(entry["tool" if kind == "lenses" else "lens"]),
                                (str(one), str(two)), bool(entry["same_point"]), str(entry.get("shared", ""))))
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(path, f"line {number}", f"not a sameness label ({exc})") from None
    return labels


@dataclass
class Agreement:
    """Per row (a lens, a lens pair, or a lens across tools): [flagged, labelled same], [passed, labelled distinct],
    and the labels the check got wrong."""

    rows: dict[str, list[int]] = field(default_factory=dict)  # row -> [same flagged, same, distinct passed, distinct]
    misses: list[tuple[Label, Overlap]] = field(default_factory=list)

    def add(self, row: str, label: Label, found: Overlap) -> None:
        tally = self.rows.setdefault(row, [0, 0, 0, 0])
        if label.same:
            tally[0] += found.same
            tally[1] += 1
        else:
            tally[2] += not found.same
            tally[3] += 1

    def table(self) -> list[str]:
        header = ["pairs", "labelled same: flagged", "labelled distinct: passed"]
        rows = [[row, _share(t[0], t[1]), _share(t[2], t[3])] for row, t in self.rows.items()]
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                for row in [header, *rows]]


def _share(right: int, total: int) -> str:
    return f"{right}/{total} ({100 * right / total:.0f}%)" if total else "-"


def _writer(name: str, writers: set[str]) -> str | None:
    """The corpus file a label's writer names: ``w1`` or ``w1-terse-american`` for ``w1-terse-american``."""
    return next((w for w in sorted(writers) if w == name or w.startswith(name + "-") or name.startswith(w + "-")),
                None)


def agreement(quotes: list[WriterQuote], labels: list[Label], personas: list[Persona],
              sheets: dict[str, FactSheet]) -> Agreement:
    """The sameness check's verdict on every labelled pair, tallied per lens pair and per lens (within a tool:
    every pair the lens is in), and per lens across tools; the earlier of a pair is the earlier lens in panel
    order, or the first tool."""
    order = {p.lens: p.order for p in personas}
    house = house_phrases(personas)
    text = {(q.writer, q.tool, q.lens): q.quote for q in quotes}
    writers = {q.writer for q in quotes}
    result = Agreement()
    lenses = [p.lens for p in sorted(personas, key=lambda p: p.order)]
    rows = [f"{one} / {two}" for i, one in enumerate(lenses) for two in lenses[i + 1:]]
    rows += [f"{lens} (its 3 pairs)" for lens in lenses] + ["all lens pairs"]
    rows += [f"{lens} across tools" for lens in lenses] + ["all tool pairs"]
    result.rows = {row: [0, 0, 0, 0] for row in rows}
    for label in labels:
        writer = _writer(label.writer, writers)
        if writer is None:
            continue  # a writer this corpus does not hold
        if label.kind == "lenses":
            first, second = sorted(label.pair, key=lambda lens: order.get(lens, 99))
            pair = [(writer, label.where, first), (writer, label.where, second)]
            terms = [tool_terms(sheets.get(label.where), label.where)] * 2
        else:
            pair = [(writer, tool, label.where) for tool in label.pair]
            terms = [tool_terms(sheets.get(tool), tool) for tool in label.pair]
        if any(key not in text for key in pair):
            continue  # a label for a quote the corpus does not hold (a lens removed, say)
        found = overlap(prepare(text[pair[0]], house, terms[0]), prepare(text[pair[1]], house, terms[1]))
        if label.kind == "lenses":
            first, second = pair[0][2], pair[1][2]
            for row in (f"{first} / {second}", f"{first} (its 3 pairs)", f"{second} (its 3 pairs)", "all lens pairs"):
                result.add(row, label, found)
        else:
            for row in (f"{label.where} across tools", "all tool pairs"):
                result.add(row, label, found)
        if label.same != found.same:
            result.misses.append((label, found))
    result.rows = {row: tally for row, tally in result.rows.items() if tally[1] or tally[3]}
    return result


def agreement_report(result: Agreement, misses: int = 10) -> list[str]:
    lines = ["Sameness check against the hand labels (an editor would cut one of the two as repetitive):",
             *("  " + line for line in result.table())]
    for label, found in result.misses[:misses]:
        where = f"{label.writer} {label.where} {label.pair[0]} / {label.pair[1]}"
        got = "flagged" if found.same else "passed"
        lines.append(f"  labelled {'same' if label.same else 'distinct'}, {got}: {where} (content words "
                     f"{found.quote_dice:.2f} alike, {QUOTE_DICE} flags; closest sentences {found.dice:.2f}, "
                     f"{found.shared_words} words; run of {found.run} content words"
                     + (f": “{found.phrase}”" if found.phrase else "") + ")"
                     + (f"; the labeller: {clip(label.shared, 140)}" if label.shared else ""))
    if len(result.misses) > misses:
        lines.append(f"  ... and {len(result.misses) - misses} more")
    return lines


def stock_of_writers(quotes: list[WriterQuote], personas: list[Persona], sheets: dict[str, FactSheet],
                     pages: bool = True) -> list[str]:
    """The stock-phrase report of a corpus of writers: per lens, phrases in more than 1 quote in 8."""
    products = frozenset(word for sheet in sheets.values() for word in tool_terms(sheet).names)
    found = stock_phrases([(q.lens, f"{q.writer}: {q.tool}", q.quote, tool_terms(sheets.get(q.tool), q.tool))
                           for q in quotes], house_phrases(personas), products)
    counts: dict[str, int] = {}
    for quote in quotes:
        counts[quote.lens] = counts.get(quote.lens, 0) + 1
    writers = sorted({q.writer for q in quotes})
    tools = sorted({q.tool for q in quotes})
    return [f"Stock phrases of {len(writers)} writers on {len(tools)} tools ({', '.join(writers)}): phrases of 4 "
            f"words or more, outside the house signposts, in more than 1 quote in {STOCK_SHARE} of a lens",
            *stock_report(found, counts, pages)]


def lengths(quotes: list[WriterQuote], personas: list[Persona]) -> list[str]:
    """How long the writers' quotes are, beside each lens's range and near-miss band."""
    lines = ["WriterQuote lengths (words) per writer: lowest, median, highest, spread (standard deviation):"]
    for writer in sorted({q.writer for q in quotes}):
        counts = [len(q.quote.split()) for q in quotes if q.writer == writer]
        lines.append(f"  {writer}: {min(counts)}, {statistics.median(counts):.0f}, {max(counts)}, "
                     f"{statistics.pstdev(counts):.1f}")
    for persona in personas:
        low, high = word_band(persona)
        lines.append(f"  {persona.lens}: asks {persona.min_words}-{persona.max_words}; {low}-{high} accepted "
                     f"(outside the range, flagged for the editor); under {low} or over {high} re-asked")
    return lines


def flagged_pairs(quotes: list[WriterQuote], personas: list[Persona], sheets: dict[str, FactSheet]) -> list[str]:
    """Without labels: how many lens pairs on one tool, and tool pairs under one lens, the check flags, per writer
    set (a before and after of a persona change, say)."""
    house = house_phrases(personas)
    order = sorted(personas, key=lambda p: p.order)
    text = {(q.writer, q.tool, q.lens): q.quote for q in quotes}
    within, across = [0, 0], [0, 0]
    for writer in sorted({q.writer for q in quotes}):
        tools = sorted({q.tool for q in quotes if q.writer == writer})
        for tool in tools:
            terms = tool_terms(sheets.get(tool), tool)
            panel = [text[(writer, tool, p.lens)] for p in order if (writer, tool, p.lens) in text]
            for i, one in enumerate(panel):
                for two in panel[i + 1:]:
                    within[0] += overlap(prepare(one, house, terms), prepare(two, house, terms)).same
                    within[1] += 1
        for persona in order:
            for a, b in zip(tools[0::2], tools[1::2], strict=False):
                if (writer, a, persona.lens) in text and (writer, b, persona.lens) in text:
                    found = overlap(prepare(text[(writer, a, persona.lens)], house, tool_terms(sheets.get(a), a)),
                                    prepare(text[(writer, b, persona.lens)], house, tool_terms(sheets.get(b), b)))
                    across[0] += found.same
                    across[1] += 1
    return [f"Sameness check: {within[0]} of {within[1]} lens pairs on one tool flagged; {across[0]} of {across[1]} "
            "tool pairs under one lens (sorted slugs paired 1-2, 3-4 ...) flagged"]
