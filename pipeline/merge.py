"""The three-way merge of a refresh: the page as last generated (base), the editor's file (ours) and the page
generated now (theirs), line by line with ``merge3``. Pure: no files, no model.

Where the editor and the generation changed the same lines, the editor's text stays and the new generation goes
in an HTML comment right after it: invisible on the rendered page, plain to see in the pull request's diff.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import merge3

from .assemble import Page
from .review import describe_section


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
START, BASE, MIDDLE, END = "<<<<<<< ", "||||||| ", "=======", ">>>>>>> "
EDITOR_LABEL, BASE_LABEL, END_LABEL = "your edit: ", "generated last time", "generated now"
LEGACY_NOTE = "<!-- verdicts refresh: conflict in "  # how conflicts were written before the markers


RESOLVE = ("keep the text you want between the <<<<<<< and >>>>>>> lines, delete the other side and the marker "
           "lines, then run `make stale`")


@dataclass(frozen=True)
class Unresolved:
    """A conflict block still in a draft: where it starts (0-based line), where it ends, what it is about."""

    start: int
    end: int  # exclusive
    what: str  # the sections, as the start marker names them
    editor: tuple[str, ...] = ()


def _trimmed(lines: list[str]) -> list[str]:
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return lines[start:end]


def conflict_block(sections: list[str], editor: list[str], base: list[str], generated: list[str]) -> list[str]:
    what = ", ".join(describe_section(s) for s in sections) or "the page"
    parts = [[START + EDITOR_LABEL + what], _trimmed(editor) or ["(your edit removed these lines)"],
             [BASE + BASE_LABEL], _trimmed(base) or ["(nothing)"], [MIDDLE],
             _trimmed(generated) or ["(the new generation removes these lines)"],
             [END + END_LABEL + ": keep the text you want, delete the rest and these marker lines"]]
    block: list[str] = [""]
    for part in parts:
        block += [*part, ""]
    return block


def unresolved(lines: list[str]) -> list[Unresolved]:
    """Every conflict block an editor has not resolved yet: git-style markers, or an older refresh's comment."""
    found: list[Unresolved] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith(START):
            end = next((i for i in range(index + 1, len(lines)) if lines[i].startswith(END)), None)
            if end is None:
                found.append(Unresolved(index, index + 1, "a conflict whose >>>>>>> line is missing"))
                break
            block = lines[index:end + 1]
            middle = next((i for i, text in enumerate(block) if text.startswith((BASE, MIDDLE))), len(block) - 1)
            found.append(Unresolved(index, end + 1, line[len(START):].removeprefix(EDITOR_LABEL).strip(),
                                    tuple(block[1:middle])))
            index = end + 1
        elif line.startswith(LEGACY_NOTE):
            end = next((i for i in range(index + 1, len(lines)) if lines[i].strip() == "-->"), len(lines) - 1)
            what = line[len(LEGACY_NOTE):].split(". ", 1)[0]
            found.append(Unresolved(index, end + 1, what))
            index = end + 1
        else:
            index += 1
    return found


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
