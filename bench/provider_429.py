"""Benchmark: a refresh through Inference Providers where one provider of the model answers 429 to everything.

Builds a throwaway project of N generated fact sheets, drafts them in pairs against a fast fake endpoint to seed the
drafts, changes the system prompt so every review is stale, and times one ``python -m pipeline refresh`` (a new
process) through the Inference Providers backend against a fake router: under ``auto`` it hands requests to novita
and together in turn and names the one it picked in ``x-inference-provider``; novita answers every request 429 with
``Retry-After: 1``, together answers each after ``--latency`` seconds; a ``model:provider`` suffix goes to that
provider. Prints the requests each provider got, the wall time and the run report's lines about providers; asserts
nothing. Run it from another checkout (with this file and tests/fakeserver.py copied in) to compare.
Usage: python bench/provider_429.py [--tools 10] [--latency 1]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.catalogue import seed  # noqa: E402
from bench.generated import scratch  # noqa: E402
from tests.fakeserver import FakeChatServer, alternate  # noqa: E402

MODEL = "Qwen/Qwen2.5-72B-Instruct"  # the project's model (pyproject.toml)


def provider(name: str, price: tuple[float, float]) -> dict[str, object]:
    return {"provider": name, "status": "live", "context_length": 32768, "supports_structured_output": True,
            "pricing": {"input": price[0], "output": price[1]}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tools", type=int, default=10)
    parser.add_argument("--latency", type=float, default=1.0, help="seconds per reply from the live provider")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project, slugs, env = scratch(Path(tmp), args.tools)
        drafts = seed(project, slugs, env)
        system = project / "prompts" / "system.j2"
        system.write_text(system.read_text(encoding="utf-8") + "\nWrite for readers who skim.\n", encoding="utf-8")
        with FakeChatServer(delay=args.latency) as router:
            router.models = [{"id": MODEL, "providers": [provider("novita", (0.38, 0.40)),
                                                         provider("together", (1.2, 1.2))]}]
            router.serve = alternate("novita", "together")
            router.provider_status = {"novita": 429}
            env.update(HF_TOKEN="hf_benchTOKENnotARealOne0000000000", VERDICTS_BACKEND="hf",
                       VERDICTS_ROUTER_URL=router.base_url.removesuffix("/v1"))
            began = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "pipeline", "--root", str(project), "refresh"],
                                  env=env, capture_output=True, text=True, cwd=ROOT)
            wall = time.perf_counter() - began
            per_provider = Counter(request["provider"] for request in router.history)
            sent_as = Counter(request["json"]["model"] for request in router.history)
        stale = 4 * args.tools
        print(f"refresh of {drafts} drafts, {stale} stale reviews, through a fake router: novita answers 429 "
              f"(Retry-After: 1) to everything, together answers in {args.latency:g} s")
        print(f"  wall {wall:.2f} s, exit {done.returncode}, requests {sum(per_provider.values())}: "
              + ", ".join(f"{name} {count}" for name, count in sorted(per_provider.items())))
        print("  sent as: " + ", ".join(f"{model} {count}" for model, count in sorted(sent_as.items())))
        keep = ("Refreshed", "Run report", "  hf ", "  served by", "    Qwen", "  skipped", "  concurrency", "    hf ",
                "Quotes not served", "missing")
        print("\n".join("  | " + line for line in done.stdout.splitlines() if line.startswith(keep)))
        errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        print("\n".join("  | " + line[:300] for line in errors))


if __name__ == "__main__":
    main()
