"""Command line: ``python -m pipeline <command>``. Errors become one message here, and nowhere else."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .draft import draft
from .errors import VerdictsError, redact
from .settings import load_settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline",
        description="Draft AI-tool comparison pages from a panel of four reviewer personas.",
        epilog="Settings: flag > VERDICTS_* environment variable > [tool.verdicts] in pyproject.toml > default.",
    )
    parser.add_argument("--root", type=Path, default=None,
                        help="project directory holding tools/, personas/, prompts/ (default: VERDICTS_ROOT or .)")
    parser.add_argument("--debug", action="store_true", default=os.environ.get("VERDICTS_DEBUG") == "1",
                        help="show the traceback of an error (or set VERDICTS_DEBUG=1)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    d = commands.add_parser("draft", help="draft outputs/<a>-vs-<b>.md",
                            description="Draft outputs/<A>-vs-<B>.md from tools/<A>.toml and tools/<B>.toml.")
    d.add_argument("tool_a", metavar="A", help="slug of the first tool (tools/<A>.toml)")
    d.add_argument("tool_b", metavar="B", help="slug of the second tool (tools/<B>.toml)")
    d.add_argument("--backend", choices=["endpoint", "hf", "local"], help="force a backend (VERDICTS_BACKEND)")
    d.add_argument("--model", help="model id or served model name (VERDICTS_MODEL)")
    d.add_argument("--provider", help="Inference Providers provider or policy: auto, fastest, cheapest, "
                   "or a provider name (VERDICTS_PROVIDER)")
    d.add_argument("--concurrency", type=int, help="reviews in flight at once (VERDICTS_CONCURRENCY)")
    d.add_argument("--timeout", type=float, help="seconds per request (VERDICTS_TIMEOUT)")
    d.add_argument("--cache-dir", type=Path, help="response cache directory (VERDICTS_CACHE_DIR)")
    d.add_argument("--force", action="store_true",
                   help="overwrite outputs/<A>-vs-<B>.md even where it differs from the new draft (hand edits)")
    return parser


def run(args: argparse.Namespace) -> int:
    root = (args.root or Path(os.environ.get("VERDICTS_ROOT") or ".")).resolve()
    if args.command == "draft":
        settings = load_settings(root, backend=args.backend, model=args.model, provider=args.provider,
                                 concurrency=args.concurrency, timeout=args.timeout, cache_dir=args.cache_dir)
        result = draft(root, args.tool_a, args.tool_b, settings, force=args.force)
        s = result.stats
        shown = result.path.relative_to(root) if result.path.is_relative_to(root) else result.path
        print(f"Wrote {shown}: {s.requests} requests, {s.cache_hits} cache hits, {s.reasks} re-asks, "
              f"{s.retries} transport retries, {s.prompt_tokens} prompt + {s.completion_tokens} completion "
              f"tokens, {result.seconds:.1f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except VerdictsError as exc:
        if args.debug:
            raise
        print(redact(f"error: {exc.message}"), file=sys.stderr)
        if exc.hint:
            print(redact(f"hint: {exc.hint}"), file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        if args.debug:
            raise
        print(redact(f"error: {exc.filename or ''}: {exc.strerror or exc}"), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: no page written; replies already received are cached", file=sys.stderr)
        return 130
