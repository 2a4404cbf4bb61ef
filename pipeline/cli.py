"""Command line: ``python -m pipeline <command>``. Errors become one message here, and nowhere else."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import __version__
from .commands import COMMANDS
from .errors import CLOSED_PIPE, INTERRUPTED, NOT_WRITTEN, UNEXPECTED, Outcome, VerdictsError, printable
from .secret import redact
from .startup import silence, started


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline",
        description="Draft AI-tool comparison pages from a panel of reviewer personas.",
        epilog="Settings: flag > VERDICTS_* environment variable > [tool.verdicts] in pyproject.toml > default.",
    )
    parser.add_argument("--root", type=Path, default=None,
                        help="project directory holding tools/, personas/, prompts/ (default: VERDICTS_ROOT or .)")
    parser.add_argument("--debug", action="store_true", default=os.environ.get("VERDICTS_DEBUG") == "1",
                        help="show the traceback of an error (or set VERDICTS_DEBUG=1)")
    parser.add_argument("--version", action="version", version=f"verdicts {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        command_module(name).add_parser(commands)
    return parser


def command_module(name: str) -> Any:
    """The module of ``pipeline.commands`` that declares and runs the command ``name``."""
    return importlib.import_module(f"{__package__}.commands.{COMMANDS[name]}")


def run(args: argparse.Namespace) -> int:
    root = (args.root or Path(os.environ.get("VERDICTS_ROOT") or ".")).resolve()
    module = command_module(args.command)
    started()  # the command's modules are in (pipeline.startup)
    outcome: Outcome = module.run(root, args)
    if outcome.lines:
        try:
            print(redact("\n".join(outcome.lines)))  # the run report goes to public CI logs too
            sys.stdout.flush()  # now, not at exit, so that a closed pipe is handled here
        except BrokenPipeError:
            silence()  # the command finished: its status stands (stale's 1 still means "stale drafts found")
    for error in outcome.errors:
        say(f"error: {error}")
    return outcome.exit_code


MAX_LINE = 2000  # an error line repeats user input (a key, a server's words): never without bound


def say(text: str) -> None:
    """A message on stderr, line by line: secrets redacted, control characters shown as escapes, lines capped."""
    for line in printable(text).split("\n"):
        print(line if len(line) <= MAX_LINE else f"{line[:MAX_LINE]}... ({len(line) - MAX_LINE} more characters)",
              file=sys.stderr)


def _interrupt_handler() -> tuple[Callable[[int, object], None], Callable[[], bool]]:
    """A handler for Ctrl-C and SIGTERM (CI cancelling a job), and a way to ask whether it fired.

    The first signal ends a run like Ctrl-C, cleanly: KeyboardInterrupt, replies on their way get a moment to be
    cached, exit 130. A second one, while that happens, ends the process at once, quietly and with the same status.
    """
    fired = False

    def handle(signum: int, frame: object) -> None:
        nonlocal fired
        if fired:
            with contextlib.suppress(OSError):
                os.write(2, b"interrupted again: stopped at once\n")
            os._exit(INTERRUPTED)
        fired = True
        raise KeyboardInterrupt

    return handle, lambda: fired


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit:  # --help, --version or a usage error, printed by argparse: `--help | head` ends quietly
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            silence()
        raise
    if threading.current_thread() is not threading.main_thread():
        return _main(args)
    handle, fired = _interrupt_handler()
    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return _main(args)
    finally:
        if not fired():  # once interrupted, the process is ending: a second signal still must not print a traceback
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _main(args: argparse.Namespace) -> int:
    try:
        return run(args)
    except BrokenPipeError:
        # A pipe closed while the command ran (``draft 2>&1 | head -3``): the reader wanted no more, so no
        # message, but the command did not finish, so neither its status nor 0. 141 is 128 + SIGPIPE, what a
        # shell reports for a program that the closed pipe stopped.
        silence()
        return CLOSED_PIPE
    except VerdictsError as exc:
        if args.debug:
            say(traceback.format_exc().rstrip())
        say(f"error: {exc.message}")
        if exc.hint:
            say(f"hint: {exc.hint}")
        return exc.exit_code
    except OSError as exc:
        if args.debug:
            say(traceback.format_exc().rstrip())
        say(f"error: {exc.filename or ''}: {exc.strerror or exc}")
        return NOT_WRITTEN
    except Exception as exc:  # our bug, not the input's: the traceback helps, printed like every message
        say(traceback.format_exc().rstrip())
        say(f"error: unexpected {type(exc).__name__}: a bug in verdicts; please report it with the lines above")
        return UNEXPECTED
    except KeyboardInterrupt:
        print("interrupted: the page being drafted was not written; replies already received are cached, so "
              "running the same command again asks only for the rest", file=sys.stderr)
        return INTERRUPTED
