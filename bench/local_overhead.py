"""Benchmark: tokens per second of the local backend through the pipeline, beside a bare llama_cpp call.

Same model, same prompt, same settings, model loaded once for both; prints figures, asserts nothing.
Usage: python bench/local_overhead.py MODEL.gguf [--runs 3] [--max-tokens 256]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.backends.local import LocalBackend  # noqa: E402
from pipeline.cache import ReviewCache  # noqa: E402
from pipeline.errors import GaveUpOnReply  # noqa: E402
from pipeline.generate import Reviewer  # noqa: E402
from pipeline.progress import Progress  # noqa: E402
from pipeline.project import Project  # noqa: E402
from pipeline.review import REPLY_SCHEMA  # noqa: E402
from pipeline.settings import load_settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=256)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(ROOT, env={}, local_model=str(args.model), max_tokens=args.max_tokens,
                                 temperature=0.0, reask_attempts=0, cache_dir=Path(tmp))
        backend = LocalBackend(settings)
        project = Project(ROOT, settings, env={"VERDICTS_BACKEND": "local"})
        job = project.plan(["mistral-4b-edge"])[0]
        llama = backend._load()  # load once, outside both timings
        bare, piped = [], []
        for run in range(args.runs):
            llama.reset()
            started = time.perf_counter()
            out = llama.create_chat_completion(messages=job.messages, temperature=0.0, max_tokens=args.max_tokens,
                                               response_format={"type": "json_object", "schema": REPLY_SCHEMA})
            bare.append(out["usage"]["completion_tokens"] / (time.perf_counter() - started))

            llama.reset()
            cache = ReviewCache(Path(tmp) / f"run{run}")  # cold: every run generates
            reviewer = Reviewer(ROOT, backend, cache, settings, Progress(open("/dev/null", "w")))  # noqa: SIM115
            started = time.perf_counter()
            with contextlib.suppress(GaveUpOnReply):  # a small model may break the rules; it still generated
                reviewer.review(job)
            piped.append(reviewer.stats.completion_tokens / (time.perf_counter() - started))
            cache.close()
    b, p = statistics.median(bare), statistics.median(piped)
    print(f"model                  {args.model.name}")
    print(f"bare llama_cpp         {b:.1f} tokens/s (runs: {', '.join(f'{x:.1f}' for x in bare)})")
    print(f"through the pipeline   {p:.1f} tokens/s (runs: {', '.join(f'{x:.1f}' for x in piped)})")
    print(f"pipeline overhead      {100 * (b - p) / b:+.1f} %")


if __name__ == "__main__":
    main()
