"""``python -m pipeline refresh``: its arguments, and the engine call that answers it."""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path
from typing import Any

from ..errors import Outcome
from . import flags


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "refresh",
        help="regenerate stale sections, merging them into hand edits",
        description="Regenerate the stale sections of drafts and merge them three-way into the "
        "files on disk. Exit 5 when an editor must look: a hand edit and a new generation "
        "overlap (both are written into the draft between git-style conflict markers), an earlier "
        "conflict is still unresolved, or a draft could not be refreshed.",
    )
    flags.drafts(parser)
    flags.model(parser)
    flags.requests(parser)
    parser.add_argument("--pr-body", type=Path, metavar="FILE", help="also write a Markdown summary for a pull request")


def run(root: Path, args: Namespace) -> Outcome:
    from ..project import Project
    from ..refresh import pr_body, refresh, summary
    from ..report import run_report
    from ..settings import settings_for
    from ..write import can_write, not_editorial, write_atomic

    settings = settings_for(root, args)
    project = Project(root, settings)
    paths = [project.find_draft(d) for d in args.drafts]
    body = not_editorial(root, root / args.pr_body, "--pr-body") if args.pr_body else None  # relative to the project
    if body is not None:
        can_write(body, "the pull request body")
    result = refresh(root, settings, drafts=paths or None, use_cache=not args.no_cache)
    if body is not None:
        write_atomic(body, pr_body(result, project))
    return Outcome(
        summary(result, project) + run_report(result.stats, result.seconds, settings, result.prices), result.exit_code
    )
