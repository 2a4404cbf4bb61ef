"""The ``refresh`` command: regenerate stale sections and merge them into the editor's drafts, three-way.

For each stale draft: base = the page as last generated (from the sidecar), ours = the draft on disk with the
editor's hand edits, theirs = the page generated now, where only stale sections have new reviews and pinned
sections keep their last generated text. ``merge3`` merges line by line. Where the editor and the generation
changed the same lines, the editor's text stays and the new generation goes in an HTML comment right after it:
invisible on the rendered page, plain to see in the pull request's diff.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import merge3

from .assemble import Page, assemble
from .costs import Stats
from .errors import InputError
from .project import Project
from .provenance import build_record, write_record
from .review import Review, parse_section
from .session import ReviewSession
from .settings import Settings
from .stale import DraftStatus, StaleSection, check_all, label
from .write import write_atomic

CONFLICT_EXIT = 5  # refresh finished, but an editor must look: overlapping edits, or drafts it could not refresh


@dataclass
class Conflict:
    sections: list[str]
    editor: list[str]
    generated: list[str]


@dataclass
class DraftChange:
    path: Path
    stale: list[StaleSection]
    edited: list[str] = field(default_factory=list)  # sections the editor had changed by hand
    conflicts: list[Conflict] = field(default_factory=list)
    pinned: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)  # pins on sections that no longer exist (persona removed)
    broken: str = ""  # why this draft was not refreshed
    unchanged: list[str] = field(default_factory=list)  # stale sections whose new text is the same as before
    written: bool = False

    def outcome(self, section: str) -> str:
        if any(section in c.sections for c in self.conflicts):
            return "**conflict**: your text kept, the new generation is in a comment right below it"
        if section in self.unchanged:
            return "regenerated, same text"
        return "updated, merged with your hand edit" if section in self.edited else "updated"


@dataclass
class RefreshResult:
    checked: int
    changes: list[DraftChange]
    stats: Stats
    backend: str
    models: list[str]
    seconds: float = 0.0

    @property
    def conflicts(self) -> int:
        return sum(len(change.conflicts) for change in self.changes)

    @property
    def needs_editor(self) -> bool:
        return bool(self.conflicts or any(change.broken for change in self.changes))


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
    what = ", ".join(label(s) for s in sections) or "the page"
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
        else:  # conflict: the editor's lines stay, the generation follows in a comment
            _, z1, z2, a1, a2, b1, b2 = region  # type: ignore[misc]
            sections = sorted(set(sections_at(base.spans, z1, z2)) | set(sections_at(theirs.spans, b1, b2)))
            conflict = Conflict(sections, ours[a1:a2], theirs.lines[b1:b2])
            conflicts.append(conflict)
            note = conflict_note(sections, conflict.generated)
            shown = ours[a2:a2 + len(note)] == note or conflict.editor[-len(note):] == note
            merged += conflict.editor if shown else conflict.editor + note  # a rerun does not repeat the note
    return merged, conflicts


def refresh(root: Path, settings: Settings, env: Mapping[str, str] | None = None,
            drafts: list[Path] | None = None, log: TextIO | None = None) -> RefreshResult:
    started = time.monotonic()
    project = Project(root, settings, env)
    paths = drafts if drafts else project.all_drafts()
    statuses = check_all(project, paths)
    orphans = [s.path for s in statuses if s.record is None]
    if orphans:
        raise InputError(orphans[0], None, "has no provenance record, so hand edits cannot be told from "
                         "generated text; not refreshed",
                         hint="Regenerate it with `python -m pipeline draft A B --force` (keep a copy of your edits), "
                         "or delete it.")
    todo = [s for s in statuses if s.stale and not s.broken]
    jobs = [project.job(*parse_section(name)) for s in todo for name in s.stale_quotes()]
    stats, new = Stats(), {}
    if jobs:
        session = ReviewSession(project, env, log)
        stats = session.stats
        new = session.run(jobs, "refresh", [s.path.stem for s in todo],
                          f"Refreshing {len(todo)} of {len(statuses)} drafts: {len({j.key for j in jobs})} reviews",
                          "Refresh")
    # The models that wrote the new quotes: a fallback that served is named as one.
    models = sorted({r.model + (" (fallback)" if r.fallback else "") for r in new.values()})
    changes = [apply(project, status, new) for status in todo]
    changes += [DraftChange(s.path, s.stale, broken=s.broken) for s in statuses if s.broken]
    return RefreshResult(len(statuses), changes, stats, project.backend, models, time.monotonic() - started)


def apply(project: Project, status: DraftStatus, new: dict[str, Review]) -> DraftChange:
    """Merge one stale draft's regenerated sections into the file on disk, then record what was generated."""
    record = status.record
    assert record is not None
    regenerated = set(status.stale_quotes())
    jobs = project.plan(status.tools)
    reviews = {}
    for job in jobs:
        old = record.sections.get(job.section)
        reviews[job.section] = new[job.section] if job.section in regenerated or old is None \
            else old.review(job.section)
    base = record.page
    theirs = assemble(project.root, project.personas, status.tools, reviews).keep(base, record.pinned)
    with status.path.open(encoding="utf-8", newline="") as handle:
        raw = handle.read()
    crlf = "\r\n" in raw  # an editor's tool wrote CRLF: merge on LF, write CRLF back, so the diff shows only edits
    text = raw.replace("\r\n", "\n")
    ours = text.split("\n")
    pinned = [name for name in record.pinned if name in theirs.spans]
    change = DraftChange(status.path, status.stale, edited_sections(base, ours), pinned=pinned,
                         released=[name for name in record.pinned if name not in theirs.spans])
    change.unchanged = [s.section for s in status.stale if s.section in theirs.spans and s.section in base.spans
                        and theirs.section(s.section) == base.section(s.section)]
    merged, change.conflicts = merge(base, ours, theirs)
    result = "\n".join(merged)
    if result != text:
        write_atomic(status.path, result.replace("\n", "\r\n") if crlf else result)
        change.written = True
    # The page is written before its sidecar: if we stop in between, the next refresh sees the new text as the
    # editor's and the regeneration as identical, so nothing is lost or doubled.
    keep = {name: record.sections[name] for name in pinned if name in record.sections}
    write_record(status.path, build_record(project.inputs, status.tools, theirs, jobs, reviews, keep, pinned))
    return change
