"""A bad fact sheet, persona or backend setting: every problem at once, in the editor's words, and exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from pipeline.errors import explain
from pipeline.load import FactSheet, Persona
from tests.fakeserver import FakeChatServer

A, B = "hf-inference-providers", "mistral-3-small"


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def error_lines(err: str) -> list[str]:
    """The error and the lines under it, without the hint."""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines[0].startswith("error: ") and sum(line.startswith("error") for line in lines) == 1, err
    return [line for line in lines if not line.startswith("hint: ")]


def test_every_problem_of_a_fact_sheet_is_reported_at_once(fake: FakeChatServer, draft, project: Path) -> None:
    sheet = project / "tools" / f"{B}.toml"
    edit(sheet, "tagline =", "taglin =")
    edit(sheet, 'entry = "Free"', 'entry = "Free"\nprice = 3')
    text = sheet.read_text(encoding="utf-8")
    name_line = next(line for line in text.splitlines() if line.startswith("name ="))
    edit(sheet, name_line, 'name = ""')
    run = draft(A, B)
    assert run.code == 2, run.err
    lines = error_lines(run.err)
    assert lines[0] == f"error: {sheet}: 4 problems:"
    problems = [line.strip() for line in lines[1:]]
    assert "name: must not be empty" in problems
    assert "tagline: required key is missing; taglin looks like a typo for it" in problems
    assert "taglin: unknown key; did you mean tagline?" in problems
    assert any(line.startswith("price: unknown key; allowed keys: name, category, tagline") for line in problems)
    assert len(problems) == 4
    assert fake.history == [] and not (project / "outputs").exists()


def test_every_problem_of_a_persona_is_reported_at_once(fake: FakeChatServer, draft, project: Path) -> None:
    persona = project / "personas" / "buyer.toml"
    edit(persona, "min_beats = 3", 'min_beats = 3\nlens = "money"\nmin_words = 500\n'
                                   'fallbacks = [{ modle = "x/y" }]\nTitel = "x"')
    run = draft(A, B)
    assert run.code == 2, run.err
    lines = error_lines(run.err)
    assert lines[0].startswith(f"error: {persona}: ") and lines[0].endswith(" problems:")
    problems = [line.strip() for line in lines[1:]]
    assert "fallbacks.0.modle: unknown key; did you mean model?" in problems
    assert "Titel: unknown key; did you mean title?" in problems
    assert "lens: is taken from the file name; remove the key" in problems
    assert "min_words: is larger than max_words" in problems


def test_one_problem_stays_on_one_line(fake: FakeChatServer, draft, project: Path) -> None:
    sheet = project / "tools" / f"{B}.toml"
    edit(sheet, 'entry = "Free"', 'entry = "Free"\nlicence = "MIT"')
    run = draft(A, B)
    assert run.code == 2
    assert error_lines(run.err) == [f"error: {sheet}: licence: unknown key; did you mean license?"]


@pytest.mark.parametrize("line", ['name = “Mistral”', 'name = "Mistral”', "name = ‘Mistral’"],
                         ids=["both curly", "closing curly", "single curly"])
def test_curly_quotes_say_to_use_straight_quotes(line: str, fake: FakeChatServer, draft, project: Path) -> None:
    sheet = project / "tools" / f"{B}.toml"
    name_line = next(text for text in sheet.read_text(encoding="utf-8").splitlines() if text.startswith("name ="))
    edit(sheet, name_line, line)
    run = draft(A, B)
    assert run.code == 2
    first = error_lines(run.err)[0]
    assert str(sheet) in first and "not valid TOML" in first and "use straight quotes" in first, first


def test_broken_toml_without_curly_quotes_does_not_mention_them(fake: FakeChatServer, draft, project: Path) -> None:
    sheet = project / "tools" / f"{B}.toml"
    sheet.write_text(sheet.read_text(encoding="utf-8") + '\ntagline = "it’s fine"\nfacts = [\n', encoding="utf-8")
    run = draft(A, B)
    assert run.code == 2 and "not valid TOML" in run.err and "straight quotes" not in run.err


def test_lengths_are_said_in_characters(fake: FakeChatServer, draft, project: Path) -> None:
    sheet = project / "tools" / f"{B}.toml"
    edit(sheet, 'entry = "Free"', 'entry = "' + "x" * 301 + '"')
    run = draft(A, B)
    assert run.code == 2
    assert f"error: {sheet}: entry: is longer than 300 characters" in run.err


def test_explain_is_the_first_of_explain_all() -> None:
    from pipeline.errors import explain_all

    with pytest.raises(ValidationError) as caught:
        FactSheet.model_validate({"name": "", "taglin": "x", "category": "c", "entry": "e", "description": "d"})
    everything = explain_all(caught.value, allowed=FactSheet.model_fields, model=FactSheet)
    assert everything == [("name", "must not be empty"),
                          ("tagline", "required key is missing; taglin looks like a typo for it"),
                          ("taglin", "unknown key; did you mean tagline?")]
    assert explain(caught.value) == ("name", "must not be empty")


def test_an_empty_list_must_not_be_empty() -> None:
    with pytest.raises(ValidationError) as caught:
        Persona.model_validate({"order": 1, "title": "t", "role": "r", "voice": "v", "beats": [], "min_beats": 1})
    assert explain(caught.value) == ("beats", "must not be empty")


@pytest.mark.parametrize(("env", "expected"), [
    ({"VERDICTS_BASE_URL": "127.0.0.1:8080/v1"},
     ["error: environment variable VERDICTS_BASE_URL: base_url: must start with http:// or https://"]),
    ({"VERDICTS_BACKEND": "endpoint"},
     ["error: environment variable VERDICTS_BACKEND: backend: is endpoint but VERDICTS_BASE_URL is not set",
      "hint: Set VERDICTS_BASE_URL"]),
    ({"VERDICTS_BACKEND": "hf"},
     ["error: environment variable VERDICTS_BACKEND: backend: is hf but HF_TOKEN is not set", "hint: Create a token"]),
], ids=["no scheme", "endpoint without URL", "hf without token"])
def test_backend_configuration_is_bad_input(env: dict[str, str], expected: list[str], draft, project: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    run = draft(A, B)
    assert run.code == 2, run.err
    lines = error_lines(run.err) + [line for line in run.err.splitlines() if line.startswith("hint: ")]
    for fragment in expected:
        assert any(line.startswith(fragment) for line in lines), (fragment, run.err)
    assert not (project / "outputs").exists()


def test_a_url_without_scheme_does_not_show_its_key(draft, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VERDICTS_BASE_URL", "user:SECRETKEY@127.0.0.1:8080/v1")
    run = draft(A, B)
    assert run.code == 2 and "127.0.0.1:8080/v1" in run.err
    assert "SECRETKEY" not in run.err and "user:" not in run.err


def test_backend_flag_is_named_as_a_setting(draft) -> None:
    run = draft(A, B, "--backend", "hf")
    assert run.code == 2 and "error: setting backend: backend: is hf but HF_TOKEN is not set" in run.err
