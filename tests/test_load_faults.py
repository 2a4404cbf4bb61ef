"""A hostile tester's cases, one test each: a writable cache, a trickling server, many processes on one cache, a
huge invalid reply, a server that misreports usage, and signals while paid requests are in flight."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import diskcache
import pytest

from tests.conftest import no_page
from tests.fakeserver import FakeChatServer, Scripted, offbeat

ROOT = Path(__file__).resolve().parent.parent
A, B = "hf-inference-providers", "mistral-3-small"


def pipeline_process(project: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "pipeline", "--root", str(project), *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def child_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), **extra}


def cache_databases() -> list[Path]:
    return sorted(Path(os.environ["VERDICTS_CACHE_DIR"]).glob("**/cache.db"))


class Planted:
    """What someone with write access to the cache directory could leave there: unpickling it writes a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


# 1. The response cache stores data, not code.

def test_cache_holds_data_never_code(fake: FakeChatServer, draft, project: Path, tmp_path: Path) -> None:
    assert draft(A, B).code == 0 and len(fake.history) == 8
    keys: list[str] = []
    for database in cache_databases():
        with diskcache.Cache(str(database.parent)) as cache:
            keys += [key for key in cache.iterkeys() if isinstance(key, str)]
    assert len(keys) == 8
    marker = tmp_path / "code-ran"
    # A planted value under every real key, in the cache as it is now and in the previous version's directory.
    for directory in {database.parent for database in cache_databases()} | {tmp_path / "cache" / "responses"}:
        with diskcache.Cache(str(directory)) as cache:
            for key in keys:
                cache.set(key, Planted(marker))
    (project / "outputs" / f"{A}-vs-{B}.md").unlink()
    again = draft(A, B)
    assert again.code == 0, again.err
    assert not marker.exists(), "a cached value was run as code"
    assert len(fake.history) == 16, "a value that is not our JSON object is a miss, asked again and overwritten"
    assert draft(A, "mistral-4b-edge").code == 0 and len(fake.history) == 20, "the rewritten entries are read back"
    pipeline = ROOT / "pipeline"
    assert not [p.name for p in pipeline.glob("*.py") if "pickle" in p.read_text(encoding="utf-8")]


@pytest.mark.parametrize("damage", ["not a database", "truncated"])
def test_damaged_cache_is_one_clear_error(damage: str, fake: FakeChatServer, draft, project: Path) -> None:
    assert draft(A, B).code == 0
    database, = cache_databases()
    if damage == "not a database":
        database.write_bytes(b"this is not an SQLite file\n" * 200)
    else:
        database.write_bytes(database.read_bytes()[:1500])
    (project / "outputs" / f"{A}-vs-{B}.md").unlink()
    run = draft(A, B)
    assert run.code == 2, run.err
    errors = [line for line in run.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(database.parent) in errors[0], run.err
    assert "delete" in run.err.lower() and "Traceback" not in run.err and "sqlite3" not in run.err
    assert len(fake.history) == 8, "nothing sent"


# 2. The timeout bounds the whole request, not each read.

def test_trickling_server_is_cut_off_at_the_timeout(fake: FakeChatServer, project: Path) -> None:
    fake.trickle = 0.4  # a byte every 0.4 s: no read ever waits 2 s, and a reply takes about eight minutes
    process = pipeline_process(project, child_env(VERDICTS_TIMEOUT="2", VERDICTS_TRANSPORT_ATTEMPTS="1"),
                               "draft", A, B)
    try:
        _, err = process.communicate(timeout=20)
    finally:
        process.kill()
    ended = time.perf_counter()
    first = min(request["at"] for request in fake.history)
    # The request is cut at 2 s (about 2.2 s to exit, measured on a quiet machine); the bound only has to tell
    # a deadline from the eight minutes a trickle would take, without failing on a busy CI machine.
    assert ended - first < 6.0, f"the draft ended {ended - first:.1f} s after its first request"
    assert process.returncode == 3, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and fake.base_url in errors[0] and "2 s" in errors[0], err
    assert "Traceback" not in err and no_page(project)


@pytest.mark.parametrize("timeout", ["inf", "1e300"])
def test_an_unbounded_timeout_is_capped(timeout: str, fake: FakeChatServer, draft,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VERDICTS_TIMEOUT", timeout)
    run = draft(A, B)
    assert run.code == 0 and "Traceback" not in run.err, run.err
    monkeypatch.setenv("VERDICTS_TIMEOUT", "nan")
    run = draft(A, "mistral-4b-edge")
    assert run.code == 2 and "VERDICTS_TIMEOUT" in run.err, run.err


# 3. T tools cost at most 4 x T requests, in any number of processes.

@pytest.mark.slow
def test_twenty_drafts_at_once_send_each_review_once(fake: FakeChatServer, project: Path) -> None:
    for sheet in ("ollama", "vllm", "litellm", "openrouter"):
        shutil.copy(ROOT / "calibration" / "tools" / f"{sheet}.toml", project / "tools")
    tools = sorted(path.stem for path in (project / "tools").glob("*.toml"))
    assert len(tools) == 7
    pairs = list(itertools.combinations(tools, 2))[:20]
    fake.delay = 0.2
    env = child_env()
    processes = [pipeline_process(project, env, "draft", a, b) for a, b in pairs]
    results = [process.communicate(timeout=120) for process in processes]
    assert all(process.returncode == 0 for process in processes), [err for _, err in results if err][:2]
    sent = [(request["json"]["messages"][-1]["content"]) for request in fake.history]
    assert len(fake.history) == 28 == len(set(sent)), f"{len(fake.history)} requests for 28 reviews"


# 4. A huge invalid reply is neither paid for twice nor logged whole.

def test_huge_invalid_reply_is_cut_in_the_reask_and_the_log(fake: FakeChatServer, draft, project: Path) -> None:
    huge = "not json " * 50_000  # 450 KB: under the 512 KB read of an answer (test_hostile_resources.py)
    fake.enqueue(Scripted(content=huge))
    run = draft(A, B, "--concurrency", "1")
    assert run.code == 0, run.err
    reask = fake.history[1]["json"]["messages"]
    assistant = [m["content"] for m in reask if m["role"] == "assistant"]
    assert len(assistant) == 1 and len(assistant[0]) < 5_000 and "characters" in assistant[0]
    assert len(json.dumps(reask)) < 40_000
    log = Path(os.environ["VERDICTS_CACHE_DIR"]) / "runs.jsonl"
    assert log.stat().st_size < 200_000, f"run log is {log.stat().st_size} bytes"
    assert max(len(line) for line in log.read_text(encoding="utf-8").splitlines()) < 60_000


# 5. A budget holds whatever the server says about usage.

@pytest.mark.parametrize("usage", [None, (-80_000_000, 0), (0, 0)], ids=["no usage", "negative", "zero"])
def test_budget_holds_when_the_server_misreports_usage(usage: tuple[int, int] | None, fake: FakeChatServer,
                                                      draft, project: Path) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text(encoding="utf-8").replace(
        '# "Qwen/Qwen2.5-72B-Instruct:together" = [0.00, 0.00]', '"Qwen/Qwen2.5-72B-Instruct" = [10.0, 10.0]'),
        encoding="utf-8")
    fake.usage = usage
    fake.responder = offbeat  # every reply is re-asked: 24 requests if nothing stops them
    run = draft(A, B, "--concurrency", "1", "--max-cost", "0.15")  # the forecast for 8 requests is about $0.11
    assert run.code == 6, run.err
    assert len(fake.history) < 16, f"{len(fake.history)} requests under a $0.15 budget"
    assert "$0.0000" not in run.err + run.out and "$-" not in run.err + run.out


# 6. Signals with paid requests in flight.

def test_signals_with_requests_in_flight_stop_promptly_and_keep_what_arrived(fake: FakeChatServer,
                                                                            project: Path) -> None:
    fake.lens_delay = {"buyer": 30.0, "futurist": 30.0}  # four replies come at once, four would take 30 s
    env = child_env()

    def run_until(sent: int, arrived: int, *signals: int) -> tuple[float, int, str]:
        process = pipeline_process(project, env, "draft", A, B)
        deadline = time.monotonic() + 30
        while (len(fake.history) < sent or len(fake.replied) < arrived) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        start = time.monotonic()
        for index, sig in enumerate(signals):
            if index:
                time.sleep(0.3)
            process.send_signal(sig)
        try:
            _, err = process.communicate(timeout=40)
        finally:
            process.kill()
        return time.monotonic() - start, process.returncode, err

    took, code, err = run_until(8, 4, signal.SIGTERM)
    assert code == 130 and "Traceback" not in err, err
    assert took < 8, f"SIGTERM took {took:.1f} s"  # about 2 s on a quiet machine; 32 s before
    took, code, err = run_until(12, 4, signal.SIGINT, signal.SIGINT)  # only the four slow reviews are asked again
    assert "Traceback" not in err and code == 130, err
    assert took < 8, f"Ctrl-C twice took {took:.1f} s"
    fake.lens_delay = {}
    rerun = pipeline_process(project, env, "draft", A, B)
    out, err = rerun.communicate(timeout=60)
    assert rerun.returncode == 0, err
    assert len(fake.history) == 16 and "4 cache hits" in out, "the four replies that arrived were kept"
