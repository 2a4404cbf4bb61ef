"""Benchmark: wall time of a cold and a warm draft against the fake server with a fixed latency per reply.

Prints figures; it asserts nothing. Usage: python bench/cold_draft.py [--latency 2] [--runs 3]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=2.0, help="seconds the fake server takes per reply")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    cold, warm, start = [], [], []
    with FakeChatServer(delay=args.latency) as server:
        for _ in range(args.runs):
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
                assert len(server.history) - before == requests
                began = time.perf_counter()
                subprocess.run([sys.executable, "-m", "pipeline", "--help"], check=True, capture_output=True,
                               cwd=ROOT)
                start.append(time.perf_counter() - began)
    print(f"latency per reply       {args.latency:.2f} s")
    print(f"requests per cold draft {requests} (max in flight {server.max_in_flight})")
    print(f"cold draft wall time    median {statistics.median(cold):.2f} s  (runs: "
          + ", ".join(f"{t:.2f}" for t in cold) + ")")
    print(f"warm draft wall time    median {statistics.median(warm):.2f} s")
    print(f"process start (--help)  median {statistics.median(start):.2f} s")


if __name__ == "__main__":
    main()
