"""A refresh an editor can trust unattended (issue 22): after a refresh that exits 0, ``stale`` finds nothing; an
approved quote is never reverted; one failing review does not sink the rest; ``accept`` is offline and free;
``check`` reports what is not publishable."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fakeserver import FakeChatServer, lens_and_tool, synthetic

A, B, C = "hf-inference-providers", "mistral-3-small", "mistral-4b-edge"
A_NAME, B_NAME = "Hugging Face Inference Providers Marketplace", "Mistral 3 Small (24B)"
CONTRARIAN = "Today you are in a contrarian mood."


def page(project: Path, a: str, b: str) -> Path:
    return project / "outputs" / f"{a}-vs-{b}.md"


def all_ship_unless_contrarian(request: dict) -> str:
    """Every lens ships, until a persona's text tells the lens to be contrarian: then it skips."""
    reply = json.loads(synthetic(request))
    text = "\n".join(str(m.get("content", "")) for m in request.get("messages", []))
    reply["verdict"] = "skip" if CONTRARIAN in text else "ship"
    return json.dumps(reply)


def make_contrarian(project: Path, lens: str) -> None:
    persona = project / "personas" / f"{lens}.toml"
    text = persona.read_text(encoding="utf-8")
    assert 'voice = """\n' in text
    persona.write_text(text.replace('voice = """\n', f'voice = """\n{CONTRARIAN} ', 1), encoding="utf-8")


def test_a_refresh_that_flips_a_verdict_under_a_hand_edit_updates_panel_ship(fake: FakeChatServer, cli,
                                                                             project: Path) -> None:
    fake.responder = all_ship_unless_contrarian
    assert cli("draft", A, B).code == 0
    draft = page(project, A, B)
    text = draft.read_text()
    assert text.count("- Panel ship: **100%**") == 2
    # Any hand edit on the page, away from the verdicts and the cards' panel ship.
    draft.write_text(text.replace("An open-weight language model of 24 billion", "An open-weight model of 24 billion"))
    make_contrarian(project, "skeptic")

    run = cli("refresh")
    assert run.code == 0, run.out + run.err
    text = draft.read_text()
    assert f"**{A_NAME}**: Skip" in text and f"**{B_NAME}**: Skip" in text
    assert text.count("- Panel ship: **75%**") == 2, "the cards follow the new verdicts on the page"
    assert "An open-weight model of 24 billion" in text, "the hand edit is kept"
    stale = cli("stale")
    assert stale.code == 0, stale.out
