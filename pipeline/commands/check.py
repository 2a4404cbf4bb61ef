"""``python -m pipeline check``: its arguments, and the engine call that answers it."""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path
from typing import Any

from ..errors import Outcome


def add_parser(commands: Any) -> None:
    commands.add_parser(
        "check",
        help="validate the editorial files: sheets, personas, templates, quotes",
        description="Check the project's editorial files as they are now: every fact sheet and "
        "persona loads (each bad file is reported), every template renders against them, and every "
        "quote in a draft under outputs/ still passes its lens's rules. Sends nothing and needs no "
        "token. Exit 2 when anything fails, 0 when all is good.",
    )


def run(root: Path, args: Namespace) -> Outcome:
    from ..check import calibration, check_draft, load_everything, render_everything
    from ..errors import BAD_INPUT, OK, STALE, plural
    from ..project import Project

    problems: list[str] = []
    settings, sheets, personas = load_everything(root, problems)
    sheet_files = len(list((root / "tools").glob("*.toml")))
    if settings is None or problems:  # rendering and quotes need every file to load
        counts = f"{plural(sheet_files, 'fact sheet')}, {plural(personas, 'persona')}"
        return Outcome(
            [
                *problems,
                f"{counts}: {plural(len(problems), 'problem')}; templates and drafts are checked once every file loads",
            ],
            BAD_INPUT,
        )
    project = Project(root, settings, env={})
    problems += render_everything(project, sheets)
    drafts = project.all_drafts()
    unchecked = 0
    unpublishable: list[str] = []
    for path in drafts:
        found = check_draft(project, path)
        problems += found.problems
        unpublishable += found.unpublishable
        unchecked += not found.has_record
    problems += calibration(project)
    counts = f"{plural(sheet_files, 'fact sheet')}, {plural(personas, 'persona')}, {plural(len(drafts), 'draft')}"
    note = (
        f" ({plural(unchecked, 'draft')} without a provenance sidecar, so their quotes were not checked)"
        if unchecked
        else ""
    )
    if problems or unpublishable:
        # Not publishable yet is what ``stale`` exits 1 for; a file that breaks the rules is bad input (2).
        tally = "; ".join(
            text
            for text in (
                plural(len(problems), "problem") if problems else "",
                f"{len(unpublishable)} not publishable as it stands" if unpublishable else "",
            )
            if text
        )
        return Outcome([*problems, *unpublishable, f"{counts}: {tally}{note}"], BAD_INPUT if problems else STALE)
    return Outcome([f"{counts}: all good{note}"], OK)
