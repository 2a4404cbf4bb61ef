"""The command line's smaller promises: a server that is down, closed pipes, the run log, prices, help."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest

from pipeline.cli import main
from pipeline.costs import Price, price_for
from pipeline.review import Target
from pipeline.settings import Settings
from tests.fakeserver import FakeChatServer

A, B = "hf-inference-providers", "mistral-3-small"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # nothing listens once the socket closes


def test_a_local_server_that_is_down_is_reported_at_once_with_its_url(draft, project: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setenv("VERDICTS_BASE_URL", f"http://user:SECRETKEY@127.0.0.1:{port}/v1")
    for name, value in {"VERDICTS_TRANSPORT_ATTEMPTS": "5", "VERDICTS_BACKOFF_INITIAL": "1",
                        "VERDICTS_BACKOFF_MAX": "20"}.items():  # the real backoff, not the tests' no-wait one
        monkeypatch.setenv(name, value)
    began = time.monotonic()
    run = draft(A, B)
    elapsed = time.monotonic() - began
    assert run.code == 3 and "Traceback" not in run.err
    error = next(line for line in run.err.splitlines() if line.startswith("error: "))
    assert f"could not connect to http://127.0.0.1:{port}/v1/chat/completions (connection refused)" in error
    assert error.endswith("still failing after 2 attempts"), error
    assert "SECRETKEY" not in run.err and "user:" not in run.err
    assert sum("retrying" in line for line in run.err.splitlines()) <= 8, "one retry per review"
    assert elapsed < 5, f"took {elapsed:.1f} s"
    assert not (project / "outputs").exists()


def refused_by(url: str) -> httpx2.ConnectError:
    error = httpx2.ConnectError("[Errno 111] Connection refused", request=httpx2.Request("POST", url))
    error.__cause__ = ConnectionRefusedError(111, "Connection refused")
    return error


@pytest.mark.parametrize(("url", "attempts"), [
    ("http://127.0.0.1:9/v1/chat/completions", 2), ("http://localhost:9/v1/chat/completions", 2),
    ("http://192.168.1.20:8080/v1/chat/completions", 2), ("http://203.0.113.7/v1/chat/completions", 4),
    ("https://router.huggingface.co/v1/chat/completions", 4),
])
def test_only_a_local_refusal_gives_up_after_one_retry(url: str, attempts: int) -> None:
    from pipeline.errors import TransportError
    from pipeline.retry import call_with_retries
    from pipeline.settings import Settings

    calls: list[int] = []

    def refuse() -> None:
        calls.append(1)
        raise refused_by(url)

    with pytest.raises(TransportError) as caught:
        call_with_retries(refuse, Settings(transport_attempts=4, backoff_initial=0, backoff_max=0), "x")
    assert len(calls) == attempts
    assert f"could not connect to {url} (connection refused), still failing after {attempts} attempts" \
        in caught.value.message


@pytest.mark.parametrize(("host", "local"), [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("LOCALHOST", True), ("10.2.3.4", True), ("172.16.0.1", True), ("172.31.255.254", True),
    ("192.168.0.10", True), ("172.32.0.1", False), ("8.8.8.8", False), ("example.com", False),
    ("router.huggingface.co", False), ("::2", False),
])
def test_local_addresses(host: str, local: bool) -> None:
    from pipeline.retry import is_local

    assert is_local(host) is local


@pytest.mark.parametrize(("url", "shown"), [
    ("http://user:KEY@127.0.0.1:8080/v1", "http://127.0.0.1:8080/v1"),
    ("https://:KEY@host/v1?api_key=KEY2", "https://host/v1?api_key=***"),
    ("http://us@er:p@ss@host/v1", "http://host/v1"),
    ("user:KEY@host:8080/v1", "host:8080/v1"),
    ("http://127.0.0.1:8080/v1", "http://127.0.0.1:8080/v1"),
    ("http://host/v1/a@b", "http://host/v1/a@b"),
])
def test_urls_lose_their_userinfo(url: str, shown: str) -> None:
    from pipeline.settings import public_url

    assert public_url(url) == shown


# --- C: the smaller promises ---------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


def closed_pipe_run(project: Path, *args: str, stream: str = "stdout") -> subprocess.CompletedProcess[str]:
    """``python -m pipeline ARGS`` with ``stream`` a pipe whose reader has already gone (``| head -0``)."""
    read, write = os.pipe()
    os.close(read)
    try:
        other = subprocess.PIPE
        return subprocess.run([sys.executable, "-m", "pipeline", "--root", str(project), *args], cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, text=True, timeout=60,
                              stdout=write if stream == "stdout" else other,
                              stderr=write if stream == "stderr" else other)
    finally:
        os.close(write)


def test_a_closed_pipe_ends_stale_quietly_with_its_own_status(fake: FakeChatServer, cli, project: Path) -> None:
    assert cli("draft", A, B).code == 0
    sheet = project / "tools" / f"{B}.toml"
    sheet.write_text(sheet.read_text().replace('entry = "Free"', 'entry = "Free tier"'))
    assert cli("stale").code == 1
    run = closed_pipe_run(project, "stale")
    assert (run.returncode, run.stderr) == (1, ""), "exit 1 still means stale drafts were found"


def test_a_closed_pipe_ends_log_and_help_quietly(fake: FakeChatServer, cli, project: Path) -> None:
    assert cli("draft", A, B).code == 0
    for args in (("log",), ("--help",), ("prompts", A, B)):
        run = closed_pipe_run(project, *args)
        assert (run.returncode, run.stderr) == (0, ""), args


def test_a_pipe_closed_mid_draft_ends_quietly_with_141(fake: FakeChatServer, project: Path) -> None:
    run = closed_pipe_run(project, "draft", A, B, stream="stderr")  # `draft 2>&1 | head -1`, say
    assert (run.returncode, run.stdout) == (141, "")
    assert not (project / "outputs").exists()


@pytest.mark.parametrize("given", [f"outputs/{A}-vs-{B}.md", f"{A}-vs-{B}.md", f"{A}-vs-{B}"])
def test_log_takes_a_draft_the_way_other_commands_do(given: str, fake: FakeChatServer, cli) -> None:
    assert cli("draft", A, B).code == 0
    run = cli("log", "--draft", given)
    assert run.code == 0 and run.out.count("\n-- ") == 8, run.out


def test_log_of_an_unknown_run_is_an_error_listing_the_last_runs(fake: FakeChatServer, cli) -> None:
    assert cli("log", "--run", "nonsense").code == 2, "an empty log knows no run either"
    assert cli("draft", A, B).code == 0
    run_id = cli("log").out.split("== run ", 1)[1].split(" ", 1)[0]
    assert cli("log", "--run", run_id).code == 0
    run = cli("log", "--run", "nonsense")
    assert run.code == 2 and run.out == ""
    assert run.err.startswith("error: command line: --run: no run 'nonsense'") and run_id in run.err
    assert "hint: " in run.err and "Traceback" not in run.err


@pytest.mark.parametrize(("target", "command"), [
    ("prompts", f"pipeline prompts {A} {B} --max-cost 1"), ("refresh", "pipeline refresh --max-cost 1"),
    ("stale", "pipeline stale --max-cost 1"), ("draft", f"pipeline draft {A} {B} --max-cost 1"),
])
def test_make_passes_args(target: str, command: str) -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    shown = subprocess.run(["make", "-n", "-C", str(ROOT), target, "ARGS=--max-cost 1", "VENV=/nonexistent"],
                           capture_output=True, text=True, check=True).stdout
    line = next(line for line in shown.splitlines() if "-m pipeline" in line)
    assert " ".join(line.split()).endswith(command), line


def test_retry_messages_keep_their_punctuation_and_plurals() -> None:
    from pipeline.errors import BudgetReached, GaveUpOnReply, TransportError
    from pipeline.retry import call_with_retries
    from pipeline.settings import Settings

    def cut_off() -> None:
        raise httpx2.RemoteProtocolError("Server disconnected without sending a response.")

    with pytest.raises(TransportError) as caught:
        call_with_retries(cut_off, Settings(transport_attempts=1), "builder review of x")
    assert caught.value.message == ("builder review of x: RemoteProtocolError: Server disconnected without "
                                    "sending a response, still failing after 1 attempt")
    assert "after 1 request:" in GaveUpOnReply("builder", "x", ["too short"], 1, None).message
    assert "after 3 requests:" in GaveUpOnReply("builder", "x", ["too short"], 3, None).message
    assert "after 1 request (" in BudgetReached(0.5, 0.4, 1).message


def target(backend: str, provider: str, model: str = "org/model") -> Target:
    return Target(backend, model, provider, 0.7, 700, True, "")


@pytest.mark.parametrize(("backend", "provider", "prices", "expected"), [
    ("endpoint", "", {"org/model": (1.0, 2.0)}, Price(1.0, 2.0)),
    ("hf", "groq", {"org/model": (0.0, 0.0)}, None),
    ("hf", "auto", {"org/model": (0.0, 0.0)}, None),
    ("hf", "cheapest", {"org/model": (0.0, 0.0)}, None),
    ("hf", "", {"org/model": (0.0, 0.0)}, None),
    ("hf", "groq", {"org/model": (0.0, 0.0), "org/model:groq": (1.0, 2.0)}, Price(1.0, 2.0)),
    ("hf", "auto", {"org/model:auto": (3.0, 4.0)}, Price(3.0, 4.0)),
    ("hf", "cheapest", {"org/model:cheapest": (3.0, 4.0), "org/model:groq": (1.0, 2.0)}, Price(3.0, 4.0)),
    ("endpoint", "", {"org/model:groq": (1.0, 2.0)}, None),
    ("local", "", {}, Price(0.0, 0.0)),
])
def test_a_plain_model_price_is_for_endpoints_only(backend: str, provider: str, prices: dict,
                                                   expected: Price | None) -> None:
    assert price_for(Settings(prices=prices), target(backend, provider)) == expected


def test_a_plain_model_price_does_not_make_inference_providers_free(cli, project: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(
        "[tool.verdicts.prices]\n", '[tool.verdicts.prices]\n"Qwen/Qwen2.5-72B-Instruct" = [0, 0]\n'))
    monkeypatch.setenv("HF_TOKEN", "hf_notARealTokenForTheDryRun00000")
    run = cli("prompts", A, B, "--max-cost", "1")
    assert run.code == 0 and "Budget $1.0000: cannot be checked" in run.out, run.out
    assert "Qwen/Qwen2.5-72B-Instruct:auto" in run.out


def test_prompts_help_explains_a_and_b(cli, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["prompts", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "A slug of the first tool (tools/<A>.toml)" in shown
    assert "B slug of the second tool (tools/<B>.toml)" in shown


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    import pipeline

    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == 0 and capsys.readouterr().out == f"verdicts {pipeline.__version__}\n"


def test_the_fake_server_says_what_its_modes_do() -> None:
    shown = subprocess.run([sys.executable, "-m", "tests.fakeserver", "--help"], cwd=ROOT, capture_output=True,
                           text=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout
    for mode in ("synthetic", "attentive", "reference", "offbeat"):
        line = next((line for line in shown.splitlines() if line.split()[:1] == [mode]), "")
        assert len(line.split()) > 4, (mode, shown)


_crash_on: list[str] = []


def _crash(event: str, args: tuple[object, ...]) -> None:
    if event == "open" and _crash_on and str(args[0]).endswith(_crash_on[0]):
        raise ZeroDivisionError("a stand-in for a bug of ours")


sys.addaudithook(_crash)  # does nothing unless a test names a file


def test_an_unexpected_error_has_its_own_exit_status(cli, project: Path) -> None:
    """A bug (any exception that is not ours or the machine's) is exit 70, not 1, which means stale drafts."""
    _crash_on.append("skeptic.toml")
    try:
        run = cli("stale")
    finally:
        _crash_on.clear()
    assert run.code == 70, run.err
    assert "Traceback" in run.err and "error: unexpected ZeroDivisionError: a bug in verdicts" in run.err

