"""``python -m pipeline prompts``: its arguments, and the engine call that answers it."""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path
from typing import Any

from ..errors import Outcome
from . import flags


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "prompts",
        help="dry run: print the prompts, what is cached, and a cost forecast",
        description="Print the rendered prompts of a draft per lens and tool, which the cache "
        "already holds, and a forecast of requests, tokens and cost. Sends nothing.",
    )
    parser.add_argument("tool_a", metavar="A", help="slug of the first tool (tools/<A>.toml)")
    parser.add_argument("tool_b", metavar="B", help="slug of the second tool (tools/<B>.toml)")
    flags.model(parser)
    parser.add_argument("--max-cost", type=float, metavar="USD", help="show whether the forecast fits this budget")
    flags.unknown_prices(parser)
    flags.cache_dir(parser)


def run(root: Path, args: Namespace) -> Outcome:
    from ..dryrun import dry_run
    from ..settings import settings_for

    return Outcome(dry_run(root, args.tool_a, args.tool_b, settings_for(root, args)))
