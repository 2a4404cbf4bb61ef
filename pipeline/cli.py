"""Command line: ``python -m pipeline <command>``. Errors become one message here, and nowhere else."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import gc
import importlib
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from . import __version__
from .errors import CLOSED_PIPE, INTERRUPTED, NOT_WRITTEN, UNEXPECTED, Outcome, VerdictsError, printable
from .secret import redact


def _model_flags(parser: argparse.ArgumentParser) -> None:
    """Flags that change which model answers, so they change the cache key and what counts as stale."""
    parser.add_argument("--backend", choices=["endpoint", "hf", "local"], help="force a backend (VERDICTS_BACKEND)")
    parser.add_argument("--model", help="model id or served model name (VERDICTS_MODEL)")
    parser.add_argument("--provider", help="Inference Providers provider or policy: auto, fastest, cheapest, "
                        "or a provider name (VERDICTS_PROVIDER)")


def _request_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-cost", type=float, metavar="USD",
                        help="refuse to start above this forecast, stop sending once reached (VERDICTS_MAX_COST)")
    _unknown_prices(parser)
    parser.add_argument("--concurrency", type=int, help="requests in flight per model or server at first; grows "
                        "while replies come back clean, halves on 429 or 503; 1 means one at a time "
                        "(VERDICTS_CONCURRENCY)")
    parser.add_argument("--max-concurrency", type=int, metavar="N",
                        help="the most requests in flight per model or server (VERDICTS_MAX_CONCURRENCY)")
    parser.add_argument("--timeout", type=float, help="seconds per request (VERDICTS_TIMEOUT)")
    parser.add_argument("--cache-dir", type=Path, help="response cache directory (VERDICTS_CACHE_DIR)")
    parser.add_argument("--no-cache", action="store_true",
                        help="send every request, even for reviews the cache holds, and overwrite their entries")


def _unknown_prices(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--allow-unknown-prices", action="store_true", default=None,
                        help="under --max-cost, run even where a model has no known price; the budget then counts "
                        "only the priced requests (VERDICTS_ALLOW_UNKNOWN_PRICES)")


def _drafts(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("drafts", nargs="*", metavar="DRAFT",
                        help="outputs/<a>-vs-<b>.md files or <a>-vs-<b> names (default: every draft in outputs/)")


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

    d = commands.add_parser("draft", help="draft outputs/<a>-vs-<b>.md",
                            description="Draft outputs/<A>-vs-<B>.md from tools/<A>.toml and tools/<B>.toml.")
    d.add_argument("tool_a", metavar="A", help="slug of the first tool (tools/<A>.toml)")
    d.add_argument("tool_b", metavar="B", help="slug of the second tool (tools/<B>.toml)")
    _model_flags(d)
    _request_flags(d)
    d.add_argument("--force", action="store_true",
                   help="overwrite outputs/<A>-vs-<B>.md even where it holds hand edits")
    d.add_argument("--retry-fallbacks", action="store_true",
                   help="ask each lens's own model again for the quotes a fallback wrote (they are cached otherwise)")

    s = commands.add_parser("stale", help="list stale drafts and why (exit 1 when any is stale)",
                            description="List the drafts whose inputs changed since they were generated, section by "
                            "section, with the reason. Sends nothing. Exit 1 when anything is stale, 0 when not.")
    _drafts(s)
    _model_flags(s)

    r = commands.add_parser("refresh", help="regenerate stale sections, merging them into hand edits",
                            description="Regenerate the stale sections of drafts and merge them three-way into the "
                            "files on disk. Exit 5 when an editor must look: a hand edit and a new generation "
                            "overlap (both are written into the draft between git-style conflict markers), an earlier "
                            "conflict is still unresolved, or a draft could not be refreshed.")
    _drafts(r)
    _model_flags(r)
    _request_flags(r)
    r.add_argument("--pr-body", type=Path, metavar="FILE", help="also write a Markdown summary for a pull request")

    dry = commands.add_parser("prompts", help="dry run: print the prompts, what is cached, and a cost forecast",
                              description="Print the rendered prompts of a draft per lens and tool, which the cache "
                              "already holds, and a forecast of requests, tokens and cost. Sends nothing.")
    dry.add_argument("tool_a", metavar="A", help="slug of the first tool (tools/<A>.toml)")
    dry.add_argument("tool_b", metavar="B", help="slug of the second tool (tools/<B>.toml)")
    _model_flags(dry)
    dry.add_argument("--max-cost", type=float, metavar="USD", help="show whether the forecast fits this budget")
    _unknown_prices(dry)
    dry.add_argument("--cache-dir", type=Path, help="response cache directory (VERDICTS_CACHE_DIR)")

    lg = commands.add_parser("log", help="what the model was asked and said, from the run log",
                             description="Read back the run log (<cache>/runs.jsonl): every request and reply.")
    lg.add_argument("--run", default="last", help="'last' (default), 'all', or a run id")
    lg.add_argument("--draft", help="only the requests for this draft's tools (outputs/<a>-vs-<b>.md or <a>-vs-<b>)")
    lg.add_argument("--failures", action="store_true", help="only requests that failed or were re-asked")
    lg.add_argument("--cache-dir", type=Path, help="response cache directory (VERDICTS_CACHE_DIR)")

    pv = commands.add_parser("preview", help="render a draft as a self-contained HTML page",
                             description="Render a draft (as edited) as an HTML page laid out like the published "
                             "pages. Writes <cache>/preview/<a>-vs-<b>.html unless --out is given.")
    pv.add_argument("draft", metavar="DRAFT", help="outputs/<a>-vs-<b>.md or <a>-vs-<b>")
    pv.add_argument("--out", type=Path, help="where to write the HTML file")
    pv.add_argument("--cache-dir", type=Path, help="response cache directory (VERDICTS_CACHE_DIR)")

    acc = commands.add_parser("accept", help="take a kept reply as it is for a quote left as a placeholder",
                              description="For quotes the model never got right (the draft shows a placeholder), "
                              "take the last reply as it is, then refresh the draft to put it in place.")
    acc.add_argument("draft", metavar="DRAFT", help="outputs/<a>-vs-<b>.md or <a>-vs-<b>")
    acc.add_argument("sections", nargs="+", metavar="SECTION", help="<lens>:<slug>, as the placeholder names it")
    _model_flags(acc)
    _request_flags(acc)
    acc.add_argument("--pr-body", type=Path, metavar="FILE", help=argparse.SUPPRESS)

    cal = commands.add_parser("calibrate", help="how the lens checks judge the labelled quote corpus",
                              description="Check every quote of the calibration corpus against the personas and print, "
                              "per lens, how many of each label were accepted or refused. Exit 1 when a label "
                              "misses its target.")
    cal.add_argument("--corpus", type=Path, default=Path("tests/calibration"), help="the corpus directory")
    cal.add_argument("--misses", type=int, default=10, help="how many misjudged quotes to show")
    cal.add_argument("--stock-phrases", action="store_true",
                     help="instead: the stock-phrase report of a set of writers' quotes (per lens, phrases of 4+ "
                     "words in more than 1 quote in 8, with their quotes), the pairs the sameness check flags, and "
                     "their lengths")
    cal.add_argument("--writers", type=Path, metavar="DIR", help="with --stock-phrases: a folder of writers' *.jsonl "
                     "files in the corpus's format (default: the corpus's own, <corpus>/corpus)")
    cal.add_argument("--no-pages", action="store_true", help="with --stock-phrases: counts only, not which quotes")

    q = commands.add_parser("quotes", help="each tool's quotes across the drafts, and whether the pages agree",
                            description="For a tool (or every tool), each lens's quote on every page that carries it: "
                            "raw (as generated), edited by hand, or divergent (pages show different texts).")
    q.add_argument("tools", nargs="*", metavar="TOOL", help="tool slugs (default: every tool)")
    q.add_argument("--json", action="store_true", help="print JSON for scripts")
    q.add_argument("--sameness", action="store_true",
                   help="instead: per lens, phrases of 4+ words that recur in more than 1 quote in 8 across the "
                   "drafts (with the pages), and the quotes the drafts flag as repeating another's point or as a near "
                   "miss on length")

    f = commands.add_parser("forget", help="drop the cached reviews of drafts or tools",
                            description="Drop the cached reviews of drafts (the reviews their sidecars record) or of "
                            "tools (every cached review of the tool that a draft records or a draft would ask for "
                            "now), so the next draft or refresh asks the model again.")
    f.add_argument("targets", nargs="+", metavar="DRAFT_OR_TOOL",
                   help="outputs/<a>-vs-<b>.md, <a>-vs-<b>, or a tool slug")
    f.add_argument("--cache-dir", type=Path, help="response cache directory (VERDICTS_CACHE_DIR)")

    pr = commands.add_parser("providers", help="who serves each lens's model, at what price, and which one is picked",
                             description="For the model each lens uses, the providers the Inference Providers router "
                             "lists: status, price in and out (USD per million tokens), context length, structured "
                             "output, throughput; * marks the one the configured provider or policy would pick. Reads "
                             "the router's model list at most once a day (kept in the cache directory). Sends no "
                             "review. Exit 2 when the list can be neither read nor found in the cache.")
    _model_flags(pr)
    pr.add_argument("--json", action="store_true", help="print JSON for scripts")
    pr.add_argument("--cache-dir", type=Path, help="response cache directory (VERDICTS_CACHE_DIR)")

    commands.add_parser("check", help="validate the editorial files: sheets, personas, templates, quotes",
                        description="Check the project's editorial files as they are now: every fact sheet and "
                        "persona loads (each bad file is reported), every template renders against them, and every "
                        "quote in a draft under outputs/ still passes its lens's rules. Sends nothing and needs no "
                        "token. Exit 2 when anything fails, 0 when all is good.")

    p = commands.add_parser("pin", help="pin sections of a draft so refresh never touches them",
                            description="Pin (or with --unpin, release) sections of a draft. A section is card:<slug> "
                            "or <lens>:<slug>, e.g. card:ollama or skeptic:ollama.")
    p.add_argument("draft", metavar="DRAFT", help="outputs/<a>-vs-<b>.md or <a>-vs-<b>")
    p.add_argument("sections", nargs="+", metavar="SECTION")
    p.add_argument("--unpin", action="store_true", help="release the sections instead")
    return parser


# Each command lives in the module named here, as ``command(root, args) -> Outcome``; imported only when run.
COMMANDS = {"draft": "draft", "prompts": "dryrun", "log": "runlog", "preview": "preview", "stale": "stale",
            "refresh": "refresh", "pin": "pin", "forget": "forget", "accept": "accept", "calibrate": "calibrate",
            "check": "check", "quotes": "quotes", "providers": "providers"}


def run(args: argparse.Namespace) -> int:
    root = (args.root or Path(os.environ.get("VERDICTS_ROOT") or ".")).resolve()
    module = importlib.import_module(f"{__package__}.{COMMANDS[args.command]}")
    if not gc.isenabled():  # __main__ imported everything without the cycle collector: see there
        gc.freeze()
        gc.enable()
    outcome: Outcome = module.command(root, args)
    if outcome.lines:
        try:
            print(redact("\n".join(outcome.lines)))  # the run report goes to public CI logs too
            sys.stdout.flush()  # now, not at exit, so that a closed pipe is handled here
        except BrokenPipeError:
            _silence()  # the command finished: its status stands (stale's 1 still means "stale drafts found")
    for error in outcome.errors:
        say(f"error: {error}")
    return outcome.exit_code


MAX_LINE = 2000  # an error line repeats user input (a key, a server's words): never without bound


def say(text: str) -> None:
    """A message on stderr, line by line: secrets redacted, control characters shown as escapes, lines capped."""
    for line in printable(text).split("\n"):
        print(line if len(line) <= MAX_LINE else f"{line[:MAX_LINE]}... ({len(line) - MAX_LINE} more characters)",
              file=sys.stderr)


def _silence() -> None:
    """After a reader closed our pipe (``stale | head -1``): say nothing more, and point stdout and stderr at
    /dev/null, so the interpreter's last flush of what is left in their buffers cannot fail (exit 120)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # not a file descriptor (tests capture output in memory)
            os.dup2(devnull, stream.fileno())
    os.close(devnull)


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
            _silence()
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
        _silence()
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


def leave(code: int) -> NoReturn:
    """End ``python -m pipeline`` with ``code`` once everything is out, without the interpreter's teardown.

    Tearing down every module and object of a draft took 60-80 ms, a twentieth of a cold draft, to free memory the
    system takes back anyway. Nothing is lost by skipping it: every file a command writes is closed (and replaced
    atomically) before the command returns, the response cache and its locks are closed, and the workers still
    alive are daemon threads whose replies nobody waits for. As at a normal exit, the ``atexit`` handlers run and
    stdout and stderr are flushed; while a thread that is not a daemon is still at work, it is the normal exit.
    """
    if any(thread.is_alive() and not thread.daemon and thread is not threading.main_thread()
           for thread in threading.enumerate()):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:  # a reader closed the pipe after the command finished: its status stands
            _silence()
        except (OSError, ValueError):
            pass
    os._exit(code)
