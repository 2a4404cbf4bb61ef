"""``python -m pipeline providers``: its arguments, and the engine call that answers it."""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path
from typing import Any

from ..errors import Outcome
from . import flags


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "providers",
        help="who serves each lens's model, at what price, and which one is picked",
        description="For the model each lens uses, the providers the Inference Providers router "
        "lists: status, price in and out (USD per million tokens), context length, structured "
        "output, throughput; * marks the one the configured provider or policy would pick. Reads "
        "the router's model list at most once a day (kept in the cache directory). Sends no "
        "review. Exit 2 when the list can be neither read nor found in the cache.",
    )
    flags.model(parser)
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    flags.cache_dir(parser)


def run(root: Path, args: Namespace) -> Outcome:
    from ..providers import providers
    from ..settings import settings_for

    return providers(root, settings_for(root, args), as_json=args.json)
