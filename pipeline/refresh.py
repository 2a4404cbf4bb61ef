"""The ``refresh`` command: regenerate stale sections and merge them into the editor's drafts, three-way.

For each stale draft: base = the page as last generated (from the sidecar), ours = the draft on disk with the
editor's hand edits, theirs = the page generated now, where only stale sections have new reviews and pinned
sections keep their last generated text. ``merge`` merges line by line; where the editor and the generation
changed the same lines, both go into one block of git-style conflict markers for an editor to settle.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TextIO

from .assemble import Page, assemble
from .costs import Stats
from .errors import BACKEND_FAILED, CONFLICT, OK, GaveUpOnReply, InputError, NotServed, plural
from .facts import unsupported_claims
from .library import Dispute, Library
from .merge import RESOLVE, Conflict, Unresolved, edited_sections, in_order, lens_order, merge, page_verdicts
from .project import Project
from .provenance import DraftFile, Record, build_record, recorded_environment, sidecar_path, write_record
from .report import facts_to_check, for_the_editor
from .review import Review, describe_section, parse_section
from .session import ReviewSession
from .settings import Settings
from .stale import (
    DraftStatus,
    StaleSection,
    check,
    check_all,
    disputes_of,
    shown_verdicts,
)
from .write import ChangedSinceRead, writable, write_atomic

# An editor's save that lands while a draft is being written is merged again, up to this many times.
SAVES_WAITED = 3


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
    flags: dict[str, list[str]] = field(default_factory=dict)  # new quotes' claims the fact sheet does not support
    sameness: dict[str, list[str]] = field(default_factory=dict)  # new quotes (or new flags) repeating another's point
    notes: dict[str, list[str]] = field(default_factory=dict)  # new quotes that are near misses on length
    carried: dict[str, tuple[str, str]] = field(default_factory=dict)  # approved texts taken: section -> (text, page)
    kept: dict[str, str] = field(default_factory=dict)  # regenerated the same: approved text stays, section -> page
    placeholders: dict[str, str] = field(default_factory=dict)  # regenerated sections left missing, and why
    waiting: dict[str, str] = field(default_factory=dict)  # not served, an editor's text kept meanwhile, and why
    written: bool = False

    def outcome(self, section: str) -> str:
        if section in self.placeholders:
            return "**missing**: a placeholder, " + self.placeholders[section]
        if section in self.waiting:
            return "**not served**: the editor's text stays until a reply comes, " + self.waiting[section]
        if any(section in c.sections for c in self.conflicts):
            return "**conflict**: your text and the new generation are both in a marked block for you to settle"
        if section in self.kept:
            return f"regenerated, same text: the approved text from {self.kept[section]} stays"
        if section in self.unchanged:
            return "regenerated, same text"
        done = f"approved text carried from {self.carried[section][1]}" if section in self.carried else "updated"
        return f"{done}, merged with your hand edit" if section in self.edited else done


@dataclass
class RefreshResult:
    checked: int
    changes: list[DraftChange]
    stats: Stats
    backend: str
    models: list[str]
    seconds: float = 0.0
    unresolved: dict[Path, list[Unresolved]] = field(default_factory=dict)  # after this run, new ones included
    missing: list[GaveUpOnReply | NotServed] = field(default_factory=list)  # reviews left as placeholders
    disputes: list[Dispute] = field(default_factory=list)  # reviews editors approved differently: none carried
    prices: list[str] = field(default_factory=list)  # where each price came from: the table, the router, unknown

    @property
    def conflicts(self) -> int:
        return sum(len(change.conflicts) for change in self.changes)

    @property
    def not_served(self) -> list[NotServed]:
        return [exc for exc in self.missing if isinstance(exc, NotServed)]

    @property
    def exit_code(self) -> int:
        """0 only when nothing is left for ``stale`` or an editor; the backend's status when a review was not
        served (every page was written all the same); else 5 when an editor must look."""
        return BACKEND_FAILED if self.not_served else CONFLICT if self.needs_editor else OK

    @property
    def needs_editor(self) -> bool:
        return bool(self.conflicts or self.unresolved or self.missing or self.disputes
                    or any(change.broken for change in self.changes))


def refresh(root: Path, settings: Settings, env: Mapping[str, str] | None = None,
            drafts: list[Path] | None = None, log: TextIO | None = None, use_cache: bool = True) -> RefreshResult:
    project = Project(root, settings, env)
    with project.lock():  # checked, paid for and written by one refresh at a time
        return _refresh(project, drafts, env, log, use_cache)


def _refresh(project: Project, drafts: list[Path] | None, env: Mapping[str, str] | None, log: TextIO | None,
             use_cache: bool) -> RefreshResult:
    started = time.monotonic()
    paths = drafts if drafts else project.all_drafts()
    statuses = check_all(project, paths)
    for status in statuses:  # the others are still refreshed: these are reported, and refresh exits 5
        if status.record is None and status.stale:  # no sidecar
            status.broken = ("no provenance record, so hand edits cannot be told from generated text; regenerate "
                             "it with `python -m pipeline draft A B --force` (keep a copy of your edits)")
        elif status.stale and not all(writable(path) for path in (status.path, sidecar_path(status.path))
                                      if path.exists()):  # a draft with nothing to refresh is not in the way
            status.broken = "read-only: make the file, its sidecar and their folder writable to refresh it"
    todo = [s for s in statuses if s.stale and not s.broken]
    jobs = [project.job(*parse_section(name)) for s in todo for name in s.stale_quotes()]
    stats, new, missing, prices = Stats(), {}, [], []
    if jobs:
        session = ReviewSession(project, env, log, use_cache=use_cache, keep_going=True)
        stats = session.stats
        new = session.run(jobs, "refresh", [s.path.stem for s in todo],
                          f"Refreshing {len(todo)} of {len(statuses)} drafts: {len({j.key for j in jobs})} reviews",
                          "Refresh")
        missing = session.missing
        prices = session.price_lines()
    # The models that wrote the new quotes: a fallback that served is named as one.
    models = sorted({r.model + (" (fallback)" if r.fallback else "") for r in new.values()})
    library = Library.of(project) if todo else None
    changes = [applied(project, status, new, library) for status in todo if library is not None]
    changes += [DraftChange(s.path, s.stale, broken=s.broken) for s in statuses if s.broken]
    # Conflicts left from earlier runs count until an editor settles them: the pull request keeps saying so.
    rewritten = {change.path for change in changes if change.written}  # the others were read in check_all
    unsettled = {s.path: found for s in statuses
                 if (found := DraftFile(s.path).conflicts if s.path in rewritten else s.conflicts)}
    disputes = disputes_of(statuses)
    return RefreshResult(len(statuses), changes, stats, project.backend, models, time.monotonic() - started,
                         unsettled, missing, disputes, prices)


def still_approved(record: Record, name: str, new: Review, library: Library, page: str) -> tuple[str, str, bool]:
    """For a regenerated quote: the text an editor approved for the review it replaces, where, and whether the
    model wrote the same reply again (then the approval holds for the new review too). ("", "", False) when no
    editor approved a text of it: this page carried none, and no other page changed it by hand."""
    old = record.sections.get(name)
    if old is None or not old.key or old.missing:
        return "", "", False
    if old.approved:
        text, source = old.approved, old.approved_from
    else:
        found = library.approved(name, old.key, skip=page)
        if found is None or isinstance(found, Dispute):
            return "", "", False
        text, source = found
    return text, source, not new.missing and new.quote == old.quote and new.verdict == old.verdict


def applied(project: Project, status: DraftStatus, new: dict[str, Review], library: Library) -> DraftChange:
    """``apply``, where a draft that became unreadable meanwhile (deleted, renamed, saved in another encoding while
    the replies came) is this draft's problem, reported with the others: it does not stop the rest."""
    try:
        return apply(project, status, new, library)
    except InputError as error:
        return DraftChange(status.path, status.stale, broken=error.message)


def apply(project: Project, status: DraftStatus, new: dict[str, Review], library: Library) -> DraftChange:
    """Merge one stale draft's regenerated sections into the file on disk, then record what was generated.

    An approved text (an editor's, carried here or written on another page) is never reverted by a regeneration:
    when the model wrote the same reply again, the approved text stays carried; when it wrote another, the page
    it was carried into gets a conflict between the two, as the page where the editor wrote it does."""
    record = status.record
    assert record is not None
    regenerated = set(status.stale_quotes())
    before = record.sections  # as recorded before this refresh
    jobs = project.plan(status.tools)
    reviews: dict[str, Review] = {}
    recorded: dict[str, Review] = {}  # as the model wrote them, for the sidecar
    approved: dict[str, tuple[str, str]] = {}  # regenerated quotes that keep an approved text
    base = record.page
    page = project.shown(status.path)
    # A review the backend did not serve, whose quote shows an editor's text here (approved, carried or written
    # by hand): the text stays as it is until a reply comes, instead of a placeholder in conflict with it. The
    # section stays stale, so the next refresh asks again.
    waiting = {name for name in regenerated if new[name].missing and (old := record.sections.get(name)) is not None
               and old.key and not old.missing and (old.approved or ((shown := library.on(name, page)) is not None
                                                                     and shown.edited))}
    regenerated -= waiting
    for job in jobs:
        name = job.section
        old = record.sections.get(name)
        reviews[name] = recorded[name] = new[name] if name in regenerated or old is None else old.review(name)
        if name in status.carried:  # another draft's approved text, in place of the older one shown
            reviews[name] = replace(reviews[name], quote=status.carried[name][0])
        elif name in regenerated and old is not None:
            text, source, holds = still_approved(record, name, new[name], library, page)
            if holds:
                approved[name] = (text, source or page)
                reviews[name] = replace(reviews[name], quote=text)
            elif text and old.approved and name in base.spans:  # the merge sees the carried text as an edit
                base = base.replaced(name, old.approved, old.quote)
    community = project.community(*record.tools)
    for _ in range(SAVES_WAITED):
        change, theirs, pinned, written = _merge_into(project, status, reviews, base, regenerated, community)
        if written is not None:
            break
    else:  # the editor keeps saving: their file stays as they left it, and the sidecar as it was
        return DraftChange(status.path, status.stale, broken=f"changed on disk {SAVES_WAITED} times while refresh "
                           "was writing it: your file is as you saved it; run refresh again when you are done")
    change.written = written
    change.kept = {name: source for name, (_, source) in approved.items()}
    change.placeholders = {name: new[name].missing for name in sorted(regenerated) if new[name].missing}
    change.waiting = {name: new[name].missing for name in sorted(waiting)}
    # The page is written before its sidecar: if we stop in between, the next refresh sees the new text as the
    # editor's and the regeneration as identical, so nothing is lost or doubled.
    # Quotes not regenerated keep what they were made from, the environment included.
    keep = {name: old for name, old in record.sections.items()
            if name in pinned or (old.key and name in theirs.spans and name not in regenerated)}
    for name, (text, source) in status.carried.items():
        sheet = status.tools[parse_section(name)[1]]
        keep[name] = keep[name].model_copy(update={"approved": text, "approved_from": source,
                                                   "flags": unsupported_claims(text, sheet)})
    record = build_record(project.inputs, status.tools, community, theirs, jobs, recorded, project.environment, keep,
                          pinned, approved)
    write_record(status.path, record)
    change.flags = {name: record.sections[name].flags for name in sorted(regenerated)
                    if name in record.sections and record.sections[name].flags}
    change.notes = {name: record.sections[name].notes for name in sorted(regenerated)
                    if name in record.sections and record.sections[name].notes}
    change.sameness = {name: section.sameness for name, section in record.sections.items() if section.sameness and
                       (name in regenerated or name not in before or section.sameness != before[name].sameness)}
    return change


def _merge_into(project: Project, status: DraftStatus, reviews: dict[str, Review], base: Page,
                regenerated: set[str], community: dict[str, str]) -> tuple[DraftChange, Page, list[str], bool | None]:
    """Read the draft, merge the page generated now into it and write it back: the change, the page generated, the
    pins that stand, and whether the draft was rewritten (None: an editor saved it after we read it, so nothing
    was written and the merge must be made again from their new file)."""
    record = status.record
    assert record is not None
    draft = DraftFile(status.path)  # read afresh: what the editor saved last is what the write must not lose
    seen, text = draft.seen, draft.text
    # An editor's tool wrote CRLF: merge on LF, write CRLF back, so the diff shows only edits.
    crlf = draft.crlf
    ours = list(draft.lines)

    def generated(verdicts: dict[str, str], base: Page = base, pinned: list[str] = record.pinned) -> Page:
        return assemble(project.root, project.personas, status.tools, reviews, community, verdicts).keep(base, pinned)

    # The verdicts an editor changed by hand stay; regenerated quotes bring their own.
    verdicts = {name: verdict for name, verdict in shown_verdicts(record, ours).items()
                if name not in regenerated or name not in record.sections or verdict != record.sections[name].verdict}
    theirs = generated(verdicts)
    reordered = in_order(base, ours, lens_order(theirs))  # personas swapped places: rows move, edits stay put
    if reordered is not None:
        base, ours = reordered
    pinned = [name for name in record.pinned if name in theirs.spans]
    change = DraftChange(status.path, status.stale, edited_sections(base, ours), pinned=pinned,
                         released=[name for name in record.pinned if name not in theirs.spans],
                         carried=dict(status.carried))
    change.unchanged = [s.section for s in status.stale if s.section in theirs.spans and s.section in base.spans
                        and theirs.section(s.section) == base.section(s.section)]
    merged, change.conflicts = merge(base, ours, theirs)
    # Panel ship follows the verdicts on the page as merged, which is what ``stale`` will read: should the merge
    # show other verdicts than the cards were counted from (a verdict line merged from either side), count again.
    for _ in range(len(theirs.spans)):
        shown = page_verdicts(theirs, merged) if merged != theirs.lines else {}
        counted = {name: verdicts.get(name, review.verdict) for name, review in reviews.items()}
        if all(counted.get(name) == verdict for name, verdict in shown.items()):
            break
        verdicts = {**verdicts, **shown}
        theirs = generated(verdicts)
        merged, change.conflicts = merge(base, ours, theirs)
    result = "\n".join(merged)
    if result == text:
        return change, theirs, pinned, False
    try:
        write_atomic(status.path.resolve(), result.replace("\n", "\r\n") if crlf else result,  # through a link
                     unchanged=seen)
    except ChangedSinceRead:
        return change, theirs, pinned, None
    return change, theirs, pinned, True


def place(project: Project, path: Path, reviews: dict[str, Review]) -> bool:
    """Put reviews that were not asked for (an editor's ``accept``) into a draft, each planned as its section
    was recorded, through the same three-way merge as a refresh; nothing is sent. Whether the draft changed."""
    library, written = Library.of(project), False
    for name, review in reviews.items():
        project.draft_file(path).release()  # read again: the review placed before this one rewrote it
        status = check(project, path, library)
        if status.broken:  # a fact sheet it names is gone: nothing can be placed until it is back
            raise InputError(path, None, status.broken)
        assert status.record is not None  # a draft with kept replies has a sidecar
        status.stale, status.carried = [StaleSection(name, ["accepted as it is"], regenerate=True)], {}
        variant = project.as_recorded(recorded_environment(status.record.sections[name]))
        written |= apply(variant, status, {name: review}, library).written
    return written


def pr_body(result: RefreshResult, project: Project) -> str:
    """Deterministic for a given run: no times, no URLs, no hostnames."""
    stale = [c for c in result.changes if c.stale and not c.broken]
    broken = [c for c in result.changes if c.broken]
    lines = ["## Refreshed drafts", ""]
    if broken:
        lines += ["**Could not refresh**, an editor must look:", ""]
        lines += [f"- `{project.shown(c.path)}`: {c.broken}" for c in broken]
        lines.append("")
    invalid = [exc for exc in result.missing if isinstance(exc, GaveUpOnReply)]
    if invalid:
        lines += ["**Missing quotes**, an editor must look: the model's replies still broke the rules after every "
                  "re-ask, so these quotes are placeholders (`python -m pipeline accept` takes a kept reply as it "
                  "is; another refresh asks again):", ""]
        lines += [f"- {exc.lens} quote on {exc.tool}: {'; '.join(exc.problems)}" for exc in invalid]
        lines.append("")
    if result.not_served:
        lines += ["**Quotes not served**: the backend failed for these reviews after every retry, so their quotes "
                  "are placeholders; every other page was refreshed, and the next refresh asks again:", ""]
        lines += [f"- {exc.lens} quote on {exc.tool}: {exc.message}" for exc in result.not_served]
        lines.append("")
    if result.unresolved:
        lines += ["**Unresolved conflicts**, an editor must look: each is a block of `<<<<<<<` ... `>>>>>>>` "
                  "lines holding both texts; keep the one you want, delete the other and the marker lines.", ""]
        lines += [f"- `{project.shown(path)}` line {c.start + 1}: {c.what}"
                  for path, found in sorted(result.unresolved.items()) for c in found]
        lines.append("")
    if result.disputes:
        lines += ["**Quotes approved differently**, an editor must choose: editors changed the same review by hand "
                  "to different texts in different drafts, so neither was carried anywhere:", ""]
        lines += [f"- {dispute}." for dispute in result.disputes]
        lines.append("")
    if not stale:
        lines += [f"No other draft of {result.checked} is stale; nothing was regenerated."
                  if broken or result.unresolved or result.disputes else
                  f"All {result.checked} drafts are up to date; nothing was regenerated.", ""]
        return "\n".join(lines)
    lines += [f"`python -m pipeline refresh` found {len(stale)} of {result.checked} drafts stale and regenerated "
              "only their stale sections. Hand edits were merged, never overwritten.", ""]
    if result.conflicts:
        lines += [f"**{plural(result.conflicts, 'new conflict')}**: an editor's text and the new generation "
                  "changed the same lines. Both are in the draft, in a block of git-style conflict markers "
                  "(`<<<<<<< your edit` ... `=======` ... `>>>>>>> generated now`); nothing was lost.", ""]
    else:
        lines += ["No conflicts.", ""]
    for change in stale:
        lines += [f"### `{project.shown(change.path)}`", "", "| Section | Why | Result |", "| --- | --- | --- |"]
        lines += [f"| {describe_section(s.section)} | {'; '.join(s.reasons)} | {change.outcome(s.section)} |"
                  for s in change.stale]
        if change.carried:
            lines += ["", "Quotes carried over from other pages: an editor changed the same review by hand there, "
                      "and this page showed an older text of it:", ""]
            lines += [f"- {describe_section(name)}: “{text}”, approved in `{source}`"
                      for name, (text, source) in change.carried.items()]
        if change.flags:
            lines += ["", "Facts to check: the new quotes say these, the fact sheet does not:", ""]
            lines += [f"- {describe_section(name)}: {', '.join(f'`{c}`' for c in claims)}"
                      for name, claims in change.flags.items()]
        if change.sameness or change.notes:
            lines += ["", "For the editor (accepted, not asked again):", ""]
            lines += [f"- {line.strip()}" for line in for_the_editor(change.sameness, change.notes)
                      if line.startswith("  ")]
        if change.pinned:
            lines += ["", "Pinned, left as they are: " + ", ".join(describe_section(s) for s in change.pinned) + "."]
        if change.released:
            lines += ["", "Pins released, their sections no longer exist: "
                      + ", ".join(describe_section(s) for s in change.released) + "."]
        lines.append("")
    s = result.stats
    models = ", ".join(f"`{m}`" for m in result.models) or "none"
    lines += ["### Spent", "", "| Backend | Models | Requests | Cache hits | Re-asks | Transport retries "
              "| Prompt tokens | Completion tokens |", "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
              f"| {result.backend} | {models} | {s.requests} | {s.cache_hits} | {s.reasks} | {s.retries} "
              f"| {s.prompt_tokens} | {s.completion_tokens} |", ""]
    return "\n".join(lines)


def summary(result: RefreshResult, project: Project) -> list[str]:
    lines = []
    for change in result.changes:
        if change.broken:
            lines.append(f"{project.shown(change.path)}: not refreshed: {change.broken}")
            continue
        state = "rewritten" if change.written else "unchanged on disk"
        lines.append(f"{project.shown(change.path)}: {plural(len(change.stale), 'stale section')}, {state}")
        lines += [f"  {s}: {change.outcome(s.section).replace('**', '')}" for s in change.stale]
    lines += facts_to_check({name: claims for change in result.changes for name, claims in change.flags.items()})
    lines += for_the_editor({name: found for change in result.changes for name, found in change.sameness.items()},
                            {name: found for change in result.changes for name, found in change.notes.items()})
    lines += [f"missing: {exc.message}; the page has a placeholder for it" for exc in result.missing]
    lines += [f"approved differently, nothing carried: {dispute}" for dispute in result.disputes]
    for path, found in sorted(result.unresolved.items()):
        lines += [f"{project.shown(path)}: unresolved conflict at line {c.start + 1}, {c.what}: {RESOLVE}"
                  for c in found]
    s = result.stats
    lines.append(f"Refreshed {len(result.changes)} of {plural(result.checked, 'draft')}: "
                 f"{plural(s.requests, 'request')}, {plural(s.cache_hits, 'cache hit')}, {plural(s.reasks, 're-ask')}, "
                 f"{plural(s.retries, 'transport retry', 'transport retries')}, "
                 f"{s.prompt_tokens} prompt + {s.completion_tokens} completion tokens, "
                 f"{plural(result.conflicts, 'new conflict')}")
    return lines
