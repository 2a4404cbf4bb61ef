"""``python -m pipeline quotes``: its arguments, and the engine call that answers it."""

from __future__ import annotations

import json
from argparse import Namespace
from pathlib import Path
from typing import Any

from ..errors import Outcome


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "quotes",
        help="each tool's quotes across the drafts, and whether the pages agree",
        description="For a tool (or every tool), each lens's quote on every page that carries it: "
        "raw (as generated), edited by hand, or divergent (pages show different texts).",
    )
    parser.add_argument("tools", nargs="*", metavar="TOOL", help="tool slugs (default: every tool)")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser.add_argument(
        "--sameness",
        action="store_true",
        help="instead: per lens, phrases of 4+ words that recur in more than 1 quote in 8 across the "
        "drafts (with the pages), and the quotes the drafts flag as repeating another's point or as a near "
        "miss on length",
    )


def run(root: Path, args: Namespace) -> Outcome:
    from ..errors import BAD_INPUT, OK, InputError
    from ..library import Library
    from ..project import Project
    from ..quotes import collect, describe, sameness
    from ..settings import settings_for

    project = Project(root, settings_for(root, args))
    for slug in args.tools:
        if not project.tool_path(slug).is_file():
            raise InputError("command line", "TOOL", f"{slug!r} has no fact sheet in tools/")
    library = Library.of(project)
    quotes = collect(project, args.tools, library)
    # A page that cannot be read is not left out in silence: what it shows is unknown, so the answer is incomplete.
    errors = [error.message for error in library.unreadable.values()]
    code = BAD_INPUT if errors else OK
    if args.sameness:
        if errors:
            return Outcome([], code, errors)
        return sameness(project, quotes, args.tools, args.json)
    if args.json:
        return Outcome(
            [
                json.dumps(
                    [
                        {
                            "tool": q.tool,
                            "lens": q.lens,
                            "state": q.state,
                            "pages": [
                                {
                                    "page": s.page,
                                    "state": s.state,
                                    "text": s.text,
                                    "approved_in": s.source,
                                    "pinned": s.pinned,
                                    "served_by": s.served_by or None,
                                }
                                for s in q.pages
                            ],
                        }
                        for q in quotes
                    ],
                    indent=2,
                    ensure_ascii=False,
                )
            ],
            code,
            errors,
        )
    lines = []
    for quote in quotes:
        lines.append(f"{quote.tool} / {quote.lens}: {quote.state}")
        for shown in quote.pages:
            lines.append(
                f"  {shown.page} ({describe(shown)}): {shown.text[:100]}" + ("..." if len(shown.text) > 100 else "")
            )
    return Outcome(lines or ["No quotes: no draft under outputs/ carries one."], code, errors)
