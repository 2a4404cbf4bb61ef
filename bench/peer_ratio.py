"""Benchmark: a cold draft against a bare asyncio script that sends the same 8 requests: the ratio of wall times.

The peer is what a draft needs at least: a new process that imports huggingface_hub and pydantic, sends the 8
review prompts at once with ``AsyncInferenceClient`` and ``asyncio.gather``, and validates each reply with a
pydantic model. Ours is ``python -m pipeline draft A B`` with an empty cache. Both talk to the same fake server
(``--latency`` seconds a reply), run as new processes, interleaved (the order alternates pair by pair).
Prints each pair and the median ratio; asserts nothing. Usage: python bench/peer_ratio.py [--pairs 7] [--latency 1]
"""

from __future__ import annotations

import argparse
import json
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

A, B = "hf-inference-providers", "mistral-3-small"

PEER = '''
import asyncio, json, sys
from typing import Literal
from huggingface_hub import AsyncInferenceClient
from pydantic import BaseModel

class Reply(BaseModel):
    verdict: Literal["ship", "skip"]
    quote: str

async def main() -> None:
    base_url, model, prompts = sys.argv[1], sys.argv[2], json.load(open(sys.argv[3]))
    client = AsyncInferenceClient(base_url=base_url, api_key="bench", timeout=60)
    outputs = await asyncio.gather(*(client.chat_completion(messages, model=model, temperature=0.7, max_tokens=700)
                                     for messages in prompts))
    replies = [Reply.model_validate_json(output.choices[0].message.content) for output in outputs]
    print(len(replies), "valid replies")

asyncio.run(main())
'''


def project_copy(directory: Path) -> Path:
    for name in ("tools", "personas", "prompts"):
        shutil.copytree(ROOT / name, directory / name)
    shutil.copy(ROOT / "pyproject.toml", directory)
    return directory


def prompts(project: Path, path: Path) -> str:
    """The draft's 8 rendered prompts, for the peer to send as they are; the model they go to."""
    from pipeline.project import Project
    from pipeline.settings import load_settings

    work = Project(project, load_settings(project, env={}), env={"VERDICTS_BASE_URL": "http://unused"})
    jobs = work.plan(work.pair(A, B))
    path.write_text(json.dumps([job.messages for job in jobs]), encoding="utf-8")
    return jobs[0].target.model


def bytecode() -> str:
    """Whether our modules start from bytecode or are compiled from source at every run (PYTHONDONTWRITEBYTECODE
    with no ``make install``): about 40 ms of a cold draft."""
    import importlib.util

    sources = sorted((ROOT / "pipeline").glob("*.py"))
    stale = [path for path in sources if not Path(importlib.util.cache_from_source(str(path))).exists()
             or Path(importlib.util.cache_from_source(str(path))).stat().st_mtime < path.stat().st_mtime]
    return "pipeline byte-compiled" if not stale else f"{len(stale)} of {len(sources)} pipeline modules not " \
        "byte-compiled (compiled from source at each run: `make install` compiles them)"


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--latency", type=float, default=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, FakeChatServer(delay=args.latency) as server:
        base = Path(tmp)
        project = project_copy(base / "project")
        model = prompts(project, base / "prompts.json")
        peer = base / "peer.py"
        peer.write_text(PEER, encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith("VERDICTS_") and k != "HF_TOKEN"}
        env.update(HF_HUB_DISABLE_TELEMETRY="1", VERDICTS_BASE_URL=server.base_url)
        ratios = []
        print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; latency {args.latency:g} s a reply; "
              f"{bytecode()}")
        print("pair  draft (cold)  bare asyncio  ratio")
        for n in range(args.pairs):
            cache = base / f"cache-{n}"
            draft = [sys.executable, "-m", "pipeline", "--root", str(project), "draft", A, B, "--force"]
            bare = [sys.executable, str(peer), server.base_url, model, str(base / "prompts.json")]
            before = len(server.history)
            if n % 2:
                theirs = timed(bare, env)
                ours = timed(draft, {**env, "VERDICTS_CACHE_DIR": str(cache)})
            else:
                ours = timed(draft, {**env, "VERDICTS_CACHE_DIR": str(cache)})
                theirs = timed(bare, env)
            assert len(server.history) - before == 16, "each side sends the 8 requests"
            shutil.rmtree(project / "outputs")  # the next draft is a new page, from an empty cache
            ratios.append(ours / theirs)
            print(f"{n + 1:4d}  {ours:10.2f} s  {theirs:10.2f} s  {ours / theirs:5.3f}")
        print(f"median ratio {statistics.median(ratios):.3f} over {len(ratios)} pairs "
              f"(load average now {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
