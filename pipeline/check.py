"""The ``check`` command: are the editors' files usable as they are now? Sends nothing and needs no token.

Every fact sheet and persona loads (every bad file is reported, not just the first), every template renders
against every persona and fact sheet, and every quote in a draft under outputs/, as the draft shows it now, still
passes its lens's rules. This is what CI runs on the live tools/, personas/ and outputs/; the test suite runs on
its own fixture project.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from . import calibrate
from .assemble import assemble
from .errors import InputError
from .load import SLUG, FactSheet, load_persona, load_personas, load_tool, persona_paths
from .merge import RESOLVE
from .project import Project, shown
from .provenance import quotes_shown
from .render import distinct_message, reask_message
from .review import Review, describe_section, section_id
from .settings import Settings, load_settings
from .validate import quote_problems

# Pages are rendered for pairs of tools; with fewer than two fact sheets, these stand in for the missing ones.
PLACEHOLDERS = {slug: FactSheet(name=f"Placeholder {n}", category="Placeholder", tagline="Placeholder",
                                entry="Free", description="A placeholder fact sheet.")
                for n, slug in enumerate(("placeholder-a", "placeholder-b"), start=1)}


def problem_lines(error: InputError, root: Path) -> list[str]:
    """One line per problem, each naming the file (relative to the project) and the field."""
    where = shown(Path(error.file), root)
    return [f"{where}: {field}: {problem}" if field else f"{where}: {problem}" for field, problem in error.problems]


def load_everything(root: Path, problems: list[str]) -> tuple[Settings | None, dict[str, FactSheet], int]:
    """The settings and every fact sheet that loads, and how many persona files there are; every file that does
    not load is added to ``problems``."""
    settings = None
    try:
        settings = load_settings(root, env={})  # the repository's settings: the shell's play no part here
    except InputError as error:
        problems += problem_lines(error, root)
    sheets: dict[str, FactSheet] = {}
    paths = sorted((root / "tools").glob("*.toml"))
    for path in paths:
        if not SLUG.fullmatch(path.stem):
            problems.append(f"{shown(path, root)}: a fact sheet's file name is its slug: lowercase letters, digits "
                            "and '-', starting with a letter or digit")
            continue
        try:
            sheets[path.stem] = load_tool(root, path.stem)
        except InputError as error:
            problems += problem_lines(error, root)
    personas = persona_paths(root)
    for path in personas:
        try:
            load_persona(path)
        except InputError as error:
            problems += problem_lines(error, root)
    if not problems:
        try:
            load_personas(root)  # the panel as a whole: at least one lens, each in its own place
        except InputError as error:
            problems += problem_lines(error, root)
    return settings, sheets, len(personas)


def render_everything(project: Project, sheets: dict[str, FactSheet]) -> list[str]:
    """Render every prompt for every persona and fact sheet, and the page for every fact sheet, as ``draft`` does
    before its first request. A broken template fails the same way every time: each is reported once."""
    root, personas = project.root, project.personas
    slugs = list(sheets) + list(PLACEHOLDERS)[: max(0, 2 - len(sheets))]
    every = {**PLACEHOLDERS, **sheets}
    pairs = [{a: every[a], b: every[b]} for a, b in zip(slugs, slugs[1:], strict=False)]  # every sheet on a page
    stages = [
        lambda: project.plan(list(sheets)),  # system.j2 and user.j2
        lambda: [reask_message(root, persona, ["placeholder problem"]) for persona in personas],
        lambda: [distinct_message(root, persona, personas[0], "placeholder", "placeholder", ["placeholder"])
                 for persona in personas],
        lambda: [assemble(root, personas, pair, {section_id(p.lens, slug): Review(p.lens, slug, "ship", "x", "")
                                                 for p in personas for slug in pair}) for pair in pairs],
    ]
    problems: list[str] = []
    for stage in stages:
        try:
            stage()
        except InputError as error:
            problems += problem_lines(error, root)
    return problems


@dataclass
class DraftProblems:
    """What ``check`` found in one draft: quotes that no longer pass their lens, or a broken sidecar (bad input);
    and what makes it unpublishable as it stands (placeholders, unsettled conflicts), which ``stale`` reports too."""

    problems: list[str] = field(default_factory=list)
    unpublishable: list[str] = field(default_factory=list)
    has_record: bool = True  # without a sidecar, which lens wrote which quote is not known


def check_draft(project: Project, path: Path) -> DraftProblems:
    where = project.shown(path)
    draft = project.draft_file(path)
    try:
        record = draft.read().record
        conflicts = [f"{where}: line {c.start + 1}: an unresolved conflict about {c.what}: {RESOLVE}"
                     for c in draft.conflicts]
        if record is None:
            return DraftProblems(unpublishable=conflicts, has_record=False)
        project.community(*record.tools)
    except InputError as error:
        return DraftProblems(problem_lines(error, project.root))
    found = DraftProblems(unpublishable=conflicts)
    placeholders, quotes = draft.placeholders, draft.quotes
    generated = quotes_shown(record, record.page.lines)
    for persona in project.personas:
        for slug in record.tools:
            name = section_id(persona.lens, slug)
            section = record.sections.get(name)
            if section is None:
                continue  # a lens added since the draft was made: `stale` reports it, `refresh` writes it
            quote = quotes.get(name, section.quote)
            if name in placeholders:
                found.unpublishable.append(f"{where}: {describe_section(name)}: a placeholder, not a quote: "
                                           f"{placeholders[name]}")
            elif not (section.accepted and quote == generated.get(name)):  # an accepted reply stands as it is
                found.problems += [f"{where}: {describe_section(name)}: {problem}"
                                   for problem in quote_problems(persona, quote)]
    return found


def calibration(project: Project) -> list[str]:
    """The personas' checks against the calibration corpus, when the project has one: a persona edit that makes
    them refuse good quotes (or accept bad ones) is a problem, shown with the per-lens table."""
    corpus = project.root / "calibration"  # the project's own corpus, beside its personas
    if not (corpus / "corpus").is_dir():
        return []
    result = calibrate.run(corpus, project.personas, calibrate.reference_quotes(project.root, project.personas))
    if not result.failing():
        return []
    table = "\n".join("    " + line for line in calibrate.report(result, project.personas, misses=5))
    return [f"personas/: the lens checks no longer hold on {corpus.relative_to(project.root)} "
            f"(`make calibrate` for the whole table):\n{table}"]
