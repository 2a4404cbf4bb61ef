"""The command line's smaller promises: a server that is down, closed pipes, the run log, prices, help."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx2
import pytest

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
    ("https://:KEY@host/v1?x=1", "https://host/v1?x=1"),
    ("http://us@er:p@ss@host/v1", "http://host/v1"),
    ("user:KEY@host:8080/v1", "host:8080/v1"),
    ("http://127.0.0.1:8080/v1", "http://127.0.0.1:8080/v1"),
    ("http://host/v1/a@b", "http://host/v1/a@b"),
])
def test_urls_lose_their_userinfo(url: str, shown: str) -> None:
    from pipeline.retry import without_userinfo

    assert without_userinfo(url) == shown
