"""What a command imports before its first request: only what sending needs (the page's merge and library, the
preview's Markdown parser, the local backend and its model runtime come later, or never)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

LATER = ("pipeline.merge", "pipeline.library", "pipeline.quotes", "pipeline.report", "pipeline.preview",
         "pipeline.backends.local", "markdown_it", "llama_cpp")


def test_draft_imports_nothing_only_the_page_needs_before_sending() -> None:
    code = ("import sys, pipeline.cli, pipeline.draft; "
            f"print(sorted(name for name in {LATER!r} if name in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.strip() == "[]", done.stdout


def test_a_drafted_page_its_record_and_its_cache_are_whole_when_the_process_has_ended(project, fake, tmp_path) -> None:
    """``python -m pipeline`` skips the interpreter's teardown (startup.leave): what it wrote is complete anyway, the
    exit status and the report stand, and a second process finds every review in the cache."""
    import json
    import os

    from pipeline.provenance import sidecar_path

    env = {**os.environ, "VERDICTS_CACHE_DIR": str(tmp_path / "cache")}
    command = [sys.executable, "-m", "pipeline", "--root", str(project), "draft", "hf-inference-providers",
               "mistral-3-small"]
    first = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
    assert first.returncode == 0, first.stderr
    assert "Wrote outputs/hf-inference-providers-vs-mistral-3-small.md: 8 requests" in first.stdout
    page = project / "outputs" / "hf-inference-providers-vs-mistral-3-small.md"
    assert page.read_text(encoding="utf-8").endswith("\n")
    assert json.loads(sidecar_path(page).read_text(encoding="utf-8"))["sections"], "the sidecar is whole"
    log = (tmp_path / "cache" / "runs.jsonl").read_text(encoding="utf-8").splitlines()
    assert '"type": "end"' in log[-1] and '"outcome": "ok"' in log[-1], log[-1]
    again = subprocess.run([*command, "--force"], capture_output=True, text=True, cwd=ROOT, env=env)
    assert again.returncode == 0 and ": 0 requests, 8 cache hits" in again.stdout, again.stdout + again.stderr


def test_leaving_runs_the_exit_handlers_and_waits_for_a_thread_still_at_work(tmp_path) -> None:
    """What a normal exit does and a skipped teardown must still do: atexit handlers run, output is flushed, and a
    thread that is not a daemon finishes its work before the process ends."""
    marks = tmp_path / "marks"
    code = f"""
import atexit, sys, threading, time
from pipeline.startup import leave
atexit.register(lambda: open({str(marks)!r}, "a").write("atexit\\n"))
def late():
    time.sleep(0.3)
    open({str(marks)!r}, "a").write("thread\\n")
threading.Thread(target=late).start()
sys.stdout.write("unflushed")
leave(3)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 3 and done.stdout == "unflushed", (done.returncode, done.stdout, done.stderr)
    assert marks.read_text().splitlines() == ["thread", "atexit"]
    quick = subprocess.run([sys.executable, "-c", code.replace("threading.Thread(target=late).start()", "")],
                           capture_output=True, text=True, cwd=ROOT)
    assert quick.returncode == 3 and quick.stdout == "unflushed" and marks.read_text().count("atexit") == 2
