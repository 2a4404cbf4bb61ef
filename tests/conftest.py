"""Shared fixtures: an isolated project copy, a clean environment, and the fake chat-completions server."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.cli import main
from tests.fakeserver import FakeChatServer

ROOT = Path(__file__).resolve().parent.parent
PROJECT_FILES = ("tools", "personas", "prompts", "pyproject.toml")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No real token, no settings from the developer's shell, state under tmp_path, a no-wait retry policy."""
    import os

    for name in list(os.environ):
        if name.startswith("VERDICTS_") or name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # no cached Hub token reaches a test
    monkeypatch.setenv("VERDICTS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VERDICTS_BACKOFF_INITIAL", "0")
    monkeypatch.setenv("VERDICTS_BACKOFF_MAX", "0")
    monkeypatch.setenv("VERDICTS_RETRY_AFTER_CAP", "0")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project's data files, so a test can break them."""
    target = tmp_path / "project"
    target.mkdir()
    for name in PROJECT_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name)
        else:
            shutil.copy(source, target / name)
    return target


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeChatServer]:
    with FakeChatServer() as server:
        monkeypatch.setenv("VERDICTS_BASE_URL", server.base_url)
        yield server


class Run:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err


@pytest.fixture
def draft(project: Path, capsys: pytest.CaptureFixture[str]):
    """Run ``python -m pipeline draft A B`` in-process against the project copy."""

    def run(a: str, b: str, *flags: str) -> Run:
        code = main(["--root", str(project), "draft", a, b, *flags])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture
def cli(project: Path, capsys: pytest.CaptureFixture[str]):
    """Run any ``python -m pipeline`` command in-process against the project copy."""

    def run(*args: str) -> Run:
        code = main(["--root", str(project), *args])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run
