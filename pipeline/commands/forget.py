"""``python -m pipeline forget``: its arguments, and the engine call that answers it."""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path
from typing import Any

from ..errors import Outcome
from . import flags


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "forget",
        help="drop the cached reviews of drafts or tools",
        description="Drop the cached reviews of drafts (the reviews their sidecars record) or of "
        "tools (every cached review of the tool that a draft records or a draft would ask for "
        "now), so the next draft or refresh asks the model again.",
    )
    parser.add_argument(
        "targets", nargs="+", metavar="DRAFT_OR_TOOL", help="outputs/<a>-vs-<b>.md, <a>-vs-<b>, or a tool slug"
    )
    flags.cache_dir(parser)


def run(root: Path, args: Namespace) -> Outcome:
    from ..cache import ReviewCache
    from ..errors import plural
    from ..forget import keys_to_forget
    from ..project import Project
    from ..settings import settings_for

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
    return Outcome(
        [
            f"Forgot {plural(dropped, 'cached review')} of {', '.join(args.targets)}; the next "
            "draft or refresh asks the model for them again."
        ]
    )
