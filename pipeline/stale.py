"""Which drafts are stale, section by section, and why. Sends nothing and needs no backend.

``check`` is the one rule. ``check_all`` asks it about each draft, or takes the answer it gave before for the same
inputs (digests.py: the key covering everything the rule reads, and the answers remembered under it).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from .assemble import assemble
from .digests import Digests, Key, plan_of
from .errors import InputError
from .library import Dispute, Library
from .load import FactSheet
from .merge import Unresolved, page_verdicts
from .project import Project, canonical
from .provenance import DraftFile, Record, changes, recorded_environment, sidecar_path, votes_file
from .review import FRAME, Review, describe_section, is_card, parse_section, section_id


@dataclass(frozen=True)
class StaleSection:
    section: str  # "card:<slug>", "<lens>:<slug>" or "frame"
    reasons: list[str]
    regenerate: bool = False  # a quote whose prompt or model changed needs a new review; else re-rendering does

    def __str__(self) -> str:
        return f"{describe_section(self.section)}: {', '.join(self.reasons)}"


@dataclass
class DraftStatus:
    draft: DraftFile
    tools: dict[str, FactSheet] = field(default_factory=dict)
    stale: list[StaleSection] = field(default_factory=list)
    broken: str = ""  # why this draft cannot be checked or refreshed (a fact sheet it names is gone or invalid)
    conflicts: list[Unresolved] = field(default_factory=list)  # conflict blocks an editor has not settled yet
    # Quotes to show an approved text from another draft instead of the older one shown: section -> (text, page)
    carried: dict[str, tuple[str, str]] = field(default_factory=dict)
    disputes: list[Dispute] = field(default_factory=list)  # reviews editors approved differently, this page's

    @property
    def path(self) -> Path:
        return self.draft.path

    @property
    def record(self) -> Record | None:
        """The draft's sidecar; None when it has none (read when asked for: a remembered answer needs none)."""
        return self.draft.record

    @property
    def needs_attention(self) -> bool:
        return bool(self.stale or self.conflicts or self.disputes)

    def stale_quotes(self) -> list[str]:
        """Quotes that need a new review, not just a new layout."""
        return [s.section for s in self.stale if s.regenerate]


def shown_verdicts(record: Record, lines: list[str]) -> dict[str, str]:
    """The verdicts the draft shows; only an edited draft can differ from its reviews."""
    base = record.page
    return {} if lines == base.lines else page_verdicts(base, lines)


def check(project: Project, path: Path, library: Library | None = None) -> DraftStatus:
    """The rule: what in this draft is stale, and why; its unsettled conflicts; the approved texts it should show."""
    draft = project.draft_file(path)
    status = _check(project, draft, library or Library.of(project))
    status.conflicts = draft.conflicts
    return status


def _check(project: Project, draft: DraftFile, library: Library) -> DraftStatus:
    path, lines, record = draft.path, draft.lines, draft.record
    if record is None:
        return DraftStatus(draft, stale=[StaleSection(FRAME, [
            f"no provenance record ({sidecar_path(path).name}): drafted before provenance, or written by hand"])])
    gone = [slug for slug in record.tools if not project.tool_path(slug).is_file()]
    if gone:  # a deleted fact sheet is this draft's problem; it must not stop the check of the others
        problem = f"tools/{gone[0]}.toml no longer exists: restore it, or delete this draft and its sidecar"
        return DraftStatus(draft, stale=[StaleSection(FRAME, [problem])], broken=problem)
    tools = {slug: project.tool(slug) for slug in record.tools}  # a broken fact sheet is bad input: exit 2
    status = DraftStatus(draft, tools)
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
            if isinstance(approved, Dispute):
                status.disputes.append(approved)
            elif approved and (shown := library.on(name, project.shown(path))) and shown.text \
                    and shown.text != approved[0]:  # older than the approved
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
    """Every draft's status: the rule's answer, or the one it gave for the same inputs (``Key``)."""
    if not project.personas:  # a broken persona file is bad input even when there is no draft to check
        return []
    outputs = project.outputs
    as_is = outputs.is_dir() and outputs.resolve() == outputs  # then a draft there needs no resolving
    unique = list(dict.fromkeys(path if as_is and path.parent == outputs else canonical(path)
                                for path in paths))  # a draft named twice is checked once
    digests = Digests(project.settings.cache_dir)
    every = project.all_drafts()
    digests.attach([project.draft_file(path) for path in dict.fromkeys([*every, *unique])])
    library = Library.of(project, every, digests.as_generated)
    key = Key(project, library)
    statuses = []
    for path in unique:
        draft = project.draft_file(path)
        entry = digests.entry(draft)
        if entry is not None and (remembered := key.of(digests.identity(draft), entry.get("plan"))) is not None \
                and remembered == entry.get("key"):
            with_answer = status_from(project, draft, entry.get("answer"))
            if with_answer is not None:
                digests.confirm(draft, entry)
                statuses.append(with_answer)
                continue
        status = check(project, path, library)
        plan = json.loads(json.dumps(plan_of(status.record)))  # as the next run reads it back
        made = key.of(draft.identity, plan)
        if made is not None:
            digests.remember(draft, plan, made, answer_of(status))
        if not (status.needs_attention or status.carried):
            draft.release()  # what refresh or the report may still read of it is kept
        statuses.append(status)
    digests.save()
    return statuses


def answer_of(status: DraftStatus) -> dict[str, Any]:
    """The rule's answer, as digests.py keeps it."""
    return {"tools": list(status.tools), "stale": [asdict(s) for s in status.stale], "broken": status.broken,
            "conflicts": [asdict(c) for c in status.conflicts], "carried": status.carried,
            "disputes": [asdict(d) for d in status.disputes]}


def _tuples(fields: dict[str, Any]) -> dict[str, Any]:
    """Fields read back from JSON, their lists made the tuples they were."""
    return {name: tuple(value) if isinstance(value, list) else value for name, value in fields.items()}


def status_from(project: Project, draft: DraftFile, answer: Any) -> DraftStatus | None:
    """A remembered answer (``answer_of``) as the rule gave it; None when it cannot be read back."""
    try:
        return DraftStatus(draft, {slug: project.tool(slug) for slug in answer["tools"]},
                           [StaleSection(**s) for s in answer["stale"]], answer["broken"],
                           [Unresolved(**_tuples(c)) for c in answer["conflicts"]],
                           {name: (text, page) for name, (text, page) in answer["carried"].items()},
                           [Dispute(**d) for d in answer["disputes"]])
    except (InputError, KeyError, TypeError, ValueError, AttributeError):
        return None
