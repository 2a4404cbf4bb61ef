"""Hostile input, round two (issue 23, items 3, 7 and 8): what a run spends, held when the input lies about it.

Money: a price that is NaN, infinite or negative (in pyproject.toml or the router's list), or a provider with no
price under ``auto``, never lets a budget run unchecked. Memory: a reply body that never ends is cut off at
MAX_REPLY. Disk: a full, size-limited or read-only disk under the cache is said as such, never called damage.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import no_page
from tests.fakeserver import FakeChatServer
from tests.test_router import CATALOGUE, MODEL, entry, errors, fake_router  # noqa: F401 (a fixture)

ROOT = Path(__file__).resolve().parent.parent
A, B, C = "hf-inference-providers", "mistral-3-small", "mistral-4b-edge"


def set_price(project: Path, line: str) -> None:
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text()
    assert "[tool.verdicts.prices]\n" in text
    pyproject.write_text(text.replace("[tool.verdicts.prices]\n", f"[tool.verdicts.prices]\n{line}\n"))


# Money.

@pytest.mark.parametrize("price", ["nan", "-0.56", "inf"])
def test_a_price_table_entry_that_is_not_a_finite_number_is_refused(price: str, fake: FakeChatServer, cli,
                                                                   project: Path) -> None:
    set_price(project, f'"{MODEL}" = [{price}, 0.40]')
    run = cli("draft", A, B, "--max-cost", "1")
    assert run.code == 2, run.err
    (error,) = errors(run.err)
    assert str(project / "pyproject.toml") in error and f'"{MODEL}"' in error and "input price" in error, error
    assert "not a finite number >= 0" in error and "Traceback" not in run.err
    assert fake.history == [] and no_page(project), "nothing sent, nothing written"


def test_a_router_price_that_is_not_a_finite_number_is_no_price(fake_router, cli, project: Path,  # noqa: F811
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    models = copy.deepcopy(CATALOGUE)
    models[0]["providers"][0] = entry("novita", price=(float("nan"), 0.40))  # served as NaN, as JSON from Python is
    fake_router.models = models
    monkeypatch.setenv("VERDICTS_PROVIDER", "novita")
    run = cli("draft", A, B, "--max-cost", "1")
    assert run.code == 2, run.err
    (error,) = errors(run.err)
    assert f"no price for {MODEL}:novita (novita gives a price that is not a finite number >= 0 (input nan, " \
           "output 0.4), taken as no price)" in error, error
    assert "--allow-unknown-prices" in run.err and "$nan" not in run.err
    assert fake_router.history == [] and no_page(project), "nothing sent, nothing written"
    shown = cli("providers", "--json")
    rows = {row["provider"]: row for row in json.loads(shown.out)["models"][0]["providers"]}
    assert rows["novita"]["input_usd_per_million"] is None and "NaN" not in shown.out


def test_under_auto_a_live_provider_without_a_price_leaves_the_budget_unknown(fake_router, cli,  # noqa: F811
                                                                              project: Path) -> None:
    # together is the dearest live provider with a price; featherless-ai is live too and gives none: the router may
    # pick it, so no upper bound is known.
    run = cli("draft", A, B, "--max-cost", "5")
    assert run.code == 2, run.err
    (error,) = errors(run.err)
    assert f"no price for {MODEL}:auto (live provider featherless-ai gives no price: auto may pick it, so the " \
           "upper bound is unknown)" in error, error
    assert fake_router.history == [] and no_page(project)
    # The editor's say-so: the run goes ahead, and says the budget holds only what has a price.
    run = cli("draft", A, B, "--max-cost", "5", "--allow-unknown-prices")
    assert run.code == 0, run.err
    assert "warning: the budget of $5.0000 counts only the requests that have a price" in run.err
    assert len(fake_router.history) == 8 and "cost unknown" in run.out


def test_allowing_unknown_prices_still_holds_the_priced_requests_to_the_budget(fake: FakeChatServer, cli,
                                                                             project: Path) -> None:
    skeptic = project / "personas" / "skeptic.toml"  # one lens on a model the price table does not know
    skeptic.write_text(skeptic.read_text().replace("min_beats = 3", 'min_beats = 3\nmodel = "acme/unpriced"'))
    set_price(project, f'"{MODEL}" = [1.0, 1.0]')
    fake.usage = (60_000, 40_000)  # $0.10 a request at the table's price
    run = cli("draft", A, B, "--max-cost", "0.25", "--concurrency", "1")
    assert run.code == 2 and "no price for acme/unpriced" in run.err and fake.history == []
    run = cli("draft", A, B, "--max-cost", "0.25", "--concurrency", "1", "--allow-unknown-prices")
    assert run.code == 6, run.err
    priced = [r for r in fake.history if r["json"]["model"] == MODEL]
    assert len(priced) == 3 and "budget of $0.2500 was reached" in run.err, "the third priced reply reaches it"


# Memory.

def measured(project: Path, env: dict[str, str], tmp_path: Path, *args: str) -> tuple[int, str, int]:
    """Run ``python -m pipeline`` in a child process: its exit status, stderr, and its peak memory (KB)."""
    err = tmp_path / "stderr"
    with err.open("w") as stream:
        process = subprocess.Popen([sys.executable, "-m", "pipeline", "--root", str(project), *args], cwd=ROOT,
                                   env=env, stdout=subprocess.DEVNULL, stderr=stream)
        watchdog = threading.Timer(60, process.kill)
        watchdog.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)  # this child's own figures, not every child's
        finally:
            watchdog.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, err.read_text(), usage.ru_maxrss


def test_a_reply_that_never_ends_is_cut_off_at_the_cap(fake: FakeChatServer, project: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VERDICTS_CONCURRENCY": "1", "VERDICTS_TIMEOUT": "3",
           "VERDICTS_TRANSPORT_ATTEMPTS": "2"}
    code, err, normal = measured(project, env, tmp_path, "draft", A, B)
    assert code == 0, err
    fake.endless = True
    code, err, endless = measured(project, env, tmp_path, "draft", A, C)  # A's reviews are cached: C's are asked
    # What the server got out before the client closed: the cap, and what the kernel's socket buffers took
    # (a few MB on loopback), not the 64 MB the fake sends a client that never stops reading.
    assert fake.endless_sent < 16 * 1024 * 1024, f"{fake.endless_sent:,} bytes sent"
    assert endless - normal < 24 * 1024, f"peak memory {endless:,} KB against {normal:,} KB for a normal draft"
    assert code == 3, err
    (error,) = errors(err)
    assert f"the answer from {fake.base_url}/chat/completions went on past 512 KB" in error, error
    assert len(fake.history) == 9, "not retried: the same request would be answered the same way, and billed"
    assert "Traceback" not in err and not (project / "outputs" / f"{A}-vs-{C}.md").exists()


# Disk.

LIMITED = ("import resource, runpy, signal, sys\n"
           "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG), never kills\n"
           "resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))\n"
           "sys.argv = ['pipeline', *sys.argv[1:]]\n"
           "runpy.run_module('pipeline', run_name='__main__')\n")


def test_a_file_size_limit_under_the_cache_is_not_called_damage(fake: FakeChatServer, cli, project: Path,
                                                                tmp_path: Path) -> None:
    assert cli("draft", A, B).code == 0 and len(fake.history) == 8
    # No file may grow past 16 KB (ulimit -f): the database's shared-memory file (32 KB) cannot be made.
    process = subprocess.run([sys.executable, "-c", LIMITED.format(limit=16 * 1024), "--root", str(project),
                              "draft", A, C], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                             capture_output=True, text=True, timeout=60)
    assert process.returncode == 7, process.stderr
    (error,) = errors(process.stderr)
    directory = tmp_path / "cache" / "responses-v2"
    assert error.startswith(f"error: {directory}: the response cache cannot be written: a file there may not "
                            "grow (a file size limit, ulimit -f) (File too large)"), error
    assert error.endswith("this is not damage, and the replies cached there are kept")
    assert "cache is damaged" not in error and "delete" not in process.stderr.split("hint:")[-1].lower()
    assert "Traceback" not in process.stderr
    assert len(fake.history) == 8, "nothing sent"
    # The replies paid for are all still there: without the limit, only C's four reviews are asked for.
    assert cli("draft", A, C).code == 0 and len(fake.history) == 12


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of 8 MB of the test's own (tier ``mount``)."""
    where = tmp_path / "disk"
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with filler.open("wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError as exc:
            assert exc.strerror == "No space left on device"
    return filler


@pytest.mark.mount
@pytest.mark.parametrize(("condition", "said"), [
    ("full", "the disk it is on is full (No space left on device)"),
    ("read-only", "it is on a read-only file system (Read-only file system)")])
def test_a_full_or_read_only_disk_under_the_cache_is_not_called_damage(condition: str, said: str, small_disk: Path,
                                                                       fake: FakeChatServer, cli, project: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VERDICTS_CACHE_DIR", str(small_disk / "cache"))
    # In a process of its own, which leaves no file open on the disk: a file open for writing (a worker thread's
    # database connection) would keep it from being made read-only.
    first = subprocess.run([sys.executable, "-m", "pipeline", "--root", str(project), "draft", A, B], cwd=ROOT,
                           env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0 and len(fake.history) == 8, first.stderr
    if condition == "full":
        filler = fill(small_disk)
    else:
        subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    run = cli("draft", A, C)
    assert run.code == 7, run.err
    (error,) = errors(run.err)
    directory = small_disk / "cache" / "responses-v2"
    assert error == f"error: {directory}: the response cache cannot be written: {said}; this is not damage, and " \
                    "the replies cached there are kept", error
    assert "delete" not in run.err.split("hint:")[-1].lower() and len(fake.history) == 8, "nothing sent"
    if condition == "full":
        filler.unlink()
    else:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    assert cli("draft", A, C).code == 0 and len(fake.history) == 12, "every reply paid for is still cached"
