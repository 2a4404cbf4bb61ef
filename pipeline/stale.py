"""Which drafts are stale, section by section, and why. Sends nothing and needs no backend."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .assemble import assemble
from .digests import Digests
from .errors import InputError
from .library import Dispute, Library
from .load import FactSheet
from .merge import LEGACY_NOTE, START, Unresolved, page_verdicts, unresolved
from .project import Project, canonical
from .provenance import DraftFile, Record, Section, changes, keys_hash, short_hash, sidecar_path, votes_file
from .review import FRAME, Review, card_id, describe_section, is_card, parse_section, section_id


@dataclass(frozen=True)
class StaleSection:
    section: str  # "card:<slug>", "<lens>:<slug>" or "frame"
    reasons: list[str]
    regenerate: bool = False  # a quote whose prompt or model changed needs a new review; else re-rendering does

    def __str__(self) -> str:
        return f"{describe_section(self.section)}: {', '.join(self.reasons)}"


@dataclass
class DraftStatus:
    path: Path
    record: Record | None  # None: no sidecar (then the draft is stale), or found fresh without reading it in full
    tools: dict[str, FactSheet] = field(default_factory=dict)
    stale: list[StaleSection] = field(default_factory=list)
    broken: str = ""  # why this draft cannot be checked or refreshed (a fact sheet it names is gone or invalid)
    conflicts: list[Unresolved] = field(default_factory=list)  # conflict blocks an editor has not settled yet
    # Quotes to show an approved text from another draft instead of the older one shown: section -> (text, page)
    carried: dict[str, tuple[str, str]] = field(default_factory=dict)
    disputes: list[Dispute] = field(default_factory=list)  # reviews editors approved differently, this page's

    @property
    def needs_attention(self) -> bool:
        return bool(self.stale or self.conflicts or self.disputes)

    def stale_quotes(self) -> list[str]:
        """Quotes that need a new review, not just a new layout."""
        return [s.section for s in self.stale if s.regenerate]


def recorded_environment(section: Section) -> dict[str, Any]:
    """What the environment chose when the quote was generated; a sidecar from before it was recorded names its
    backend only."""
    return section.environment or {"backend": section.settings.get("backend", "local")}


def conflicts_in(lines: list[str]) -> list[Unresolved]:
    if not any(line.startswith((START, LEGACY_NOTE)) for line in lines):
        return []
    return unresolved(lines)


def shown_verdicts(record: Record, lines: list[str]) -> dict[str, str]:
    """The verdicts the draft shows; only an edited draft can differ from its reviews."""
    base = record.page
    return {} if lines == base.lines else page_verdicts(base, lines)


def check(project: Project, path: Path, library: Library | None = None) -> DraftStatus:
    draft = project.draft_file(path)
    lines = draft.lines
    status = _check(project, path, lines, draft.record, library or Library.of(project))
    status.conflicts = conflicts_in(lines)
    return status


def _check(project: Project, path: Path, lines: list[str], record: Record | None, library: Library) -> DraftStatus:
    if record is None:
        return DraftStatus(path, None, stale=[StaleSection(FRAME, [
            f"no provenance record ({sidecar_path(path).name}): drafted before provenance, or written by hand"])])
    gone = [slug for slug in record.tools if not project.tool_path(slug).is_file()]
    if gone:  # a deleted fact sheet is this draft's problem; it must not stop the check of the others
        problem = f"tools/{gone[0]}.toml no longer exists: restore it, or delete this draft and its sidecar"
        return DraftStatus(path, record, stale=[StaleSection(FRAME, [problem])], broken=problem)
    tools = {slug: project.tool(slug) for slug in record.tools}  # a broken fact sheet is bad input: exit 2
    status = DraftStatus(path, record, tools)
    recorded_lenses = {parse_section(name)[0] for name in record.sections}
    added = [f"personas/{p.lens}.toml added" for p in project.personas if p.lens not in recorded_lenses]
    reviews = {}
    for persona in project.personas:
        for slug in tools:
            name = section_id(persona.lens, slug)
            old = record.sections.get(name)
            reviews[name] = old.review(name) if old else Review(persona.lens, slug, "skip", "", "")
            if name in record.pinned:
                continue
            if old is None:
                status.stale.append(StaleSection(name, [f"personas/{persona.lens}.toml added"], regenerate=True))
                continue
            if old.missing:
                status.stale.append(StaleSection(name, [f"no valid review yet ({old.missing})"], regenerate=True))
                continue
            job = project.as_recorded(recorded_environment(old)).job(persona.lens, slug)
            if old.key != job.key:
                status.stale.append(StaleSection(name, changes(old.inputs, project.inputs.job(job), old.settings,
                                                               job.target.settings())
                                                 or ["the rendered prompt changed"], regenerate=True))
                continue
            approved = library.approved(name, old.key)
            shown = library.on(name, project.shown(path))
            if isinstance(approved, Dispute):
                status.disputes.append(approved)
            elif approved and shown and shown.text and shown.text != approved[0]:  # older than the approved
                status.carried[name] = approved
                reviews[name] = replace(reviews[name], quote=approved[0])
                status.stale.append(StaleSection(name, [f"shows an older text of this review than the one an "
                                                        f"editor approved in {approved[1]}"]))
    community = project.community(*record.tools)
    base = record.page
    page = assemble(project.root, project.personas, tools, reviews, community, shown_verdicts(record, lines))
    page = page.keep(base, record.pinned)  # a pinned card still takes a new panel ship
    regenerating = {s.section for s in status.stale}  # and the quotes taking an approved text
    for name in page.spans:
        if name in regenerating or (name in base.spans and base.section(name) == page.section(name)):
            continue
        if is_card(name):
            slug = parse_section(name)[1]
            old = record.sections.get(name)
            now = project.inputs.card(slug, tools[slug], community.get(slug, ""), votes_file(*record.tools))
            reasons = (changes(old.inputs, now) if old else []) or added
            status.stale.append(StaleSection(name, reasons or ["panel ship follows the verdicts on the page"]))
        else:  # the quote's review is current; the page template shows it differently now
            reasons = changes({"prompts/page.md.j2": record.frame.get("prompts/page.md.j2", "")},
                              {"prompts/page.md.j2": project.inputs.template("page.md.j2")})
            status.stale.append(StaleSection(name, reasons or ["the page layout changed"]))
    if base.frame() != page.frame():
        status.stale.append(StaleSection(FRAME, changes(record.frame, project.inputs.frame(tools))
                                         or ["the page layout changed"]))
    return status


def disputes_of(statuses: list[DraftStatus]) -> list[Dispute]:
    """Each review editors approved differently, once, however many of the drafts show it."""
    return list({(d.section, tuple(d.texts)): d for status in statuses for d in status.disputes}.values())


def check_all(project: Project, paths: list[Path]) -> list[DraftStatus]:
    """Every draft's status. A draft that is still the page as generated, from inputs that are all as they were
    (its sidecar's fingerprints and cache keys against the current ones), is fresh without rendering its page
    again: see ``Fresh``. The first such draft is checked in full all the same; should that find anything stale
    (the page's layout changed with no input changing: the code that lays it out did), every draft is."""
    if not project.personas:  # a broken persona file is bad input even when there is no draft to check
        return []
    outputs = project.outputs
    as_is = outputs.is_dir() and outputs.resolve() == outputs  # then a draft there needs no resolving
    unique = list(dict.fromkeys(path if as_is and path.parent == outputs else canonical(path)
                                for path in paths))  # a draft named twice is checked once
    digests = Digests(project.settings.cache_dir)
    every = project.all_drafts()
    digests.attach([project.draft_file(path) for path in dict.fromkeys([*every, *unique])])
    library = Library.of(project, every)
    fresh = Fresh(project, library)
    statuses = []
    for path in unique:
        draft = project.draft_file(path)
        quick = fresh.status(draft) if fresh.trusted is not False else None
        if quick is not None and fresh.trusted:
            statuses.append(quick)
            continue
        status = check(project, path, library)
        if quick is not None:  # the first fresh draft: does the full check agree?
            fresh.trusted = not (status.stale or status.conflicts or status.disputes or status.carried)
        statuses.append(status)
    digests.save()
    return statuses


class Fresh:
    """Whether a draft is fresh, from its sidecar's data as it is, with no page rendered and no record validated:
    the draft is the page as generated, nothing is pinned, every section is recorded, every quote's cache key is
    the one the project would plan now, no editor approved another text of it, and the cards' and the frame's
    input fingerprints are the current ones. Anything else, or anything unexpected in the sidecar, goes to the
    full check (which reports a damaged sidecar as before)."""

    def __init__(self, project: Project, library: Library) -> None:
        self.project, self.library = project, library
        self.trusted: bool | None = None  # None until the first fresh draft was checked in full too
        self._sheets: dict[str, bool] = {}
        self._names = project.output_names  # a votes file that is not there needs no look

    def _exists(self, slug: str) -> bool:
        if slug not in self._sheets:
            self._sheets[slug] = isinstance(slug, str) and self.project.tool_path(slug).is_file()
        return self._sheets[slug]

    def status(self, draft: DraftFile) -> DraftStatus | None:
        try:
            digest = draft.digested()
            if not digest["as_generated"] or digest["conflicts"] or digest["data"] is None:
                return None  # an edited draft, or conflict blocks: the full check's to report
            return self._status(draft, digest["data"])
        except (InputError, KeyError, TypeError, ValueError, AttributeError):
            return None  # the full check says what is wrong, as it always has

    def _status(self, draft: DraftFile, data: dict[str, Any]) -> DraftStatus | None:
        project = self.project
        slug_a, slug_b = data["tools"]
        if not (self._exists(slug_a) and self._exists(slug_b)):
            return None
        tools = {slug_a: project.tool(slug_a), slug_b: project.tool(slug_b)}
        quotes = [(p.lens, slug) for p in project.personas for slug in tools]
        if data["names"] != ",".join(sorted([card_id(slug_a), card_id(slug_b), *(section_id(*q) for q in quotes)])):
            return None
        environments = [project.as_recorded(environment) for environment in data["environments"]]
        chosen = data["quotes"]
        keys = {}
        for lens, slug in quotes:
            name = section_id(lens, slug)
            keys[name] = environments[chosen[name]].job(lens, slug).key
        if self.library.edited and any(self.library.approved(name, key) is not None for name, key in keys.items()):
            return None
        if data["keys"] != keys_hash(keys):
            return None
        votes = votes_file(slug_a, slug_b)
        community = project.community(slug_a, slug_b) if Path(votes).name in self._names else {}
        for slug, sheet in tools.items():
            if data["cards"][card_id(slug)] != short_hash(project.inputs.card(slug, sheet, community.get(slug, ""),
                                                                              votes)):
                return None
        if data["frame"] != short_hash(project.inputs.frame(tools)):
            return None
        return DraftStatus(draft.path, None, tools)
