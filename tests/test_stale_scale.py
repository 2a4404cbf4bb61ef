"""``stale`` at scale: a draft that is the page as generated, from unchanged inputs, is fresh without its page
being rendered again; a change to how pages are laid out is still found."""

from __future__ import annotations

from pathlib import Path

import pytest

import pipeline.stale
from pipeline.assemble import Page
from tests.fakeserver import FakeChatServer

A, B, C = "hf-inference-providers", "mistral-3-small", "mistral-4b-edge"


@pytest.fixture
def three_drafts(fake: FakeChatServer, cli) -> None:
    for a, b in ((A, B), (A, C), (B, C)):
        assert cli("draft", a, b).code == 0


def counting(monkeypatch: pytest.MonkeyPatch, change: str = "") -> list[int]:
    calls: list[int] = []
    original = pipeline.stale.assemble

    def assemble(*args: object, **kwargs: object) -> Page:
        calls.append(1)
        page = original(*args, **kwargs)  # type: ignore[arg-type]
        return Page(page.text.replace("Which one should you ship with?", change), page.spans) if change else page

    monkeypatch.setattr(pipeline.stale, "assemble", assemble)
    return calls


def test_unchanged_drafts_are_fresh_without_rendering_their_pages(three_drafts: None, cli,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    calls = counting(monkeypatch)
    run = cli("stale")
    assert run.code == 0 and "0 of 3 drafts stale" in run.out
    assert len(calls) == 1, "only the first draft is laid out again, to check that the layout code agrees"


def test_a_changed_layout_with_unchanged_inputs_is_still_found_in_every_draft(three_drafts: None, cli,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    counting(monkeypatch, change="Which of the two should you ship with?")
    run = cli("stale")
    assert run.code == 1 and "3 of 3 drafts stale" in run.out, run.out
    assert run.out.count("page frame: the page layout changed") == 3


def test_an_edited_or_changed_draft_takes_the_full_check(three_drafts: None, cli, project: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    draft = project / "outputs" / f"{A}-vs-{C}.md"
    draft.write_text(draft.read_text().replace("Which one should you ship with?", "Which to ship?"))
    sheet = project / "tools" / f"{C}.toml"
    sheet.write_text(sheet.read_text().replace('entry = "', 'entry = "From '))
    calls = counting(monkeypatch)
    run = cli("stale")
    assert run.code == 1 and "2 of 3 drafts stale" in run.out, run.out
    assert len(calls) == 3, "the first draft (fresh: the check), and the two that changed"


def test_a_second_run_reads_no_sidecar_of_an_unchanged_draft(three_drafts: None, cli,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.digests
    import pipeline.provenance

    monkeypatch.setattr(pipeline.digests, "SETTLED", 0)  # files written a moment ago may be remembered
    assert cli("stale").code == 0
    reads: list[Path] = []
    original = pipeline.provenance.read_sidecar

    def read_sidecar(draft: Path) -> object:
        reads.append(draft)
        return original(draft)

    monkeypatch.setattr(pipeline.provenance, "read_sidecar", read_sidecar)
    run = cli("stale")
    assert run.code == 0 and "0 of 3 drafts stale" in run.out
    assert len(reads) == 1, "only the first draft's sidecar, for the full check that vouches for the others"


def test_remembered_digests_never_change_the_answer(three_drafts: None, cli, project: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.digests

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


def test_the_digest_knows_the_conflict_marks_merge_writes() -> None:
    from pipeline.merge import LEGACY_NOTE, START
    from pipeline.provenance import CONFLICT_MARKS

    assert CONFLICT_MARKS == (START, LEGACY_NOTE)
