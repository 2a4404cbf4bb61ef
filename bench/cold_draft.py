"""Benchmark: wall time of a cold and a warm draft against the fake server with a fixed latency per reply.

Prints figures per latency L (medians of --runs); the target is a cold draft under 1.25 x L + process start,
where process start is the time from spawning the draft to its first request reaching the server.
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
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakeserver import FakeChatServer  # noqa: E402


@dataclass
class Cold:
    wall: float  # spawn to exit
    start: float  # spawn to the first request reaching the server: imports, loading, rendering, client
    wait: float  # first request to the last reply
    tail: float  # last reply to exit: the page, its sidecar, the report, shutdown


def draft_once(project: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pipeline", "--root", str(project), "draft", "hf-inference-providers",
                    "mistral-3-small"], env=env, check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - started


def measure(latency: float, runs: int) -> tuple[list[Cold], list[float], list[float], int, int]:
    cold: list[Cold] = []
    warm, helps = [], []
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
                before, replied = len(server.history), len(server.replied)
                spawned = time.perf_counter()
                wall = draft_once(project, env)
                ended = spawned + wall
                requests = len(server.history) - before
                first = min(r["at"] for r in server.history[before:])
                last = max(server.replied[replied:])
                cold.append(Cold(wall, first - spawned, last - first, ended - last))
                warm.append(draft_once(project, env))
                assert len(server.history) - before == requests, "a warm draft sent a request"
                began = time.perf_counter()
                subprocess.run([sys.executable, "-m", "pipeline", "--help"], check=True, capture_output=True,
                               cwd=ROOT)
                helps.append(time.perf_counter() - began)
        return cold, warm, helps, requests, server.max_in_flight


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latencies", default="0.5,1,2,4", help="seconds per reply, comma-separated")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    # "Process start" is the draft process's own start: spawn to its first request on the wire. The target then
    # says the requests overlap (8 replies cost about one L) and that what follows the last reply is small.
    print("latency L  requests  in flight  cold draft = start + wait + tail  target 1.25L+start  warm draft  --help")
    for latency in (float(value) for value in args.latencies.split(",")):
        cold, warm, helps, requests, in_flight = measure(latency, args.runs)
        wall, start = statistics.median(c.wall for c in cold), statistics.median(c.start for c in cold)
        wait, tail = statistics.median(c.wait for c in cold), statistics.median(c.tail for c in cold)
        target = 1.25 * latency + start
        print(f"{latency:8.2f} s  {requests:8d}  {in_flight:9d}  {wall:6.2f} s = {start:.2f} + {wait:.2f} + "
              f"{tail:.2f}  {target:10.2f} s {'met' if wall < target else 'MISSED'}  "
              f"{statistics.median(warm):8.2f} s  {statistics.median(helps):4.2f} s")


if __name__ == "__main__":
    main()
