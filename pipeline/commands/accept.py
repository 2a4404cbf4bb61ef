"""``python -m pipeline accept``: its arguments, and the engine call that answers it."""

from __future__ import annotations

import argparse
from argparse import Namespace
from pathlib import Path
from typing import Any

from ..errors import Outcome
from . import flags


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "accept",
        help="take a kept reply as it is for a quote left as a placeholder",
        description="For quotes the model never got right (the draft shows a placeholder), "
        "take the last reply as it is, then refresh the draft to put it in place.",
    )
    parser.add_argument("draft", metavar="DRAFT", help="outputs/<a>-vs-<b>.md or <a>-vs-<b>")
    parser.add_argument("sections", nargs="+", metavar="SECTION", help="<lens>:<slug>, as the placeholder names it")
    flags.model(parser)
    flags.requests(parser)
    parser.add_argument("--pr-body", type=Path, metavar="FILE", help=argparse.SUPPRESS)


def run(root: Path, args: Namespace) -> Outcome:
    from ..accept import accept
    from ..project import Project
    from ..refresh import place
    from ..settings import settings_for

    project = Project(root, settings_for(root, args))
    path = project.find_draft(args.draft)
    with project.lock():  # one process at a time writes a draft
        accepted = accept(project, path, args.sections)
        written = place(project, path, accepted)
    state = "rewritten" if written else "unchanged on disk"
    return Outcome([f"Accepted the kept reply as it is: {', '.join(accepted)}; {project.shown(path)} {state}"])
