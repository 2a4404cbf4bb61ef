"""Which drafts are stale, section by section, and why. Sends nothing and needs no backend."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .assemble import assemble
from .backends import backend_name, targets_for
from .generate import Job, Review, make_job
from .load import FactSheet, load_personas, load_tool
from .provenance import Inputs, Record, changes, read_record, sidecar_path, target_settings
from .settings import Settings


def label(section: str) -> str:
    """``skeptic:ollama`` -> ``skeptic quote on ollama``; ``card:ollama`` -> ``card of ollama``."""
    kind, _, slug = section.partition(":")
    if section == "frame":
        return "page frame"
    return f"card of {slug}" if kind == "card" else f"{kind} quote on {slug}"


@dataclass(frozen=True)
class StaleSection:
    section: str  # "card:<slug>", "<lens>:<slug>" or "frame"
    reasons: list[str]
    regenerate: bool = False  # a quote whose prompt or model changed needs a new review; else re-rendering does

    def __str__(self) -> str:
        return f"{label(self.section)}: {', '.join(self.reasons)}"


@dataclass
class DraftStatus:
    path: Path
    record: Record | None
    tools: dict[str, FactSheet] = field(default_factory=dict)
    stale: list[StaleSection] = field(default_factory=list)
    broken: str = ""  # why this draft cannot be checked or refreshed (a fact sheet it names is gone or invalid)

    def stale_quotes(self) -> list[str]:
        """Quotes that need a new review, not just a new layout."""
        return [s.section for s in self.stale if s.regenerate]


class Project:
    """The project's current inputs, each loaded and fingerprinted once however many drafts are checked."""

    def __init__(self, root: Path, settings: Settings, env: Mapping[str, str] | None = None) -> None:
        self.root = root
        self.settings = settings
        self.personas = load_personas(root)
        self.backend = backend_name(settings, env)
        self.inputs = Inputs(root, self.personas)
        self._tools: dict[str, FactSheet] = {}
        self._jobs: dict[str, Job] = {}

    def tool(self, slug: str) -> FactSheet:
        if slug not in self._tools:
            self._tools[slug] = load_tool(self.root, slug)
        return self._tools[slug]

    def job(self, lens: str, slug: str) -> Job:
        name = f"{lens}:{slug}"
        if name not in self._jobs:
            persona = next(p for p in self.personas if p.lens == lens)
            targets = targets_for(self.backend, self.settings, persona)
            self._jobs[name] = make_job(self.root, targets, persona, slug, self.tool(slug), self.settings)
        return self._jobs[name]

    def quote_inputs(self, job: Job) -> tuple[dict[str, str], dict[str, object]]:
        used = target_settings(job.target, self.settings)
        return self.inputs.quote(job.persona, job.slug, job.sheet, used), used


def all_drafts(root: Path) -> list[Path]:
    return sorted((root / "outputs").glob("*-vs-*.md"))


def check(project: Project, path: Path) -> DraftStatus:
    record = read_record(path)
    if record is None:
        return DraftStatus(path, None, stale=[StaleSection("frame", [
            f"no provenance record ({sidecar_path(path).name}): drafted before provenance, or written by hand"])])
    gone = [slug for slug in record.tools if not (project.root / "tools" / f"{slug}.toml").is_file()]
    if gone:  # a deleted fact sheet is this draft's problem; it must not stop the check of the others
        problem = f"tools/{gone[0]}.toml no longer exists: restore it, or delete this draft and its sidecar"
        return DraftStatus(path, record, stale=[StaleSection("frame", [problem])], broken=problem)
    tools = {slug: project.tool(slug) for slug in record.tools}  # a broken fact sheet is bad input: exit 2
    status = DraftStatus(path, record, tools)
    added = [f"personas/{p.lens}.toml added" for p in project.personas
             if not any(name.startswith(f"{p.lens}:") for name in record.sections)]
    reviews = {}
    for persona in project.personas:
        for slug in tools:
            name = f"{persona.lens}:{slug}"
            old = record.sections.get(name)
            reviews[(persona.lens, slug)] = old.review(name) if old else Review(persona.lens, slug, "skip", "", "")
            if name in record.pinned:
                continue
            job = project.job(persona.lens, slug)
            if old is None:
                status.stale.append(StaleSection(name, [f"personas/{persona.lens}.toml added"], regenerate=True))
            elif old.key != job.key:
                inputs, used = project.quote_inputs(job)
                status.stale.append(StaleSection(name, changes(old.inputs, inputs, old.settings, used)
                                                 or ["the rendered prompt changed"], regenerate=True))
    page = assemble(project.root, project.personas, tools, reviews)
    base = record.page
    regenerating = {s.section for s in status.stale}
    for name in page.spans:
        if name in record.pinned or name in regenerating or \
                (name in base.spans and base.section(name) == page.section(name)):
            continue
        if name.startswith("card:"):
            slug = name.removeprefix("card:")
            old = record.sections.get(name)
            reasons = (changes(old.inputs, project.inputs.card(slug, tools[slug])) if old else []) or added
            status.stale.append(StaleSection(name, reasons or ["panel verdicts changed"]))
        else:  # the quote's review is current; the page template shows it differently now
            reasons = changes({"prompts/page.md.j2": record.frame.get("prompts/page.md.j2", "")},
                              {"prompts/page.md.j2": project.inputs.template("page.md.j2")})
            status.stale.append(StaleSection(name, reasons or ["the page layout changed"]))
    if base.frame() != page.frame():
        status.stale.append(StaleSection("frame", changes(record.frame, project.inputs.frame(tools))
                                         or ["the page layout changed"]))
    return status


def check_all(project: Project, paths: list[Path]) -> list[DraftStatus]:
    unique = list(dict.fromkeys(path.resolve() for path in paths))  # a draft named twice is checked once
    return [check(project, path) for path in unique]
