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


def conflict_note(sections: list[str], generated: list[str]) -> list[str]:
    what = ", ".join(describe_section(s) for s in sections) or "the page"
    body = [line.replace("-->", "--&gt;") for line in generated] or ["(the new generation removes these lines)"]
    # The blank line first: a comment line straight after a quote could be read as part of it.
    return ["", f"<!-- verdicts refresh: conflict in {what}. Your text above is kept; the new generation below "
            "was not applied. Take what you want from it, then delete this comment.", *body, "-->"]


def merge(base: Page, ours: list[str], theirs: Page) -> tuple[list[str], list[Conflict]]:
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
        elif len(region) == 7:  # conflict: the editor's lines stay, the generation follows in a comment
            _, z1, z2, a1, a2, b1, b2 = region
            sections = sorted(set(sections_at(base.spans, z1, z2)) | set(sections_at(theirs.spans, b1, b2)))
            conflict = Conflict(sections, ours[a1:a2], theirs.lines[b1:b2])
            conflicts.append(conflict)
            note = conflict_note(sections, conflict.generated)
            shown = ours[a2:a2 + len(note)] == note or conflict.editor[-len(note):] == note
            merged += conflict.editor if shown else conflict.editor + note  # a rerun does not repeat the note
    return merged, conflicts
