"""``python -m pipeline log``: its arguments, and the engine call that answers it."""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path
from typing import Any

from ..errors import Outcome
from . import flags


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "log",
        help="what the model was asked and said, from the run log",
        description="Read back the run log (<cache>/runs.jsonl): every request and reply.",
    )
    parser.add_argument("--run", default="last", help="'last' (default), 'all', or a run id")
    parser.add_argument(
        "--draft", help="only the requests for this draft's tools (outputs/<a>-vs-<b>.md or <a>-vs-<b>)"
    )
    parser.add_argument("--failures", action="store_true", help="only requests that failed or were re-asked")
    flags.cache_dir(parser)


def run(root: Path, args: Namespace) -> Outcome:
    from ..errors import InputError, clip
    from ..runlog import draft_name, log_path, read_runs, select, show
    from ..settings import settings_for

    path = log_path(settings_for(root, args).cache_dir)
    entries = read_runs(path.parent)
    if args.run not in ("last", "all"):
        runs = [e["run"] for e in entries if e.get("type") == "run"]
        if args.run not in runs:
            known = f"the last runs are {', '.join(runs[-5:])}" if runs else "it has no runs"
            raise InputError(
                "command line",
                "--run",
                f"no run {clip(repr(args.run))} in {path}: {known}",
                hint="`python -m pipeline log --run all` shows every run.",
            )
    draft = draft_name(args.draft) if args.draft else None
    entries = select(entries, args.run, draft, args.failures)
    return Outcome([show(entries) if entries else "The run log has nothing that matches."])
