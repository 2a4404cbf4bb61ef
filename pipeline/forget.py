"""The ``forget`` command: drop cached reviews, so the next draft or refresh asks the model again."""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path

from .cache import ReviewCache
from .errors import InputError, Outcome, plural
from .load import SLUG
from .project import Project
from .review import parse_section
from .settings import settings_for


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


def command(root: Path, args: Namespace) -> Outcome:
    settings = settings_for(root, args)
    keys = keys_to_forget(Project(root, settings), args.targets)
    cache = ReviewCache(settings.cache_dir)
    try:
        dropped = 0
        for key in sorted(keys):  # a mark, not a deletion: the drafts under outputs/ must not lend it back either
            dropped += bool((cache.get(key) or {}).get("quote"))
            cache.set(key, {"forgotten": True})
    finally:
        cache.close()
    return Outcome([f"Forgot {plural(dropped, 'cached review')} of {', '.join(args.targets)}; the next "
                    "draft or refresh asks the model for them again."])
