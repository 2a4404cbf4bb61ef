"""The three-way merge of a refresh: the page as last generated (base), the editor's file (ours) and the page
generated now (theirs), line by line with ``merge3``. Pure: no files, no model.

Where the editor and the generation changed the same lines, both go into the draft in one block of git's diff3
conflict markers (``<<<<<<< your edit`` ... ``||||||| generated last time`` ... ``=======`` ... ``>>>>>>>
generated now``), each marker alone on its line between blank lines: seen in the pull request's diff and on the
rendered page alike, so it cannot be published unnoticed. ``unresolved`` reads the blocks for every command:
with their labels or without (an editor may delete them), and in the older HTML-comment form.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import merge3

from .assemble import VERDICT_LINE, Page
from .review import FRAME, describe_section, is_card, parse_section


class Region(Protocol):
    """Lines [start, end) of a draft that hold one unresolved conflict."""

    @property
    def start(self) -> int: ...

    @property
    def end(self) -> int: ...

    @property
    def about_text_above(self) -> bool: ...  # the older comment form follows the editor's text it is about


@dataclass
class Conflict:
    sections: list[str]
    editor: list[str]
    generated: list[str]


def sections_at(spans: dict[str, tuple[int, int]], start: int, end: int) -> list[str]:
    """Sections overlapping lines [start, end); an empty range counts when it falls inside a section."""
    return [name for name, (s, e) in spans.items() if (s < end and start < e) or (start == end and s < start < e)]


def edited_sections(base: Page, ours: list[str]) -> list[str]:
    touched: set[str] = set()
    matcher = difflib.SequenceMatcher(None, base.lines, ours, autojunk=False)
    for tag, i1, i2, _, _ in matcher.get_opcodes():
        if tag != "equal":
            touched.update(sections_at(base.spans, i1, i2))
    return sorted(touched)


# An unresolved conflict is written with git's diff3 markers, each alone on its line between blank lines (so
# Markdown never reads "=======" as a heading underline or a marker as part of a paragraph). Editors' tools know
# them (VS Code's accept buttons, `git diff --check`), they show in the pull request's diff and on the rendered
# page alike, so an unresolved conflict cannot be published unnoticed.
START, BASE, MIDDLE, END = "<<<<<<<", "|||||||", "=======", ">>>>>>>"  # the marks; a space and a label follow
EDITOR_LABEL, BASE_LABEL, END_LABEL = "your edit: ", "generated last time", "generated now"
LEGACY_NOTE = "<!-- verdicts refresh: conflict in "  # how conflicts were written before the markers


RESOLVE = ("keep the text you want between the <<<<<<< and >>>>>>> lines, delete the other side and the marker "
           "lines, then run `make stale`")


@dataclass(frozen=True)
class Unresolved:
    """A conflict block still in a draft: where it starts (0-based line), where it ends, what it is about, and its
    parts as written (the older comment form has the generation only: the editor's text is above it)."""

    start: int
    end: int  # exclusive
    what: str  # the sections, as the start marker names them (or why the block names none)
    editor: tuple[str, ...] = ()
    base: tuple[str, ...] | None = None  # generated last time: after ``|||||||``, when there is one
    generated: tuple[str, ...] | None = None  # generated now: after ``=======``, when there is one
    labels: tuple[str, str, str] = ("", "", "")  # what the <<<<<<<, ||||||| and >>>>>>> lines say after the marks
    about_text_above: bool = False  # the older comment form: it follows the editor's text it is about
    complete: bool = True  # False: a <<<<<<< line with no >>>>>>> line to close it


UNLABELLED = "sections not named (its marker lines have no labels)"
MISSING_END = "a conflict whose >>>>>>> line is missing"
# A marker line: exactly seven of one marker character at the start of the line, then nothing or whitespace and a
# label. An editor who deleted the labels (or a tool that writes none) leaves the bare marks: still a conflict.
_MARKER = re.compile(r"(<{7}|\|{7}|={7}|>{7})(?:[ \t]+(.*))?")
_MARKS = (START, BASE, MIDDLE, END)


def marker(line: str) -> tuple[str, str] | None:
    """(the mark, its label) when ``line`` is a conflict marker line, else None."""
    if line[:7] not in _MARKS:
        return None
    match = _MARKER.fullmatch(line.rstrip())
    return (match.group(1), (match.group(2) or "").strip()) if match else None


def _trimmed(lines: list[str]) -> list[str]:
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return lines[start:end]


def conflict_block(sections: list[str], editor: list[str], base: list[str], generated: list[str]) -> list[str]:
    what = ", ".join(describe_section(s) for s in sections) or "the page"
    parts = [[f"{START} {EDITOR_LABEL}{what}"], _trimmed(editor) or ["(your edit removed these lines)"],
             [f"{BASE} {BASE_LABEL}"], _trimmed(base) or ["(nothing)"], [MIDDLE],
             _trimmed(generated) or ["(the new generation removes these lines)"],
             [f"{END} {END_LABEL}: keep the text you want, delete the rest and these marker lines"]]
    block: list[str] = [""]
    for part in parts:
        block += [*part, ""]
    return block


def unresolved(lines: list[str]) -> list[Unresolved]:
    """Every conflict block an editor has not resolved yet: git-style markers, labelled or not, or an older
    refresh's comment. The one reader of conflict blocks: ``stale``, ``check``, ``refresh``, the review library and
    the preview all see the same blocks."""
    found: list[Unresolved] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        mark = marker(line)
        if mark is not None and mark[0] == START:
            block = _diff3(lines, index)
        elif line.lstrip().startswith(LEGACY_NOTE):
            end = next((i for i in range(index + 1, len(lines)) if lines[i].strip() == "-->"), len(lines) - 1)
            what = line.lstrip()[len(LEGACY_NOTE):].split(". ", 1)[0]
            block = Unresolved(index, end + 1, what, generated=tuple(lines[index + 1:end]), about_text_above=True)
        else:
            index += 1
            continue
        found.append(block)
        index = block.end
    return found


def _diff3(lines: list[str], start: int) -> Unresolved:
    """The block whose ``<<<<<<<`` line is ``lines[start]``: up to the ``>>>>>>>`` that closes it (a block nested
    in one of its parts, as a refresh may write around an older one, is part of that part's text)."""
    depth, found = 0, {}
    for index in range(start, len(lines)):
        mark = marker(lines[index])
        if mark is None:
            continue
        kind = mark[0]
        depth += kind == START
        if depth == 1 and kind not in found and not (kind == BASE and MIDDLE in found):
            found[kind] = (index, mark[1])
        depth -= kind == END
        if depth == 0:
            break
    else:  # never closed: the marker line alone is the problem; a block after it is found on its own
        return Unresolved(start, start + 1, MISSING_END, complete=False)
    end = found[END][0]
    ancestor, separator = found.get(BASE), found.get(MIDDLE)
    editor_end = ancestor[0] if ancestor else separator[0] if separator else end
    label = found[START][1]
    return Unresolved(start, end + 1, label.removeprefix(EDITOR_LABEL).strip() if label else UNLABELLED,
                      tuple(lines[start + 1:editor_end]),
                      tuple(lines[ancestor[0] + 1:separator[0] if separator else end]) if ancestor else None,
                      tuple(lines[separator[0] + 1:end]) if separator else None,
                      (label, ancestor[1] if ancestor else "", found[END][1]))


def editor_side(lines: list[str], blocks: list[Unresolved]) -> list[str]:
    """``lines`` with each of ``blocks`` replaced by the editor's side of it (an old comment note is dropped)."""
    out, position = [], 0
    for block in sorted(blocks, key=lambda b: b.start):
        out += lines[position:block.start]
        out += _trimmed(list(block.editor))
        position = block.end
    return out + lines[position:]


def about(block: Unresolved, sections: list[str]) -> list[str]:
    """The sections a block's start marker names."""
    return [name for name in sections if describe_section(name) in block.what.split(", ")]


def merge(base: Page, ours: list[str], theirs: Page) -> tuple[list[str], list[Conflict]]:
    """Merge line by line. An unresolved block about a section this generation changes is replaced: its
    editor's side is merged again, so a new conflict there gives one new block, never a stack of them."""
    changing = [name for name in theirs.spans
                if name not in base.spans or base.section(name) != theirs.section(name)]
    ours = editor_side(ours, [block for block in unresolved(ours) if about(block, changing)])
    merged: list[str] = []
    conflicts = []
    for region in merge3.Merge3(base.lines, ours, theirs.lines).merge_regions():
        kind = region[0]
        if kind == "unchanged":
            merged += base.lines[region[1]:region[2]]
        elif kind in ("a", "same"):
            merged += ours[region[1]:region[2]]
        elif kind == "b":
            merged += theirs.lines[region[1]:region[2]]
        elif len(region) == 7:  # conflict: both sides, in one marked block, for an editor to settle
            _, z1, z2, a1, a2, b1, b2 = region
            sections = sorted(set(sections_at(base.spans, z1, z2)) | set(sections_at(theirs.spans, b1, b2)))
            conflict = Conflict(sections, ours[a1:a2], theirs.lines[b1:b2])
            conflicts.append(conflict)
            merged += conflict_block(sections, conflict.editor, base.lines[z1:z2], conflict.generated)
    return merged, conflicts


# --- which lines of an edited draft belong to which section -----------------------------------------------------------


def _inserted(before: str, after: str, lines: list[str]) -> list[str]:
    """Owners of lines an editor inserted between a base line owned by ``before`` and one owned by ``after``.

    Inside one section (or inside the frame) they belong to it. At a section's edge, lines written against it
    with no blank line between continue its Markdown block, so they are its; the rest is the frame's.
    """
    if before == after:
        return [before] * len(lines)
    blanks = [k for k, line in enumerate(lines) if not line.strip()]
    if not blanks:
        return [before if before != FRAME else after] * len(lines)
    owners = [FRAME] * len(lines)
    if before != FRAME:
        owners[:blanks[0]] = [before] * blanks[0]
    if after != FRAME:
        owners[blanks[-1] + 1:] = [after] * (len(lines) - blanks[-1] - 1)
    return owners


def _replaced(base_owners: list[str], base_lines: list[str], lines: list[str]) -> list[str]:
    """Owners of lines that replaced base lines: the owner of the base line each resembles, kept in page order."""
    order = list(dict.fromkeys(base_owners))
    if len(order) == 1:
        return [order[0]] * len(lines)
    ranks: list[int | None] = []
    for line in lines:
        scores = [(difflib.SequenceMatcher(None, old, line, autojunk=False).ratio(), k)
                  for k, old in enumerate(base_lines) if old.strip()] if line.strip() else []
        score, k = max(scores, default=(0.0, -1))
        ranks.append(order.index(base_owners[k]) if score >= 0.5 else None)
    if all(rank is None for rank in ranks):
        weight = {name: sum(1 for o, old in zip(base_owners, base_lines, strict=True) if o == name and old.strip())
                  for name in order}
        return [max(order, key=lambda name: (weight[name], name != FRAME))] * len(lines)
    known = [rank for rank in ranks if rank is not None]
    result, current = [], known[0]
    for rank in ranks:
        current = max(current, rank) if rank is not None else current  # sections stay in page order
        result.append(order[current])
    return result


def _match(base: Page, lines: list[str]) -> list[str]:
    owner = [FRAME] * len(base.lines)
    for name, (start, end) in base.spans.items():
        owner[start:end] = [name] * (end - start)
    result = [FRAME] * len(lines)
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, base.lines, lines, autojunk=False).get_opcodes():
        if tag == "equal":
            result[j1:j2] = owner[i1:i2]
        elif tag == "insert":
            before = owner[i1 - 1] if i1 > 0 else FRAME
            after = owner[i1] if i1 < len(owner) else FRAME
            result[j1:j2] = _inserted(before, after, lines[j1:j2])
        elif tag == "replace":
            result[j1:j2] = _replaced(owner[i1:i2], base.lines[i1:i2], lines[j1:j2])
    return result


def line_owners(base: Page, lines: list[str], regions: Sequence[Region] = ()) -> list[str]:
    """The section id (or ``frame``) each line of the editor's draft belongs to, given the page as generated.

    Each conflict is matched as one opaque line: its parts repeat generated text that must not pull other
    sections' lines into it. A conflict belongs to the section it replaced; the older comment form to the text
    above it.
    """
    probe: list[str] = []
    spans: list[tuple[int, int, Region | None]] = []
    index = 0
    for region in sorted(regions, key=lambda r: r.start):
        probe += lines[index:region.start]
        spans += [(i, i + 1, None) for i in range(index, region.start)]
        probe.append(f"\x00conflict {region.start}")
        spans.append((region.start, region.end, region))
        index = region.end
    probe += lines[index:]
    spans += [(i, i + 1, None) for i in range(index, len(lines))]
    matched = _match(base, probe)

    def neighbour(position: int, step: int) -> str:
        while 0 <= position < len(probe) and not probe[position].strip():
            position += step
        return matched[position] if 0 <= position < len(probe) else FRAME

    owners = [FRAME] * len(lines)
    for position, (start, end, conflict) in enumerate(spans):
        owner = matched[position]
        if conflict is not None and conflict.about_text_above:
            owner = neighbour(position - 1, -1)
        elif conflict is not None and owner == FRAME and neighbour(position - 1, -1) == neighbour(position + 1, 1):
            owner = neighbour(position - 1, -1)  # a conflict standing alone inside a section
        owners[start:end] = [owner] * (end - start)
    return owners


def page_verdicts(base: Page, lines: list[str]) -> dict[str, str]:
    """The verdict each quote section shows in the editor's draft (an editor may have flipped one), by section."""
    found: dict[str, str] = {}
    for owner, line in zip(line_owners(base, lines), lines, strict=True):
        match = VERDICT_LINE.match(line.strip())
        if match and owner != FRAME and owner not in found:
            found[owner] = match.group(1).lower()
    return found


def as_edited(base: Page, lines: list[str]) -> Page:
    """The editor's draft as a page: each section spans the lines it owns there, from its first to its last."""
    spans: dict[str, tuple[int, int]] = {}
    for index, owner in enumerate(line_owners(base, lines)):
        if owner != FRAME:
            start, end = spans.get(owner, (index, index + 1))
            spans[owner] = (min(start, index), max(end, index + 1))
    return Page("\n".join(lines), spans)


def lens_order(page: Page) -> list[str]:
    """The lenses of a page's quote rows, in page order."""
    kinds: list[str] = []
    for name, _ in sorted(page.spans.items(), key=lambda item: item[1]):
        kind = parse_section(name)[0] if not is_card(name) else ""
        if kind and kind not in kinds:
            kinds.append(kind)
    return kinds


def _rows(lines: list[str], spans: dict[str, tuple[int, int]], lenses: list[str]) -> list[tuple[int, int]] | None:
    """Where each lens's row lies: from the block just before its first quote (its heading) to its last quote."""
    rows = []
    for lens in lenses:
        mine = [span for name, span in spans.items() if not is_card(name) and parse_section(name)[0] == lens]
        if not mine:
            return None
        first, last = min(s for s, _ in mine), max(e for _, e in mine)
        start = first
        while start > 0 and not lines[start - 1].strip():
            start -= 1
        while start > 0 and lines[start - 1].strip():  # the heading block right above the first quote
            start -= 1
        rows.append((start, last))
    if not all(a[1] <= b[0] for a, b in zip(rows, rows[1:], strict=False)):
        return None
    # A row reaches up to the next one, blank lines between them included, so moving rows moves them too.
    return [(start, rows[i + 1][0] if i + 1 < len(rows) else end) for i, (start, end) in enumerate(rows)]


def in_order(page: Page, lines: list[str], order: list[str]) -> tuple[Page, list[str]] | None:
    """The page as generated and the editor's draft with their lens rows put in ``order`` (personas swapped their
    ``order``), so the merge sees rows in the same places rather than rows that moved. None when a row cannot be
    found in both."""
    lenses = lens_order(page)
    if lenses == order or sorted(lenses) != sorted(order):
        return None
    edited = as_edited(page, lines)
    base_rows, our_rows = _rows(page.lines, page.spans, lenses), _rows(lines, edited.spans, lenses)
    if base_rows is None or our_rows is None:
        return None

    def rearrange(text: list[str], rows: list[tuple[int, int]],
                  spans: dict[str, tuple[int, int]]) -> tuple[list[str], dict[str, tuple[int, int]]]:
        out, moved = list(text[:rows[0][0]]), {}
        for lens in order:
            start, end = rows[lenses.index(lens)]
            shift = len(out) - start
            moved.update({name: (s + shift, e + shift) for name, (s, e) in spans.items() if start <= s < end})
            out += text[start:end]
        tail = len(out) - rows[-1][1]
        moved.update({name: (s + tail, e + tail) for name, (s, e) in spans.items() if s >= rows[-1][1]})
        moved.update({name: span for name, span in spans.items() if span[1] <= rows[0][0]})
        return out + text[rows[-1][1]:], moved

    base_lines, base_spans = rearrange(page.lines, base_rows, page.spans)
    our_lines, _ = rearrange(lines, our_rows, edited.spans)
    return Page("\n".join(base_lines), base_spans), our_lines
