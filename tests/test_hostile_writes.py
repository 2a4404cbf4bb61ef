"""Issue 23: where a run writes. An editor's save that lands while refresh writes the same draft is merged, never
overwritten; output flags never write over editorial files; every place a run writes is checked before the first
request; a killed write leaves nothing that git would commit."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fakeserver import FakeChatServer, attentive
from tests.test_refresh import page, set_entry

ROOT = Path(__file__).resolve().parent.parent
A, B = "hf-inference-providers", "mistral-3-small"

_on_temporary: list[Callable[[str], None]] = []


def _audit(event: str, args: tuple[object, ...]) -> None:
    if event == "tempfile.mkstemp" and _on_temporary:
        _on_temporary[0](str(args[0]))


sys.addaudithook(_audit)  # for the module: a hook cannot be removed, so it does nothing unless a test sets one


@pytest.fixture
def when_writing(request: pytest.FixtureRequest):
    """``when_writing(draft, save)``: ``save()`` runs each time a temporary file for ``draft`` is made, that is
    after the draft was read and merged, just before it is replaced: an editor's save landing mid-write."""

    def install(draft: Path, save: Callable[[], None]) -> None:
        _on_temporary.append(lambda temporary: save() if Path(temporary).name.startswith(f".{draft.name}.") else None)

    yield install
    _on_temporary.clear()


def test_an_editors_save_during_the_write_is_merged_not_overwritten(fake: FakeChatServer, cli, project: Path,
                                                                    when_writing) -> None:
    fake.responder = attentive
    assert cli("draft", A, B).code == 0
    draft = page(project, A, B)
    set_entry(project, B, "$0.30 / M tokens")
    saves = []

    def save() -> None:
        if not saves:  # the editor saves once, while the refresh is writing
            text = draft.read_text()
            draft.write_text(text.replace("An open-weight language model", "An open-weight model, saved mid-refresh,"))
            saves.append(time.time())

    when_writing(draft, save)
    run = cli("refresh")
    assert saves and run.code == 0, run.out + run.err
    text = draft.read_text()
    assert "An open-weight model, saved mid-refresh," in text, "the editor's save is kept"
    assert "- Entry: **$0.30 / M tokens**" in text, "and merged with the refresh"
    assert cli("stale").code == 0


def test_an_editor_saving_through_every_attempt_keeps_their_file(fake: FakeChatServer, cli, project: Path,
                                                                 when_writing) -> None:
    fake.responder = attentive
    assert cli("draft", A, B).code == 0
    draft = page(project, A, B)
    sidecar = draft.with_suffix("").with_suffix(".provenance.json")
    sidecar_before = sidecar.read_text()
    set_entry(project, B, "$0.40 / M tokens")
    saves = []

    def save() -> None:
        saves.append(1)
        draft.write_text(draft.read_text() + f"\nThe editor's note, save {len(saves)}.\n")

    when_writing(draft, save)
    run = cli("refresh")
    assert run.code == 5 and "changed on disk 3 times while refresh was writing it" in run.out, run.out
    text = draft.read_text()
    assert "The editor's note, save 3." in text and "$0.40" not in text, "the file is the editor's last save"
    assert sidecar.read_text() == sidecar_before, "the record still describes the page as last generated"
    assert not list(draft.parent.glob(".*verdicts-tmp")), "no temporary is left"


@pytest.mark.parametrize("target", ["tools/mistral-3-small.toml", "personas/skeptic.toml", "prompts/page.md.j2",
                                    "pyproject.toml", f"outputs/{A}-vs-{B}.md",
                                    f"outputs/{A}-vs-{B}.provenance.json", "calibration/corpus/w1.jsonl"])
def test_output_flags_never_write_over_editorial_files(fake: FakeChatServer, cli, project: Path,
                                                       target: str) -> None:
    assert cli("draft", A, B).code == 0
    set_entry(project, B, "$0.50 / M tokens")  # so a refresh would send requests
    before = {path: path.read_bytes() for path in project.rglob("*") if path.is_file()
              and ".cache" not in path.parts}
    sent = len(fake.history)
    for run in (cli("preview", f"{A}-vs-{B}", "--out", target), cli("refresh", "--pr-body", target)):
        assert run.code == 2, run.out + run.err
        assert f"{target} is an editorial file" in run.err and "never written over" in run.err
        assert run.err.count("error:") == 1 and "Traceback" not in run.err
    assert len(fake.history) == sent, "the refresh sent nothing"
    assert {path: path.read_bytes() for path in before} == before, "nothing was written over"
    assert cli("preview", f"{A}-vs-{B}", "--out", "preview.html").code == 0, "elsewhere is fine"


def test_a_new_draft_into_a_read_only_outputs_folder_is_refused_before_any_request(fake: FakeChatServer, cli,
                                                                                   project: Path) -> None:
    outputs = project / "outputs"
    outputs.mkdir()
    outputs.chmod(0o555)
    try:
        run = cli("draft", A, B)
    finally:
        outputs.chmod(0o755)
    assert run.code == 2 and f"{outputs}: read-only folder" in run.err, run.err
    assert fake.history == [] and not list(outputs.iterdir())


def test_a_cache_whose_failed_folder_is_a_file_is_refused_before_any_request(fake: FakeChatServer, cli,
                                                                             project: Path) -> None:
    cache = Path(os.environ["VERDICTS_CACHE_DIR"])
    cache.mkdir(parents=True)
    (cache / "failed").write_text("not a folder")
    run = cli("draft", A, B)
    assert run.code == 2 and f"{cache / 'failed'}: is a file, not a folder" in run.err, run.err
    assert fake.history == [] and not (project / "outputs").exists()
    set_entry(project, B, "$0.60 / M tokens")
    (cache / "failed").unlink()
    assert cli("draft", A, B).code == 0
    (cache / "failed").mkdir(exist_ok=True)
    (cache / "failed").rmdir()
    (cache / "failed").write_text("not a folder")
    set_entry(project, B, "$0.70 / M tokens")
    sent = len(fake.history)
    run = cli("refresh")
    assert run.code == 2 and "is a file, not a folder" in run.err and len(fake.history) == sent


def test_a_killed_write_leaves_nothing_git_would_commit_and_the_next_run_cleans_it(fake: FakeChatServer, cli,
                                                                                   project: Path,
                                                                                   when_writing) -> None:
    named: list[str] = []
    draft = page(project, A, B)
    when_writing(draft, lambda: None)
    _on_temporary.insert(0, named.append)  # the temporary a draft writes through, as it names it
    assert cli("draft", A, B).code == 0
    temporary = Path(named[0])
    assert temporary.parent == draft.parent and not temporary.exists()
    # What a `kill -9` between the write and the rename leaves: git, with the project's .gitignore, ignores it.
    ignored = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "--no-index", "-q",
                              f"outputs/{temporary.name}"])
    assert ignored.returncode == 0, f"{temporary.name} would be committed by `git add outputs`"
    temporary.write_text("half a page")
    old = time.time() - 3600
    os.utime(temporary, (old, old))
    fresh = draft.parent / f".{draft.name}.fresh{''.join('x' for _ in range(3))}.verdicts-tmp"
    fresh.write_text("a write under way elsewhere")
    set_entry(project, B, "$0.80 / M tokens")
    assert cli("refresh").code == 0
    assert not temporary.exists(), "a stale temporary is removed by the next run"
    assert fresh.exists(), "one that may belong to a write under way is left"


def test_a_draft_deleted_while_refresh_writes_it_does_not_stop_the_others(fake: FakeChatServer, cli, project: Path,
                                                                          when_writing) -> None:
    fake.responder = attentive
    assert cli("draft", A, B).code == 0 and cli("draft", A, "mistral-4b-edge").code == 0
    doomed = page(project, A, B)
    set_entry(project, A, "$0.90 / M tokens")  # both drafts are stale
    when_writing(doomed, lambda: doomed.unlink(missing_ok=True))  # the editor deletes it as refresh writes it
    run = cli("refresh")
    assert run.code == 5 and "Traceback" not in run.err, run.out + run.err
    assert f"outputs/{A}-vs-{B}.md: not refreshed" in run.out
    assert "- Entry: **$0.90 / M tokens**" in page(project, A, "mistral-4b-edge").read_text(), "the other is refreshed"
