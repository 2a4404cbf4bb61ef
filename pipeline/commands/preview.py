"""``python -m pipeline preview``: its arguments, and the engine call that answers it."""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path
from typing import Any

from ..errors import Outcome
from . import flags


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "preview",
        help="render a draft as a self-contained HTML page",
        description="Render a draft (as edited) as an HTML page laid out like the published "
        "pages. Writes <cache>/preview/<a>-vs-<b>.html unless --out is given.",
    )
    parser.add_argument("draft", metavar="DRAFT", help="outputs/<a>-vs-<b>.md or <a>-vs-<b>")
    parser.add_argument("--out", type=Path, help="where to write the HTML file")
    flags.cache_dir(parser)


def run(root: Path, args: Namespace) -> Outcome:
    from ..preview import is_stream, preview
    from ..project import Project
    from ..settings import settings_for
    from ..write import not_editorial, write_atomic

    settings = settings_for(root, args)
    path = Project(root, settings).find_draft(args.draft)
    out = (
        not_editorial(root, root / args.out, "--out")
        if args.out
        else (settings.cache_dir / "preview" / f"{path.stem}.html").resolve()
    )
    page = preview(root, path)
    if args.out and is_stream(root / args.out):  # an atomic write would put a file in its place, or fail (/proc)
        with open(root / args.out, "w", encoding="utf-8") as handle:
            handle.write(page)
        return Outcome([])  # the page may be going to stdout: nothing else is printed there
    write_atomic(out, page)
    return Outcome([f"Wrote {out} (open file://{out})"])
