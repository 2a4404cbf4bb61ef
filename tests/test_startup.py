"""What a command imports before its first request: only what sending needs (the page's merge and library, the
preview's Markdown parser, the local backend and its model runtime come later, or never)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

LATER = ("pipeline.merge", "pipeline.library", "pipeline.quotes", "pipeline.report", "pipeline.preview",
         "pipeline.local", "markdown_it", "llama_cpp")


def test_draft_imports_nothing_only_the_page_needs_before_sending() -> None:
    code = ("import sys, pipeline.cli, pipeline.draft; "
            f"print(sorted(name for name in {LATER!r} if name in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.strip() == "[]", done.stdout
