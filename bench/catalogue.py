"""Benchmark: one refresh of a whole catalogue after a prompt change, against a provider with a concurrency limit.

Builds a throwaway project of N generated fact sheets, drafts them in pairs (N/2 drafts, 4 x N reviews) against a
fast fake server to seed the cache and the sidecars, then changes the system prompt, so every review of every draft
is stale, and times one ``python -m pipeline refresh`` (a new process, as CI runs it) against a fake provider that
takes ``--limit`` requests at once (a request past it is answered 429 with Retry-After: 1) and answers each after
``--latency`` seconds. Prints figures; asserts nothing.
Usage: python bench/catalogue.py [--tools 50] [--limit 32] [--latency 1] [--concurrency N] [--max-concurrency N]
"""

from __future__ import annotations

import argparse
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.generated import scratch  # noqa: E402
from pipeline.cli import main as cli  # noqa: E402
from tests.fakeserver import FakeChatServer  # noqa: E402


def seed(project: Path, slugs: list[str], env: dict[str, str]) -> int:
    """Draft every pair in this process, quietly, against a fast server: the catalogue as CI finds it."""
    with FakeChatServer() as fast:
        os.environ.update({**env, "VERDICTS_BASE_URL": fast.base_url})
        with open(os.devnull, "w") as quiet:
            stdout, stderr = sys.stdout, sys.stderr
            sys.stdout = sys.stderr = quiet
            try:
                codes = [cli(["--root", str(project), "draft", a, b]) for a, b in zip(slugs[::2], slugs[1::2],
                                                                                      strict=False)]
            finally:
                sys.stdout, sys.stderr = stdout, stderr
        assert set(codes) == {0}, "a draft failed"
        return len(codes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tools", type=int, default=50)
    parser.add_argument("--limit", type=int, default=32, help="requests the provider takes at once")
    parser.add_argument("--latency", type=float, default=1.0, help="seconds per reply")
    parser.add_argument("--concurrency", type=int, default=None, help="default: the project's setting")
    parser.add_argument("--max-concurrency", type=int, default=None, help="default: the project's setting")
    parser.add_argument("--timeline", action="store_true", help="print when the requests arrived")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project, slugs, env = scratch(Path(tmp), args.tools)
        started = time.perf_counter()
        drafts = seed(project, slugs, env)
        print(f"seeded {drafts} drafts of {args.tools} tools in {time.perf_counter() - started:.1f} s")
        system = project / "prompts" / "system.j2"
        system.write_text(system.read_text(encoding="utf-8") + "\nWrite for readers who skim.\n", encoding="utf-8")
        flags = [f"--{name.replace('_', '-')}={value}" for name, value in
                 (("concurrency", args.concurrency), ("max_concurrency", args.max_concurrency)) if value is not None]
        with FakeChatServer(delay=args.latency) as provider:
            provider.limit = args.limit
            env["VERDICTS_BASE_URL"] = provider.base_url
            began = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "pipeline", "--root", str(project), "refresh", *flags],
                                  env=env, capture_output=True, text=True, cwd=ROOT)
            wall = time.perf_counter() - began
            requests, overloaded, peak = len(provider.history), provider.overloaded, provider.max_working
            arrivals = [r["at"] - began for r in provider.history]
        report = done.stdout.splitlines()
        failed = re.search(r"^\s+endpoint\s.*$", done.stdout, re.MULTILINE)
        failed_count = failed.group(0).split()[-4] if failed else "?"
        stale = 4 * args.tools
        ideal = math.ceil(stale / args.limit) * args.latency
        print(f"refresh of {drafts} drafts, {stale} stale reviews, provider limit {args.limit}, {args.latency:g} s a "
              f"reply (physical limit about {ideal:.1f} s + start):")
        print(f"  wall {wall:.2f} s, exit {done.returncode}, requests {requests} ({overloaded} answered 429), "
              f"peak in flight {peak}, failed {failed_count}")
        print("\n".join(line for line in report if "concurrency" in line or line.startswith("    endpoint")
                        or line.startswith("Refreshed")))
        if args.timeline and arrivals:
            buckets = [0] * (int(max(arrivals) * 2) + 1)
            for at in arrivals:
                buckets[int(at * 2)] += 1
            print("  requests arriving per 0.5 s: " + " ".join(map(str, buckets)))
            print(f"  first request at {min(arrivals):.2f} s, last at {max(arrivals):.2f} s")
        if done.returncode != 0:
            print(done.stderr[-2000:])


if __name__ == "__main__":
    main()
