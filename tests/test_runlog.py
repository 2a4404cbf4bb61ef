"""The run log stays bounded: a run that finds it past `run_log_mb` cuts it back to the newest whole runs, and
`python -m pipeline log` still shows those, each with all its lines, even with two processes appending at once."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pipeline.runlog import RunLog, log_path
from tests.fakeserver import FakeChatServer

A, B = "hf-inference-providers", "mistral-3-small"
ROOT = Path(__file__).resolve().parent.parent


def shown_runs(text: str) -> list[tuple[str, int, bool]]:
    """Each run `log` shows: its id, how many requests it shows, and whether its closing line is there."""
    runs: list[tuple[str, int, bool]] = []
    for block in re.split(r"^(?=== run )", text, flags=re.MULTILINE):
        if block.startswith("== run "):
            run = block.split()[2]
            runs.append((run, block.count("\n-- "), f"== end of run {run}:" in block))
    return runs


def test_drafts_keep_the_run_log_under_its_limit_and_log_shows_the_newest_runs_whole(
        fake: FakeChatServer, cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = log_path(tmp_path / "cache")
    assert cli("draft", A, B).code == 0
    one_run = path.stat().st_size
    limit = 3 * one_run
    monkeypatch.setenv("VERDICTS_RUN_LOG_MB", str(limit / 1_000_000))
    newest: list[str] = []
    for _ in range(10):
        assert cli("draft", A, B, "--force", "--no-cache").code == 0
        assert path.stat().st_size <= limit + 1.1 * one_run, "a run cuts the log back before it starts"
        last = shown_runs(cli("log").out)
        assert len(last) == 1 and last[0][1:] == (8, True), "the run just made is shown, whole"
        newest.append(last[0][0])
    assert len(set(newest)) == 10
    everything = cli("log", "--run", "all")
    assert everything.code == 0, everything.err
    runs = shown_runs(everything.out)
    assert 2 <= len(runs) < 6, "the log keeps a few runs, not all eleven"
    assert [run for run, _, _ in runs] == newest[-len(runs):], "the newest runs, in order"
    assert all((requests, ended) == (8, True) for _, requests, ended in runs), "each run whole"
    by_draft = shown_runs(cli("log", "--run", "all", "--draft", f"{A}-vs-{B}").out)
    assert by_draft == runs


WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from pipeline.runlog import RunLog

    cache, name, runs, limit_mb = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    (cache / f"ready-{name}").touch()
    while not (cache / "go").exists():  # both processes start appending together
        time.sleep(0.01)
    for i in range(runs):
        log = RunLog(cache, "draft", [f"{name}{i}-vs-other"], "endpoint", limit_mb)
        for lens in ("buyer", "builder", "skeptic", "operator"):
            log.write(type="request", lens=lens, tool=f"{name}{i}", attempt=1, model="m", ok=True,
                      messages=[{"role": "user", "content": f"{name} {i} {lens} " * 40}], reply="fine " * 20)
        log.write(type="end", outcome="ok")
""")


def test_two_processes_appending_many_runs_keep_the_log_bounded_and_every_shown_run_whole(
        cli, tmp_path: Path) -> None:
    cache, runs, limit = tmp_path / "cache", 400, 60_000
    cache.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(cache), name, str(runs), str(limit / 1e6)],
                                env=env, cwd=ROOT) for name in ("p", "q")]
    while not all((cache / f"ready-{name}").exists() for name in ("p", "q")):
        assert all(writer.poll() is None for writer in writers), "a writer ended before it began"
        time.sleep(0.01)
    (cache / "go").touch()
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0]

    path = log_path(cache)
    sizes: dict[str, int] = {}
    for line in path.read_bytes().splitlines(keepends=True):
        run = json.loads(line)["run"]  # every line whole
        sizes[run] = sizes.get(run, 0) + len(line)
    # Checked as each run starts: past it, at most the two runs then under way (one a process) each add a run.
    assert path.stat().st_size <= limit + 2 * max(sizes.values()), f"{path.stat().st_size} bytes for {limit}"
    everything = cli("log", "--run", "all")
    assert everything.code == 0, everything.err
    shown = shown_runs(everything.out)
    assert 8 <= len(shown) < 2 * runs
    assert all(requests == 4 and ended for _, requests, ended in shown), "no run is shown cut"
    last = cli("log").out  # the process that finished last: its last run
    assert re.search(rf"^== run \S+ \(.*\): draft [pq]{runs - 1}-vs-other ", last, re.MULTILINE), last[:300]
    assert [(requests, ended) for _, requests, ended in shown_runs(last)] == [(4, True)]


def test_a_run_longer_than_the_limit_is_kept_whole_until_a_newer_run(cli, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    big = RunLog(cache, "refresh", ["a-vs-b"], "endpoint", 0.01)
    for i in range(40):  # about 40 KB: four times the limit
        big.write(type="request", lens="buyer", tool="a", attempt=i, model="m", ok=True, reply="x" * 1000)
    big.write(type="end", outcome="ok")
    small = RunLog(cache, "draft", ["c-vs-d"], "endpoint", 0.01)
    small.write(type="end", outcome="ok")
    assert [(run, requests) for run, requests, _ in shown_runs(cli("log", "--run", "all").out)] == \
        [(big.run, 40), (small.run, 0)]
    RunLog(cache, "draft", ["e-vs-f"], "endpoint", 0.01).write(type="end", outcome="ok")
    assert big.run not in cli("log", "--run", "all").out
    assert log_path(cache).stat().st_size < 10_000
