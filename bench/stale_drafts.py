"""Benchmark: `python -m pipeline stale` over many drafts (default 1,000), fresh and after one fact sheet changes.

Builds a throwaway project with enough generated fact sheets for the pairs, drafts every pair against the fake
server (4 x T requests in all, then cache hits), and times the stale check as an editor runs it: a new process.
Prints figures; it asserts nothing. Usage: python bench/stale_drafts.py [--drafts 1000] [--runs 3]
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.cli import main as cli  # noqa: E402
from tests.fakeserver import FakeChatServer  # noqa: E402


def make_project(directory: Path, tools: int) -> list[str]:
    for name in ("personas", "prompts", "pyproject.toml"):
        source = ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, directory / name)
    sample = (ROOT / "tools" / "mistral-3-small.toml").read_text(encoding="utf-8")
    (directory / "tools").mkdir()
    slugs = [f"tool-{n:03d}" for n in range(tools)]
    for n, slug in enumerate(slugs):
        text = sample.replace('name = "Mistral 3 Small (24B)"', f'name = "Bench Tool {n}"')
        (directory / "tools" / f"{slug}.toml").write_text(text, encoding="utf-8")
    return slugs


def timed_stale(project: Path, env: dict[str, str]) -> tuple[float, int, str]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pipeline", "--root", str(project), "stale"], env=env,
                          capture_output=True, text=True, cwd=ROOT)
    return time.perf_counter() - started, done.returncode, done.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drafts", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    tools = math.ceil((1 + math.sqrt(1 + 8 * args.drafts)) / 2)  # the fewest tools with enough pairs
    with tempfile.TemporaryDirectory() as tmp, FakeChatServer() as server:
        project = Path(tmp) / "project"
        project.mkdir()
        slugs = make_project(project, tools)
        env = {**os.environ, "VERDICTS_BASE_URL": server.base_url, "VERDICTS_CACHE_DIR": str(Path(tmp) / "cache"),
               "HF_HUB_DISABLE_TELEMETRY": "1"}
        os.environ.update(env)
        pairs = list(itertools.combinations(slugs, 2))[: args.drafts]
        started = time.perf_counter()
        with open(os.devnull, "w") as quiet:
            stdout, stderr = sys.stdout, sys.stderr
            sys.stdout = sys.stderr = quiet
            try:
                codes = [cli(["--root", str(project), "draft", a, b]) for a, b in pairs]
            finally:
                sys.stdout, sys.stderr = stdout, stderr
        assert set(codes) == {0}, "a draft failed"
        print(f"drafted {len(pairs)} comparisons of {tools} tools in {time.perf_counter() - started:.1f} s: "
              f"{len(server.history)} requests (4 x {tools} = {4 * tools})")

        fresh = [timed_stale(project, env) for _ in range(args.runs)]
        print(f"stale, nothing stale:  median {statistics.median(t for t, _, _ in fresh):.2f} s "
              f"(exit {fresh[0][1]}: {fresh[0][2]})")
        sheet = project / "tools" / f"{slugs[0]}.toml"
        sheet.write_text(sheet.read_text().replace('entry = "Free"', 'entry = "$1 / M tokens"'), encoding="utf-8")
        changed = [timed_stale(project, env) for _ in range(args.runs)]
        print(f"stale, one tool changed: median {statistics.median(t for t, _, _ in changed):.2f} s "
              f"(exit {changed[0][1]}: {changed[0][2]})")
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pipeline", "--help"], env=env, capture_output=True, cwd=ROOT)
        print(f"process start (python -m pipeline --help): {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()
