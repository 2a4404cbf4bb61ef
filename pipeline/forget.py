"""The ``forget`` command: drop cached reviews, so the next draft or refresh asks the model again."""

from __future__ import annotations

from .errors import InputError
from .load import SLUG
from .project import Project
from .review import parse_section


def keys_to_forget(project: Project, targets: list[str]) -> set[str]:
    """The cache keys of the reviews on the named drafts, and of every review of the named tools: those the
    drafts record (whatever settings made them) and those a draft would ask for now."""
    keys: set[str] = set()
    tools: set[str] = set()
    for given in targets:
        if SLUG.fullmatch(given) and "-vs-" not in given:
            if not project.tool_path(given).is_file():
                raise InputError("command line", "DRAFT_OR_TOOL", f"{given!r} is neither a draft nor a tool")
            tools.add(given)
            continue
        record = project.draft_file(project.find_draft(given)).record
        if record is not None:
            keys |= {section.key for section in record.sections.values() if section.key}
    if tools:
        for path in project.all_drafts():
            record = project.draft_file(path).record
            if record is not None:
                keys |= {s.key for name, s in record.sections.items() if s.key and parse_section(name)[1] in tools}
        keys |= {job.key for job in project.plan(sorted(tools))}
    return keys
