"""``python -m pipeline draft``: its arguments, and the engine call that answers it."""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path
from typing import Any

from ..errors import Outcome
from . import flags


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "draft",
        help="draft outputs/<a>-vs-<b>.md",
        description="Draft outputs/<A>-vs-<B>.md from tools/<A>.toml and tools/<B>.toml.",
    )
    parser.add_argument("tool_a", metavar="A", help="slug of the first tool (tools/<A>.toml)")
    parser.add_argument("tool_b", metavar="B", help="slug of the second tool (tools/<B>.toml)")
    flags.model(parser)
    flags.requests(parser)
    parser.add_argument(
        "--force", action="store_true", help="overwrite outputs/<A>-vs-<B>.md even where it holds hand edits"
    )
    parser.add_argument(
        "--retry-fallbacks",
        action="store_true",
        help="ask each lens's own model again for the quotes a fallback wrote (they are cached otherwise)",
    )


def run(root: Path, args: Namespace) -> Outcome:
    from ..draft import draft
    from ..errors import REPLY_INVALID, plural
    from ..project import shown
    from ..report import facts_to_check, for_the_editor, run_report
    from ..settings import settings_for

    settings = settings_for(root, args)
    drafted = draft(
        root,
        args.tool_a,
        args.tool_b,
        settings,
        force=args.force,
        retry_fallbacks=args.retry_fallbacks,
        use_cache=not args.no_cache,
    )
    s = drafted.stats
    lines = [
        f"Wrote {shown(drafted.path, root)}: {s.requests} requests, {s.cache_hits} cache hits, "
        f"{s.from_outputs} from outputs/, {s.reasks} "
        f"re-asks, {s.retries} transport retries, {s.prompt_tokens} prompt + {s.completion_tokens} completion "
        f"tokens, {drafted.seconds:.1f} s"
    ]
    if drafted.fallbacks:
        lines.append(f"Written by a fallback, not the lens's own model: {'; '.join(drafted.fallbacks)}")
    if drafted.approved:
        lines.append("Approved quotes carried from other drafts: " + "; ".join(drafted.approved))
    lines += [f"Not carried: {problem}" for problem in drafted.disputed]
    lines += run_report(s, drafted.seconds, settings, drafted.prices) + facts_to_check(drafted.flags)
    lines += for_the_editor(drafted.sameness, drafted.notes)
    if not drafted.missing:
        return Outcome(lines)
    name = drafted.path.stem
    errors = [f"{exc.message}; the page has a placeholder for it" for exc in drafted.missing]
    errors.append(
        f"{plural(len(drafted.missing), 'quote')} missing: `python -m pipeline accept {name} SECTION` "
        f"takes a kept reply as it is; `python -m pipeline refresh {name}` asks again for the missing "
        "ones only"
    )
    return Outcome(lines, REPLY_INVALID, errors)
