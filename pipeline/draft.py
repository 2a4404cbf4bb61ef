"""The ``draft`` command: check every input, generate the reviews, write the page."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TextIO

from .assemble import assemble
from .costs import Stats
from .errors import GaveUpOnReply, InputError, NotServed
from .project import Project
from .provenance import DraftFile, build_record, sidecar_path, write_record
from .render import distinct_message, reask_message
from .review import Review, describe_section
from .session import ReviewSession
from .settings import Settings
from .write import can_write, write_atomic


@dataclass(frozen=True)
class DraftResult:
    path: Path
    stats: Stats
    seconds: float
    fallbacks: list[str] = field(default_factory=list)  # quotes a fallback wrote: "<lens> on <slug> by <model>"
    missing: list[GaveUpOnReply | NotServed] = field(default_factory=list)  # quotes left as placeholders
    flags: dict[str, list[str]] = field(default_factory=dict)  # claims the fact sheets do not support, by section
    approved: list[str] = field(default_factory=list)  # quotes carried from another draft: "<section> from <page>"
    disputed: list[str] = field(default_factory=list)  # reviews with two different approved texts
    prices: list[str] = field(default_factory=list)  # where each price came from: the table, the router, unknown
    sameness: dict[str, list[str]] = field(default_factory=dict)  # quotes repeating an earlier one's point
    notes: dict[str, list[str]] = field(default_factory=dict)  # near misses on length, accepted


def draft(root: Path, slug_a: str, slug_b: str, settings: Settings, env: Mapping[str, str] | None = None,
          log: TextIO | None = None, force: bool = False, retry_fallbacks: bool = False,
          use_cache: bool = True) -> DraftResult:
    started = time.monotonic()
    project = Project(root, settings, env)
    tools = project.pair(slug_a, slug_b)
    personas = project.personas
    session = ReviewSession(project, env, log, retry_fallbacks, use_cache)
    jobs = project.plan(tools)
    # Render the page once with placeholder reviews: a broken page template fails now, before any request.
    placeholder = {job.section: Review(job.persona.lens, job.slug, "ship", "x", "") for job in jobs}
    community = project.community(slug_a, slug_b)
    assemble(root, personas, tools, placeholder, community)
    reask_message(root, personas[0], ["placeholder problem"])
    distinct_message(root, personas[-1], personas[0], "placeholder", "placeholder", ["placeholder"])

    path = project.draft_path(slug_a, slug_b)
    can_write(path, "the draft")  # every place the run writes, before anything is paid for
    can_write(sidecar_path(path), "the draft's provenance sidecar")
    name = f"{slug_a}-vs-{slug_b}"
    reviews = session.run(jobs, "draft", [name], f"Drafting {slug_a} vs {slug_b}: {len(jobs)} reviews",
                          f"{slug_a} vs {slug_b}", while_waiting=_for_the_page)
    from .library import approved_texts
    from .merge import as_edited

    # An editor's version of a review in another draft is the approved text: this page carries it too.
    approved, disputed = approved_texts(project, {job.section: job.key for job in jobs}, path)
    shown_reviews = {name: replace(review, quote=approved[name][0]) if name in approved else review
                     for name, review in reviews.items()}
    with project.lock():
        existing = DraftFile(path) if path.exists() else None  # read now, under the lock
        record = existing.record if existing else None
        pinned = [name for name in record.pinned if name in record.sections] if record else []
        page = assemble(root, personas, tools, shown_reviews, community)
        if existing and record is not None:  # pinned sections keep their text as the editor left it (even --force)
            page = page.keep(as_edited(record.page, existing.lines), pinned)
        if existing and not force:
            refuse_to_overwrite(existing, page.text)
        write_atomic(path.resolve(), page.text)  # a draft that is a link: where it leads
        keep = {name: record.sections[name] for name in pinned} if record else {}
        record = build_record(project.inputs, tools, community, page, jobs, reviews, project.environment, keep,
                              pinned, approved)
        write_record(path, record)
    by_fallback = [f"{r.lens} on {r.slug} by {r.written_by}" for r in reviews.values() if r.fallback]
    flags = {name: section.flags for name, section in record.sections.items() if section.flags}
    carried = [f"{describe_section(name)} from {source}" for name, (_, source) in approved.items()]
    return DraftResult(path, session.stats, time.monotonic() - started, by_fallback, session.missing, flags,
                       carried, disputed, session.price_lines(),
                       {name: section.sameness for name, section in record.sections.items() if section.sameness},
                       {name: section.notes for name, section in record.sections.items() if section.notes})


def _for_the_page() -> None:
    """Import what only the page and the report need, while the requests are in flight: not before the first."""
    from . import library, merge, report  # noqa: F401


def refuse_to_overwrite(draft: DraftFile, page: str) -> None:
    """A draft on disk is replaced only where it holds nothing but generated text."""
    text, record, path = draft.text, draft.record, draft.path
    if text == page or (record is not None and text == record.page.text):
        return
    hint = ("Run `python -m pipeline refresh " + str(path.name) + "` to merge new generations into your edits, "
            if record is not None else "Keep your edits, ")
    raise InputError(path, None, "the draft on disk has changes that are not generated text (hand edits?); "
                     "not overwritten", hint=hint + "or run again with --force to replace the file. "
                     "The new reviews are cached, so that run sends no request.")
