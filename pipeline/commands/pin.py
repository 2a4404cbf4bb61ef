"""``python -m pipeline pin``: its arguments, and the engine call that answers it."""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path
from typing import Any

from ..errors import Outcome


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "pin",
        help="pin sections of a draft so refresh never touches them",
        description="Pin (or with --unpin, release) sections of a draft. A section is card:<slug> "
        "or <lens>:<slug>, e.g. card:ollama or skeptic:ollama.",
    )
    parser.add_argument("draft", metavar="DRAFT", help="outputs/<a>-vs-<b>.md or <a>-vs-<b>")
    parser.add_argument("sections", nargs="+", metavar="SECTION")
    parser.add_argument("--unpin", action="store_true", help="release the sections instead")


def run(root: Path, args: Namespace) -> Outcome:
    from ..pin import pin
    from ..project import Project
    from ..settings import settings_for

    project = Project(root, settings_for(root, args))
    path = project.find_draft(args.draft)
    with project.lock():  # a refresh writing the sidecar now would drop the pin: wait for it, then read afresh
        pinned = pin(path, args.sections, unpin=args.unpin)
    return Outcome([f"{project.shown(path)}: pinned: {', '.join(pinned) or 'nothing'}"])
