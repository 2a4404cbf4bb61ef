"""Benchmark: wall time of a cold and a warm draft against the fake server with a fixed latency per reply.

Prints figures per latency L (medians of --runs); the target is a cold draft under 1.25 x L + process start.
Usage: python bench/cold_draft.py [--latencies 0.5,1,2,4] [--runs 3]
"""

from __future__ import annotations

import argparse
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

from tests.fakeserver import FakeChatServer  # noqa: E402


def timed_draft(project: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pipeline", "--root", str(project), "draft", "hf-inference-providers",
                    "mistral-3-small"], env=env, check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - started


def measure(latency: float, runs: int) -> tuple[list[float], list[float], list[float], int, int]:
    cold, warm, start = [], [], []
    requests = 0
    with FakeChatServer(delay=latency) as server:
        for _ in range(runs):
            with tempfile.TemporaryDirectory() as tmp:
                project = Path(tmp)
                for name in ("tools", "personas", "prompts"):
                    shutil.copytree(ROOT / name, project / name)
                shutil.copy(ROOT / "pyproject.toml", project)
                env = {k: v for k, v in os.environ.items() if not k.startswith("VERDICTS_") and k != "HF_TOKEN"}
                env.update(HF_HUB_DISABLE_TELEMETRY="1", VERDICTS_BASE_URL=server.base_url,
                           VERDICTS_CACHE_DIR=str(project / "cache"))
                before = len(server.history)
                cold.append(timed_draft(project, env))
                requests = len(server.history) - before
                warm.append(timed_draft(project, env))
                assert len(server.history) - before == requests, "a warm draft sent a request"
                began = time.perf_counter()
                subprocess.run([sys.executable, "-m", "pipeline", "--help"], check=True, capture_output=True,
                               cwd=ROOT)
                start.append(time.perf_counter() - began)
        return cold, warm, start, requests, server.max_in_flight


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latencies", default="0.5,1,2,4", help="seconds per reply, comma-separated")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    # Two readings of "process start": `--help` (argparse only), and a warm draft (every import, load, render
    # and write, with no model latency): a cold draft's fixed cost is the second.
    print("latency L  requests  in flight  cold draft  warm draft  --help  1.25L+help  1.25L+warm")
    for latency in (float(value) for value in args.latencies.split(",")):
        cold, warm, start, requests, in_flight = measure(latency, args.runs)
        c, w, h = statistics.median(cold), statistics.median(warm), statistics.median(start)
        print(f"{latency:8.2f} s  {requests:8d}  {in_flight:9d}  {c:8.2f} s  {w:8.2f} s  {h:4.2f} s  "
              f"{1.25 * latency + h:6.2f} {'ok' if c < 1.25 * latency + h else 'over'}  "
              f"{1.25 * latency + w:6.2f} {'ok' if c < 1.25 * latency + w else 'over'}")


if __name__ == "__main__":
    main()
