"""``python -m pipeline check``: the editors' files validated cheaply, and wired into make and CI.

The first tests copy the live editorial files into tmp on purpose (the only tests that read them) and edit the
copy the way editors do every week: ``check`` must keep passing. The others run on the fixture project.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from pipeline.cli import main
from tests.conftest import ROOT, Run, add_persona, copy_project, reading_live_files
from tests.fakeserver import FakeChatServer

A, B = "hf-inference-providers", "mistral-3-small"
EDITORIAL = ("tools", "personas", "prompts", "pyproject.toml")


def check(root: Path, capsys: pytest.CaptureFixture[str]) -> Run:
    code = main(["--root", str(root), "check"])
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


@pytest.fixture
def live_copy(tmp_path: Path) -> Path:
    """The live project's editorial files and templates, copied into tmp: edits go to the copy, never in place."""
    with reading_live_files():
        return copy_project(tmp_path / "live", {name: ROOT / name for name in EDITORIAL})


def sheet_to_edit(root: Path) -> Path:
    """The editor's report changed tools/mistral-3-small.toml; any sheet will do once that one is gone."""
    chosen = root / "tools" / f"{B}.toml"
    return chosen if chosen.is_file() else sorted((root / "tools").glob("*.toml"))[0]


def test_check_passes_on_the_live_files_after_valid_editorial_changes(live_copy: Path, capsys) -> None:
    sheet = sheet_to_edit(live_copy)
    data = {**tomllib.loads(sheet.read_text(encoding="utf-8")), "entry": "From $0.10 per million tokens"}
    sheet.write_text("".join(f"{key} = {json.dumps(value)}\n" for key, value in data.items()), encoding="utf-8")
    personas = sorted(path.stem for path in (live_copy / "personas").glob("*.toml"))
    builder = "builder" if "builder" in personas else personas[0]
    lens = next(name for name in ("operator", *(f"operator-{n}" for n in range(2, 99))) if name not in personas)
    add_persona(live_copy, lens, "Operator", like=builder)  # editors may have added an operator already
    run = check(live_copy, capsys)
    assert run.code == 0, run.out + run.err
    assert run.out.endswith(f"{len(personas) + 1} personas, 0 drafts: all good\n"), run.out


def test_a_broken_sheet_in_the_live_copy_fails_check_naming_the_file(live_copy: Path, capsys) -> None:
    sheet = sheet_to_edit(live_copy)
    sheet.write_text(sheet.read_text(encoding="utf-8") + '\nentry = "an unclosed string\n', encoding="utf-8")
    run = check(live_copy, capsys)
    assert run.code == 2
    assert f"tools/{sheet.name}: not valid TOML" in run.out, run.out


def test_check_reports_every_bad_file_not_just_the_first(project: Path, capsys) -> None:
    for slug in (A, B):
        path = project / "tools" / f"{slug}.toml"
        path.write_text(path.read_text().replace("category =", "catgory ="))
    (project / "tools" / "Upper.toml").write_text((project / "tools" / f"{A}.toml").read_text())
    persona = project / "personas" / "buyer.toml"
    persona.write_text(persona.read_text().replace("min_beats = 3", "min_beats = 3\ntone = 1\nmin_words = 500"))
    run = check(project, capsys)
    assert run.code == 2 and run.err == ""
    lines = run.out.splitlines()
    for expected in (f"tools/{A}.toml: catgory: unknown key; did you mean category?",
                     f"tools/{B}.toml: category: required key is missing",
                     "tools/Upper.toml: a fact sheet's file name is its slug",
                     "personas/buyer.toml: tone: unknown key", "personas/buyer.toml: min_words: is larger than"):
        assert any(line.startswith(expected) for line in lines), (expected, run.out)
    assert lines[-1].startswith("4 fact sheets, 4 personas: 7 problems; templates and drafts are checked"), lines[-1]


def test_two_personas_in_one_place_fail_check(project: Path, capsys) -> None:
    persona = project / "personas" / "futurist.toml"
    persona.write_text(re.sub(r"(?m)^order = \d+$", "order = 1", persona.read_text()))
    run = check(project, capsys)
    assert run.code == 2 and "order: 1 is also the order of" in run.out, run.out


@pytest.mark.parametrize(("template", "old", "new"), [
    ("system.j2", "{{ persona.role }}", "{{ persona.rol }}"),
    ("user.j2", "{{ sheet_json }}", "{{ sheet_jsn }}"),
    ("reask.j2", "{{ persona.min_words }}", "{{ persona.min_word }}"),
    ("page.md.j2", "{{ card.sheet.name | md }}", "{{ card.votes }}"),
    ("page.md.j2", "{% call section(review.section) %}", "{% call section(card.section) %}"),
])
def test_check_renders_every_template(project: Path, capsys, template: str, old: str, new: str) -> None:
    path = project / "prompts" / template
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new, 1))
    run = check(project, capsys)
    assert run.code == 2 and f"prompts/{template}: " in run.out, run.out
    assert len(run.out.splitlines()) == 2, "a broken template is reported once, not once per persona and sheet"


def test_every_broken_template_is_reported(project: Path, capsys) -> None:
    for template, old, new in (("system.j2", "{{ persona.role }}", "{{ persona.rol }}"),
                               ("page.md.j2", "{{ card.sheet.name | md }}", "{{ card.votes }}")):
        path = project / "prompts" / template
        path.write_text(path.read_text().replace(old, new, 1))
    run = check(project, capsys)
    assert run.code == 2 and "prompts/system.j2: " in run.out and "prompts/page.md.j2: " in run.out, run.out


def test_check_renders_the_page_with_a_single_fact_sheet(project: Path, capsys) -> None:
    for path in (project / "tools").glob("*.toml"):
        if path.stem != A:
            path.unlink()
    assert check(project, capsys).out == "1 fact sheet, 4 personas, 0 drafts: all good\n"
    page = project / "prompts" / "page.md.j2"
    page.write_text(page.read_text().replace("{{ card.sheet.name | md }}", "{{ card.votes }}", 1))
    assert check(project, capsys).code == 2


def test_quotes_in_drafts_must_still_pass_their_lens(fake: FakeChatServer, cli, project: Path, capsys) -> None:
    assert cli("draft", A, B).code == 0
    draft = project / "outputs" / f"{A}-vs-{B}.md"
    assert check(project, capsys).out == "3 fact sheets, 4 personas, 1 draft: all good\n"

    # An editor's polish that drops the command in backticks: the page text is checked, not the sidecar's.
    text = draft.read_text()
    command = "`pip install mistral-3-small-24b`"
    assert text.count(command) == 1
    draft.write_text(text.replace(command, "installing it"))
    run = check(project, capsys)
    assert run.code == 2
    assert f"outputs/{A}-vs-{B}.md: builder quote on {B}: no sentence does this: give the moment of truth" in run.out
    assert f"builder quote on {A}" not in run.out
    draft.write_text(text)

    # A persona tightened so that a published quote no longer fits.
    persona = project / "personas" / "buyer.toml"
    persona.write_text(persona.read_text().replace("min_beats = 3", "min_beats = 3\nmin_words = 150"))
    run = check(project, capsys)
    assert run.code == 2
    for slug in (A, B):
        assert re.search(rf"outputs/{A}-vs-{B}\.md: buyer quote on {slug}: the quote has \d+ words; it must have "
                         r"150 to 170", run.out), run.out
    assert run.out.splitlines()[-1] == "3 fact sheets, 4 personas, 1 draft: 2 problems"


def test_a_draft_without_a_sidecar_is_counted_but_its_quotes_are_not_checked(project: Path, capsys) -> None:
    (project / "outputs").mkdir()
    (project / "outputs" / f"{A}-vs-{B}.md").write_text("# A page written by hand\n")
    run = check(project, capsys)
    assert run.code == 0
    assert run.out == ("3 fact sheets, 4 personas, 1 draft: all good (1 draft without a provenance sidecar, so "
                       "their quotes were not checked)\n")


def test_check_sends_nothing_and_needs_no_token(fake: FakeChatServer, cli, project: Path, capsys,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli("draft", A, B).code == 0
    sent = len(fake.history)
    monkeypatch.delenv("VERDICTS_BASE_URL")
    assert check(project, capsys).code == 0
    assert len(fake.history) == sent


def test_a_new_lens_leaves_existing_drafts_passing_check(fake: FakeChatServer, cli, project: Path, capsys) -> None:
    """The new lens has no quote in the draft yet: `stale` says so; `check` has nothing to hold against it."""
    assert cli("draft", A, B).code == 0
    add_persona(project)
    assert check(project, capsys).out == "3 fact sheets, 5 personas, 1 draft: all good\n"


def test_make_check_runs_the_command() -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    shown = subprocess.run(["make", "-n", "-C", str(ROOT), "check", "VENV=/nonexistent"], capture_output=True,
                           text=True, check=True).stdout
    assert any(line.split()[-3:] == ["-m", "pipeline", "check"] for line in shown.splitlines()), shown


def test_ci_runs_check_after_lint_and_before_the_tests() -> None:
    script = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert script.index("make lint") < script.index("make check") < script.index("make test")
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "checks.yml").read_text())
    runs = [step["run"] for step in workflow["jobs"]["checks"]["steps"] if "run" in step]
    test = next(run for run in runs if run.startswith("make test"))
    assert runs.index("make lint") < runs.index("make check") < runs.index(test)
