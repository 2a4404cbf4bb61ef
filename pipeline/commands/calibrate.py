"""``python -m pipeline calibrate``: its arguments, and the engine call that answers it."""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path
from typing import Any

from ..errors import Outcome


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "calibrate",
        help="how the lens checks judge the labelled quote corpus",
        description="Check every quote of the calibration corpus against the personas and print, "
        "per lens, how many of each label were accepted or refused. Exit 1 when a label "
        "misses its target.",
    )
    parser.add_argument("--corpus", type=Path, default=Path("calibration"), help="the corpus directory")
    parser.add_argument("--misses", type=int, default=10, help="how many misjudged quotes to show")
    parser.add_argument(
        "--stock-phrases",
        action="store_true",
        help="instead: the stock-phrase report of a set of writers' quotes (per lens, phrases of 4+ "
        "words in more than 1 quote in 8, with their quotes), the pairs the sameness check flags, and "
        "their lengths",
    )
    parser.add_argument(
        "--writers",
        type=Path,
        metavar="DIR",
        help="with --stock-phrases: a folder of writers' *.jsonl "
        "files in the corpus's format (default: the corpus's own, <corpus>/corpus)",
    )
    parser.add_argument("--no-pages", action="store_true", help="with --stock-phrases: counts only, not which quotes")


def run(root: Path, args: Namespace) -> Outcome:
    from .. import voices
    from ..calibrate import reference_quotes, report, run, sheets_of
    from ..errors import BAD_INPUT, OK
    from ..load import load_personas

    directory = (root / args.corpus).resolve()
    personas = load_personas(root)
    if args.stock_phrases:  # a set of writers' quotes: its stock phrases, the pairs the check flags, the lengths
        folder = (root / args.writers).resolve() if args.writers else directory / "corpus"
        quotes = voices.read_writers(folder)
        sheets = sheets_of(directory)
        return Outcome(
            [
                *voices.stock_of_writers(quotes, personas, sheets, pages=not args.no_pages),
                *voices.flagged_pairs(quotes, personas, sheets),
                *voices.lengths(quotes, personas),
            ]
        )
    result = run(directory, personas, reference_quotes(root, personas))
    lines = [f"Calibration of personas/ against {directory}:", *report(result, personas, args.misses)]
    labels = directory / voices.LABELS
    if labels.is_file():
        found = voices.agreement(
            voices.read_writers(directory / "corpus"), voices.read_labels(labels), personas, sheets_of(directory)
        )
        lines += ["", *voices.agreement_report(found, args.misses)]
    lines += ["", *voices.lengths(voices.read_writers(directory / "corpus"), personas)]
    return Outcome(lines, BAD_INPUT if result.failing() else OK)  # as `check` says it: the personas need fixing
