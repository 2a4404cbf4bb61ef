"""Benchmark: `python -m pipeline stale` over many drafts (default 10,000), fresh and after one fact sheet changes.

Builds a throwaway project with enough generated fact sheets for the pairs, drafts disjoint pairs with
``python -m pipeline draft`` against the fake server (4 x T requests in all: every review once), then writes the
other pairs' drafts and sidecars as ``draft`` would from those reviews (the same assemble and provenance code,
without a process and a review session per draft), and times the stale check as an editor runs it: a new process.
Prints figures; it asserts nothing. Usage: python bench/stale_drafts.py [--drafts 10000] [--runs 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.generated import make_project  # noqa: E402
from pipeline.cli import main as cli  # noqa: E402
from tests.fakeserver import FakeChatServer  # noqa: E402


def timed_stale(project: Path, env: dict[str, str]) -> tuple[float, int, str]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pipeline", "--root", str(project), "stale"], env=env,
                          capture_output=True, text=True, cwd=ROOT)
    return time.perf_counter() - started, done.returncode, done.stdout.strip().splitlines()[-1]


def write_drafts(project: Path, pairs: list[tuple[str, str]]) -> None:
    """Drafts of ``pairs`` made as ``draft`` makes them, from the reviews the drafts under outputs/ record."""
    from pipeline.assemble import assemble
    from pipeline.project import Project
    from pipeline.provenance import build_record, write_record
    from pipeline.settings import load_settings
    from pipeline.write import write_atomic

    work = Project(project, load_settings(project))
    recorded = {name: section.review(name) for _, record in work.recorded for name, section in record.sections.items()
                if section.key}
    for a, b in pairs:
        path = work.draft_path(a, b)
        if path.exists():
            continue
        tools = work.pair(a, b)
        jobs = work.plan(tools)
        reviews = {job.section: recorded[job.section] for job in jobs}
        page = assemble(project, work.personas, tools, reviews, {})
        write_atomic(path, page.text)
        write_record(path, build_record(work.inputs, tools, {}, page, jobs, reviews, work.environment))


def seed(project: Path, drafts: int, env: dict[str, str]) -> tuple[list[str], int]:
    tools = math.ceil((1 + math.sqrt(1 + 8 * drafts)) / 2)  # the fewest tools with enough pairs
    slugs = make_project(project, tools, width=3)
    os.environ.update(env)
    firsts = list(zip(slugs[::2], slugs[1::2], strict=False)) + ([(slugs[-1], slugs[0])] if tools % 2 else [])
    with open(os.devnull, "w") as quiet:
        stdout, stderr = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = quiet
        try:
            codes = [cli(["--root", str(project), "draft", a, b]) for a, b in firsts]
        finally:
            sys.stdout, sys.stderr = stdout, stderr
    assert set(codes) == {0}, "a draft failed"
    done = {frozenset(pair) for pair in firsts}
    rest = [pair for pair in itertools.combinations(slugs, 2) if frozenset(pair) not in done]
    write_drafts(project, rest[: drafts - len(firsts)])
    return slugs, tools


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drafts", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="build the project here (or reuse the one built there before)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, FakeChatServer() as server:
        base = args.keep or Path(tmp)
        project = base / "project"
        env = {**os.environ, "VERDICTS_BASE_URL": server.base_url, "VERDICTS_CACHE_DIR": str(base / "cache"),
               "HF_HUB_DISABLE_TELEMETRY": "1"}
        started = time.perf_counter()
        if not project.is_dir():
            project.mkdir(parents=True)
            slugs, tools = seed(project, args.drafts, env)
            print(f"made {len(list((project / 'outputs').glob('*.md')))} drafts of {tools} tools in "
                  f"{time.perf_counter() - started:.1f} s: {len(server.history)} requests (4 x {tools} = {4 * tools})")
        slugs = sorted(path.stem for path in (project / "tools").glob("*.toml"))
        print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
        (base / "cache" / "stale-digests.json").unlink(missing_ok=True)
        time.sleep(2.5)  # files written in the last 2 s are not remembered
        first = timed_stale(project, env)
        print(f"stale, first run (no digests remembered yet): {first[0]:.2f} s (exit {first[1]}: {first[2]})")
        fresh = [timed_stale(project, env) for _ in range(args.runs)]
        print(f"stale, nothing stale:  median {statistics.median(t for t, _, _ in fresh):.2f} s "
              f"(exit {fresh[0][1]}: {fresh[0][2]})")
        sheet = project / "tools" / f"{slugs[0]}.toml"
        original = sheet.read_text()
        sheet.write_text(original.replace('entry = "Free"', 'entry = "$1 / M tokens"'), encoding="utf-8")
        changed = [timed_stale(project, env) for _ in range(args.runs)]
        sheet.write_text(original, encoding="utf-8")
        print(f"load average {os.getloadavg()[0]:.2f} at the end")
        print(f"stale, one tool changed: median {statistics.median(t for t, _, _ in changed):.2f} s "
              f"(exit {changed[0][1]}: {changed[0][2]})")
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pipeline", "--help"], env=env, capture_output=True, cwd=ROOT)
        print(f"process start (python -m pipeline --help): {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()
