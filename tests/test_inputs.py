"""Bad input: one message naming the file and the field, a non-zero exit, no request, nothing written."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.load import FactSheet, load_personas, load_tool
from tests.fakeserver import FakeChatServer

A, B = "hf-inference-providers", "mistral-3-small"


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


CASES: dict[str, tuple[Callable[[Path], object], tuple[str, str], list[str]]] = {
    "unknown slug": (lambda p: None, ("no-such-tool", B), ["tools/no-such-tool.toml", "no fact sheet", "known:"]),
    "path-like slug": (lambda p: None, ("../pyproject", B), ["TOOL_A", "not a tool slug"]),
    "upper-case slug": (lambda p: None, (A, "Mistral"), ["TOOL_B", "not a tool slug"]),
    "same tool twice": (lambda p: None, (A, A), ["TOOL_B", "same tool"]),
    "missing key": (lambda p: edit(p / "tools" / f"{B}.toml", 'entry = "Free"\n', ""), (A, B),
                    [f"tools/{B}.toml", "entry", "required key is missing"]),
    "unknown key": (lambda p: edit(p / "tools" / f"{B}.toml", 'entry = "Free"', 'entry = "Free"\nprice = 3'),
                    (A, B), [f"tools/{B}.toml", "price", "unknown key"]),
    "wrong type": (lambda p: edit(p / "tools" / f"{B}.toml", 'entry = "Free"', "entry = 0"), (A, B),
                   [f"tools/{B}.toml", "entry", "string"]),
    "broken TOML": (lambda p: edit(p / "tools" / f"{A}.toml", 'name = "', 'name = '), (A, B),
                    [f"tools/{A}.toml", "not valid TOML", "line 1"]),
    "persona unknown key": (lambda p: edit(p / "personas" / "buyer.toml", "min_beats = 3", "min_beats = 3\ntone = 1"),
                            (A, B), ["personas/buyer.toml", "tone", "unknown key"]),
    "persona empty fallback": (lambda p: edit(p / "personas" / "buyer.toml", "min_beats = 3",
                                              "min_beats = 3\nfallbacks = [{}]"),
                               (A, B), ["personas/buyer.toml", "fallbacks.0", "needs a model, a provider, or both"]),
    "persona fallback typo": (lambda p: edit(p / "personas" / "buyer.toml", "min_beats = 3",
                                             'min_beats = 3\nfallbacks = [{ modle = "x/y" }]'),
                              (A, B), ["personas/buyer.toml", "fallbacks.0.modle", "unknown key"]),
    "persona bad pattern": (lambda p: edit(p / "personas" / "skeptic.toml", "'\\bbreaks?\\b'", "'(breaks'"),
                            (A, B), ["personas/skeptic.toml", "beats.1.patterns", "regular expression"]),
    "template undefined": (lambda p: edit(p / "prompts" / "user.j2", "{{ sheet_json }}", "{{ sheet.nam }}"),
                           (A, B), ["prompts/user.j2", "nam"]),
    "template syntax": (lambda p: edit(p / "prompts" / "system.j2", "{% for beat", "{% for beat in %}{% for beat"),
                        (A, B), ["prompts/system.j2", "line"]),
    "page template": (lambda p: edit(p / "prompts" / "page.md.j2", "{{ card.sheet.name | md }}", "{{ card.votes }}"),
                      (A, B), ["prompts/page.md.j2", "votes"]),
    "bad setting": (lambda p: edit(p / "pyproject.toml", "concurrency = 8", "concurrency = 0"), (A, B),
                    ["pyproject.toml [tool.verdicts]", "concurrency"]),
    "unknown setting": (lambda p: edit(p / "pyproject.toml", "concurrency = 8", "concurency = 8"), (A, B),
                        ["pyproject.toml [tool.verdicts]", "concurency", "unknown setting"]),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_clear_message(case: str, fake: FakeChatServer, draft, project: Path) -> None:
    break_it, (a, b), expected = CASES[case]
    break_it(project)
    run = draft(a, b)
    assert run.code == 2, run.err
    lines = run.err.strip().splitlines()
    assert lines[0].startswith("error: ") and "Traceback" not in run.err
    assert len([line for line in lines if line.startswith("error")]) == 1
    for fragment in expected:
        assert fragment in lines[0], (fragment, lines[0])
    assert fake.history == [], "no request may be sent"
    assert not (project / "outputs").exists(), "nothing may be written"
    assert not Path(os.environ["VERDICTS_CACHE_DIR"]).exists(), "not even the cache"


def test_bad_environment_setting_names_the_variable(fake: FakeChatServer, draft, monkeypatch) -> None:
    monkeypatch.setenv("VERDICTS_TIMEOUT", "soon")
    run = draft(A, B)
    assert run.code == 2 and "VERDICTS_TIMEOUT" in run.err and "timeout" in run.err


def test_flag_beats_environment_beats_pyproject(project: Path, monkeypatch) -> None:
    from pipeline.settings import load_settings

    assert load_settings(project).concurrency == 8
    monkeypatch.setenv("VERDICTS_CONCURRENCY", "3")
    assert load_settings(project).concurrency == 3
    assert load_settings(project, concurrency=5).concurrency == 5


def test_no_backend_configured_says_how_to_pick_one(draft) -> None:
    run = draft(A, B)
    assert run.code == 3 and "VERDICTS_BASE_URL" in run.err and "HF_TOKEN" in run.err


def test_the_test_projects_data_loads(project: Path) -> None:
    """The fixture's own files; the live ones are `python -m pipeline check`'s (tests/test_check.py)."""
    sheets = [load_tool(project, path.stem) for path in sorted((project / "tools").glob("*.toml"))]
    assert {s.name for s in sheets} >= {"Hugging Face Inference Providers Marketplace", "Mistral 3 Small (24B)",
                                         "Mistral 4B Edge"}
    assert all(isinstance(s, FactSheet) for s in sheets)
    assert [p.lens for p in load_personas(project)] == ["builder", "skeptic", "buyer", "futurist"]
