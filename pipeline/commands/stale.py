"""``python -m pipeline stale``: its arguments, and the engine call that answers it."""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path
from typing import Any

from ..errors import Outcome
from . import flags


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "stale",
        help="list stale drafts and why (exit 1 when any is stale)",
        description="List the drafts whose inputs changed since they were generated, section by "
        "section, with the reason. Sends nothing. Exit 1 when anything is stale, 0 when not.",
    )
    flags.drafts(parser)
    flags.model(parser)


def run(root: Path, args: Namespace) -> Outcome:
    from ..errors import OK, STALE, plural
    from ..merge import RESOLVE
    from ..project import Project
    from ..settings import settings_for
    from ..stale import check_all, disputes_of

    # Only an option given here changes how a draft is checked: environment variables do not (see as_recorded).
    options = {name: getattr(args, name) for name in ("backend", "model", "provider") if getattr(args, name)}
    project = Project(root, settings_for(root, args), options=options)
    paths = [project.find_draft(d) for d in args.drafts] or project.all_drafts()
    statuses = check_all(project, paths)
    lines = []
    for status in statuses:
        shown = project.shown(status.path)
        if status.stale:
            lines.append(f"{shown}: {plural(len(status.stale), 'stale section')}")
            lines += [f"  {section}" for section in status.stale]
        if status.conflicts:
            lines.append(f"{shown}: {plural(len(status.conflicts), 'unresolved conflict')}")
            lines += [f"  line {c.start + 1}, {c.what}: {RESOLVE}" for c in status.conflicts]
    disputes = disputes_of(statuses)
    lines += [f"Approved differently: {dispute}." for dispute in disputes]
    stale = [status for status in statuses if status.stale]
    unsettled = [status for status in statuses if status.conflicts]
    tail = "; `make refresh` regenerates them" if stale else ""
    lines.append(
        f"{len(stale)} of {plural(len(statuses), 'draft')} stale{tail}"
        + (f"; {plural(len(unsettled), 'draft')} with unresolved conflicts" if unsettled else "")
        + (f"; {plural(len(disputes), 'quote')} approved differently" if disputes else "")
        + "."
    )
    return Outcome(lines, STALE if stale or unsettled or disputes else OK)
