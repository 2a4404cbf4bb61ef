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
