"""``stale`` at scale: the rule (``stale.check``) is the only one; its answer for a draft is remembered under a key
that covers every input it reads, so an unchanged draft is not read or rendered again, and a remembered answer is
always the answer the rule gives."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pipeline.digests
import pipeline.stale
from pipeline.assemble import Page
from pipeline.cli import main
from pipeline.pin import pin
from pipeline.provenance import sidecar_path
from tests.conftest import ROOT
from tests.fakeserver import FakeChatServer

A, B, C = "hf-inference-providers", "mistral-3-small", "mistral-4b-edge"
PAIRS = ((A, B), (A, C), (B, C))


@pytest.fixture
def three_drafts(fake: FakeChatServer, cli) -> None:
    for a, b in PAIRS:
        assert cli("draft", a, b).code == 0


def counting(monkeypatch: pytest.MonkeyPatch, change: str = "", only: str = "") -> list[int]:
    """Count the pages ``stale`` renders; with ``change``, render them as if the layout code had changed (in the
    pages that show ``only``, when given)."""
    calls: list[int] = []
    original = pipeline.stale.assemble

    def assemble(*args: object, **kwargs: object) -> Page:
        calls.append(1)
        page = original(*args, **kwargs)  # type: ignore[arg-type]
        if change and only in page.text:
            return Page(page.text.replace("Which one should you ship with?", change), page.spans)
        return page

    monkeypatch.setattr(pipeline.stale, "assemble", assemble)
    return calls


def test_a_second_run_renders_no_page_of_an_unchanged_draft(three_drafts: None, cli,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    calls = counting(monkeypatch)
    run = cli("stale")
    assert run.code == 0 and "0 of 3 drafts stale" in run.out
    assert len(calls) == 3, "nothing remembered yet: the rule checks every draft"
    again = cli("stale")
    assert again.code == 0 and again.out == run.out
    assert len(calls) == 3, "the second run takes the answers the rule gave for the same inputs"


def test_a_changed_layout_with_unchanged_inputs_is_still_found_in_every_draft(three_drafts: None, cli,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    counting(monkeypatch, change="Which of the two should you ship with?")
    run = cli("stale")
    assert run.code == 1 and "3 of 3 drafts stale" in run.out, run.out
    assert run.out.count("page frame: the page layout changed") == 3


def test_a_layout_change_in_some_drafts_only_is_found_in_each(three_drafts: None, cli,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """No draft vouches for another: the first draft laid out as before says nothing of the others."""
    counting(monkeypatch, change="Which of the two should you ship with?", only="Mistral 4B Edge")
    run = cli("stale")
    assert run.code == 1 and "2 of 3 drafts stale" in run.out, run.out
    assert f"{A}-vs-{B}.md" not in run.out


def test_an_edited_or_changed_draft_takes_the_full_check(three_drafts: None, cli, project: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline.digests, "SETTLED", 0)  # files written a moment ago may be remembered
    assert cli("stale").code == 0
    draft = project / "outputs" / f"{A}-vs-{C}.md"
    draft.write_text(draft.read_text().replace("Which one should you ship with?", "Which to ship?"))
    sheet = project / "tools" / f"{C}.toml"
    sheet.write_text(sheet.read_text().replace('entry = "', 'entry = "From '))
    calls = counting(monkeypatch)
    run = cli("stale")
    assert run.code == 1 and "2 of 3 drafts stale" in run.out, run.out
    assert len(calls) == 2, "the two drafts whose inputs changed, and not the third"


_opened: list[str] | None = None


def _watch_opens(event: str, args: tuple[object, ...]) -> None:
    if _opened is not None and event == "open" and isinstance(args[0], str | Path):
        _opened.append(str(args[0]))


sys.addaudithook(_watch_opens)


def test_a_second_run_reads_no_draft_and_no_sidecar_of_an_unchanged_draft(three_drafts: None, cli, project: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    global _opened
    monkeypatch.setattr(pipeline.digests, "SETTLED", 0)
    assert cli("stale").code == 0
    _opened = []
    try:
        run = cli("stale")
    finally:
        opened, _opened = _opened, None
    assert run.code == 0 and "0 of 3 drafts stale" in run.out
    assert not [name for name in opened if name.startswith(str(project / "outputs"))], opened


def test_remembered_digests_never_change_the_answer(three_drafts: None, cli, project: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline.digests, "SETTLED", 0)
    assert cli("stale").code == 0
    sheet = project / "tools" / f"{C}.toml"
    original = sheet.read_text()
    sheet.write_text(original.replace('entry = "', 'entry = "From '))
    run = cli("stale")  # the inputs are compared anew
    assert run.code == 1 and "2 of 3 drafts stale" in run.out, run.out
    sheet.write_text(original)
    assert cli("stale").code == 0
    draft = project / "outputs" / f"{A}-vs-{B}.md"
    draft.write_text(draft.read_text().replace("## ", "<<<<<<< your edit\nmine\n=======\ntheirs\n>>>>>>> new\n## ", 1))
    run = cli("stale")  # the draft changed on disk: read again
    assert run.code == 1 and "1 unresolved conflict" in run.out, run.out


def test_a_change_in_the_pipeline_code_is_a_change_of_input(three_drafts: None, project: Path, tmp_path: Path) -> None:
    """The code that lays a page out is an input of every answer: a remembered answer does not outlive it. (A copy
    of the package, changed as a developer would change it, run as an editor runs it.)"""
    code = tmp_path / "code"
    shutil.copytree(ROOT / "pipeline", code / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))

    def stale() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pipeline", "--root", str(project), "stale"], cwd=code,
                              env={**os.environ, "PYTHONPATH": str(code)}, capture_output=True, text=True, timeout=120)

    first = stale()
    assert first.returncode == 0 and "0 of 3 drafts stale" in first.stdout, first.stdout + first.stderr
    with (code / "pipeline" / "render.py").open("a") as render:  # the page's text filter, changed
        render.write("\n\n_md_before = md\n\n\ndef md(text: object) -> str:\n"
                     "    return _md_before(text).replace('Edge', 'EDGE')\n")
    second = stale()  # names of the Edge model are now written in capitals: its two pages are laid out anew
    assert second.returncode == 1 and "2 of 3 drafts stale" in second.stdout, second.stdout + second.stderr
    assert f"{A}-vs-{B}.md" not in second.stdout


# --- the remembered answer is the rule's answer, whatever the edit ----------------------------------------------


def _draft(work: Path, n: int) -> Path:
    a, b = PAIRS[n % len(PAIRS)]
    return work / "outputs" / f"{a}-vs-{b}.md"


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace(old, new, 1) if old in text else text + new, encoding="utf-8")


def edit_quote(work: Path, n: int) -> None:
    """An editor rewrites a quote: an approved text the other drafts showing the same review take."""
    path = _draft(work, n)
    lines = path.read_text(encoding="utf-8").split("\n")
    quotes = [i for i, line in enumerate(lines) if line.startswith("> “")]
    index = quotes[n % len(quotes)]
    lines[index] = lines[index].replace("”", f" Edited {n}.”")
    path.write_text("\n".join(lines), encoding="utf-8")


def flip_verdict(work: Path, n: int) -> None:
    path = _draft(work, n)
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("**: Ship", "**: Skip", 1) if "**: Ship" in text else
                    text.replace("**: Skip", "**: Ship", 1), encoding="utf-8")


def add_conflict(work: Path, n: int) -> None:
    labelled = ("<<<<<<< your edit: a section", ">>>>>>> generated now") if n % 2 else ("<<<<<<<", ">>>>>>>")
    _replace(_draft(work, n), "\n## ", f"\n\n{labelled[0]}\n\nmine\n\n=======\n\ntheirs\n\n{labelled[1]}\n\n## ")


def recorded_key(work: Path, n: int) -> None:
    """A sidecar whose review was made from another prompt (as after a model change)."""
    sidecar = sidecar_path(_draft(work, n))
    if not sidecar.exists():
        return
    data = json.loads(sidecar.read_text(encoding="utf-8"))
    name = sorted(name for name, section in data["sections"].items() if section.get("key"))[n % 8]
    data["sections"][name]["key"] = "0" * 64
    sidecar.write_text(json.dumps(data, indent=1), encoding="utf-8")


def no_sidecar(work: Path, n: int) -> None:
    sidecar_path(_draft(work, n)).unlink(missing_ok=True)


def fact_sheet(work: Path, n: int) -> None:
    sheet = work / "tools" / f"{(A, B, C)[n % 3]}.toml"
    _replace(sheet, 'entry = "', f'entry = "From {n} ' if n % 2 else "# an editor's note\n" + 'entry = "')


def persona(work: Path, n: int) -> None:
    path = work / "personas" / ("builder.toml", "skeptic.toml")[n % 2]
    _replace(path, 'role = "', 'role = "senior ' if n % 3 else "# a note\n" + 'role = "')


def template(work: Path, n: int) -> None:
    if n % 2:
        _replace(work / "prompts" / "page.md.j2", "Which one should you ship with?", "Which should you ship?")
    else:
        _replace(work / "prompts" / "system.j2", "", "{# a comment #}")


def votes(work: Path, n: int) -> None:
    a, b = PAIRS[n % len(PAIRS)]
    (work / "outputs" / f"{a}-vs-{b}.votes.toml").write_text(f'"{a}" = {n % 7 + 1}\n"{b}" = 3\n', encoding="utf-8")


def pinned(work: Path, n: int) -> None:
    a, b = PAIRS[n % len(PAIRS)]
    if sidecar_path(_draft(work, n)).exists():  # only a draft with a sidecar can be pinned
        pin(_draft(work, n), [(f"card:{a}", f"builder:{b}", f"skeptic:{a}")[n % 3]])


def model_settings(work: Path, n: int) -> None:
    _replace(work / "pyproject.toml", "temperature = 0.7", f"temperature = 0.{n % 9 + 1}")


EDITS: list[Callable[[Path, int], None]] = [edit_quote, flip_verdict, add_conflict, recorded_key, no_sidecar,
                                            fact_sheet, persona, template, votes, pinned, model_settings]


def test_a_remembered_answer_is_the_rule_s_answer_whatever_changed(three_drafts: None, project: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Random edits to a project whose answers are remembered: ``stale`` with the remembered answers says what
    ``stale`` with none says (the same exit status, the same lines)."""
    monkeypatch.setattr(pipeline.digests, "SETTLED", 0)  # the drafts' own files are identified by their stamps
    edit_quote(project, 0)  # an approved text, lent to the other draft showing that review
    examples = iter(range(10_000))

    def stale(work: Path, cache: Path) -> tuple[int, str]:
        monkeypatch.setenv("VERDICTS_CACHE_DIR", str(cache))
        code = main(["--root", str(work), "stale"])
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(st.tuples(st.sampled_from(EDITS), st.integers(0, 50)), min_size=1, max_size=3))
    def remembered_or_not(edits: list[tuple[Callable[[Path, int], None], int]]) -> None:
        base = tmp_path / f"example-{next(examples)}"
        work = base / "project"
        shutil.copytree(project, work)
        before = stale(work, base / "remembered")  # every answer remembered, under the inputs as they were
        assert before[0] in (0, 1), before
        for edit, n in edits:
            edit(work, n)
        remembered = stale(work, base / "remembered")
        assert remembered == stale(work, base / "empty"), [(edit.__name__, n) for edit, n in edits]
        assert remembered == stale(work, base / "remembered"), "and the answer it remembers now is the same again"
        shutil.rmtree(base)

    remembered_or_not()
