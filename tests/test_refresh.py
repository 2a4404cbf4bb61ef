"""Stale drafts, edit-preserving refresh and pins, against the fake server through the real client."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from tests.fakeserver import FakeChatServer, attentive, lens_and_tool

GOLDEN = Path(__file__).parent / "golden"
A, B, C = "hf-inference-providers", "mistral-3-small", "mistral-4b-edge"
C_NAME = "Mistral 4B Edge"


@pytest.fixture
def fake_attentive(fake: FakeChatServer) -> FakeChatServer:
    fake.responder = attentive
    return fake


def page(project: Path, a: str, b: str) -> Path:
    return project / "outputs" / f"{a}-vs-{b}.md"


def set_entry(project: Path, slug: str, entry: str) -> None:
    tool = project / "tools" / f"{slug}.toml"
    text, n = re.subn(r'^entry = ".*"$', f'entry = "{entry}"', tool.read_text(), flags=re.MULTILINE)
    assert n == 1
    tool.write_text(text)


def quote_line(text: str, name: str, lens_title: str) -> str:
    """The quote line on ``name`` in the lens's row of the scorecard."""
    row = text.split(f"### {lens_title}", 1)[1]
    return row.split(f"**{name}**:", 1)[1].split("\n> ", 1)[1].split("\n", 1)[0]


def test_stale_and_refresh_scenario(fake_attentive: FakeChatServer, cli, project: Path) -> None:
    assert cli("draft", A, B).code == 0 and cli("draft", A, C).code == 0
    assert len(fake_attentive.history) == 12
    assert cli("stale").code == 0
    untouched = page(project, A, B).read_text()

    # The editor rewrites the builder's quote on A in the A-vs-C draft; then C's price changes.
    draft_ac = page(project, A, C)
    original = draft_ac.read_text()
    builder_on_a = quote_line(original, "Hugging Face Inference Providers Marketplace", "Builder")
    edited = original.replace(builder_on_a, "“Edited by hand: " + builder_on_a[1:])
    draft_ac.write_text(edited)
    set_entry(project, C, "$0.04 / M tokens")

    stale = cli("stale")
    assert stale.code == 1
    assert f"outputs/{A}-vs-{C}.md: 5 stale sections" in stale.out
    # A draft without the changed tool is stale only for the edit: the hand-edited quote is the approved text of
    # that review now, which A-vs-B shows an older text of (issue 15).
    assert (f"outputs/{A}-vs-{B}.md: 1 stale section\n  builder quote on {A}: shows an older text of this review than "
            f"the one an editor approved in outputs/{A}-vs-{C}.md\n") in stale.out
    assert f"card of {C}: tools/{C}.toml changed" in stale.out
    for lens in ("builder", "skeptic", "buyer", "futurist"):
        assert f"{lens} quote on {C}: tools/{C}.toml changed" in stale.out
    assert stale.out.count(f"quote on {A}") == 1

    before = len(fake_attentive.history)
    refreshed = cli("refresh")
    assert refreshed.code == 0, refreshed.err
    sent = fake_attentive.history[before:]
    assert len(sent) == 4, "only the four reviews of the changed tool are requested"
    assert {lens_and_tool(r["json"])[1] for r in sent} == {C_NAME}

    text = draft_ac.read_text()
    assert "> “Edited by hand: The core" in text, "the hand edit survives"
    assert "- Entry: **$0.04 / M tokens**" in text, "the card shows the new entry"
    assert quote_line(text, C_NAME, "Skeptic").endswith("Rivals only have to beat $0.04 / M tokens to win the "
                                                         "comparison.”")
    assert "conflict" not in text
    assert page(project, A, B).read_text() == untouched.replace(builder_on_a, "“Edited by hand: " + builder_on_a[1:])
    assert cli("stale").code == 0
    assert cli("refresh").code == 0 and len(fake_attentive.history) == before + 4, "a second refresh sends nothing"


def test_changes_that_cannot_alter_a_prompt_or_the_page_are_not_stale(fake: FakeChatServer, cli,
                                                                        project: Path) -> None:
    assert cli("draft", A, B).code == 0
    tool = project / "tools" / f"{B}.toml"
    tool.write_text("# reviewed by the desk on Monday\n\n" + tool.read_text().replace("\n", "\n\n", 2))
    persona = project / "personas" / "skeptic.toml"
    persona.write_text(persona.read_text() + "\n# a note for the next editor\n")
    for name in ("user.j2", "page.md.j2"):
        template = project / "prompts" / name
        template.write_text("{# a comment #}" + template.read_text())
    run = cli("stale")
    assert run.code == 0 and "0 of 1 draft stale." in run.out, run.out
    set_entry(project, B, "Free tier")
    assert cli("stale").code == 1


def test_settings_and_template_changes_name_their_reason(fake: FakeChatServer, cli, project: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli("draft", A, B).code == 0
    pyproject = project / "pyproject.toml"
    before = pyproject.read_text()
    pyproject.write_text(before.replace('model = "Qwen/Qwen2.5-72B-Instruct"', 'model = "another/model"'))
    run = cli("stale")
    assert run.code == 1 and "model settings changed (model: Qwen/Qwen2.5-72B-Instruct → another/model)" in run.out
    pyproject.write_text(before)
    page_template = project / "prompts" / "page.md.j2"
    page_template.write_text(page_template.read_text().replace("Which one should you ship with?",
                                                               "Which one belongs in your stack?"))
    run = cli("stale")
    assert run.code == 1 and "page frame: prompts/page.md.j2 changed" in run.out
    assert "quote on" not in run.out, "the page template feeds no prompt"


def test_stale_is_the_same_in_every_shell(fake: FakeChatServer, cli, project: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """What the environment chose at draft time is recorded, not compared with the next shell's environment."""
    monkeypatch.setenv("VERDICTS_MODEL", "served/by-env")
    assert cli("draft", A, B).code == 0
    sidecar = json.loads((project / "outputs" / f"{A}-vs-{B}.provenance.json").read_text())
    recorded = sidecar["sections"][f"skeptic:{A}"]["environment"]
    assert recorded == {"backend": "endpoint", "base_url": fake.base_url.rstrip("/"), "model": "served/by-env"}
    for shell in ({}, {"VERDICTS_BACKEND": "hf", "HF_TOKEN": "hf_x" * 8}, {"VERDICTS_MODEL": "other/model"},
                  {"VERDICTS_BASE_URL": "http://127.0.0.1:9/v1", "VERDICTS_TEMPERATURE": "0.1"}):
        for name in ("VERDICTS_BASE_URL", "VERDICTS_MODEL"):
            monkeypatch.delenv(name, raising=False)
        for name, value in shell.items():
            monkeypatch.setenv(name, value)
        run = cli("stale")
        assert run.code == 0, (shell, run.out)
        for name in shell:
            monkeypatch.delenv(name)
    # A change to the repository's inputs still counts: the persona's temperature.
    persona = project / "personas" / "skeptic.toml"
    persona.write_text(persona.read_text().replace("min_beats = 3", "min_beats = 3\ntemperature = 0.2"))
    run = cli("stale")
    assert run.code == 1 and "temperature: 0.7 → 0.2" in run.out


def test_conflicts_keep_the_editor_and_show_the_generation(fake_attentive: FakeChatServer, cli,
                                                           project: Path) -> None:
    assert cli("draft", A, B).code == 0
    draft_ab = page(project, A, B)
    original = draft_ab.read_text()
    b_name = "Mistral 3 Small (24B)"
    builder, skeptic = quote_line(original, b_name, "Builder"), quote_line(original, b_name, "Skeptic")
    mine = "> “My own verdict on this model, written by the editor, which no refresh may lose.”"
    edited = original.replace(builder, mine)
    # An edit in the card's description, away from the entry price that will change: merged cleanly.
    edited = edited.replace("An open-weight language model of 24 billion", "An open-weight model of 24 billion")
    draft_ab.write_text(edited)
    assert cli("pin", f"outputs/{A}-vs-{B}.md", f"skeptic:{B}").code == 0
    assert cli("pin", f"{A}-vs-{B}", "nonsense:x").code == 2
    set_entry(project, B, "$0.10 / M tokens")

    before = len(fake_attentive.history)
    body = project / "pr-body.md"
    run = cli("refresh", "--pr-body", str(body))
    assert run.code == 5, run.err
    sent = fake_attentive.history[before:]
    assert sorted(lens_and_tool(r["json"])[0] for r in sent) == ["builder", "buyer", "futurist"], \
        "the pinned skeptic section is not regenerated"

    text = draft_ab.read_text()
    assert mine in text, "the editor's text survives"
    block = text[text.index("<<<<<<< "):text.index(">>>>>>> ")]
    assert block.startswith(f"<<<<<<< your edit: builder quote on {B}\n\n")
    assert mine in block.split("\n||||||| generated last time\n\n", 1)[0], "the editor's side comes first"
    generated = block.split("\n=======\n", 1)[1]
    assert "Entry is $0.10 / M tokens, which sets the bar.”" in generated, "the new generation is in the block"
    assert builder in block.split("\n=======\n", 1)[0], "so is the text as generated before"
    assert quote_line(text, b_name, "Skeptic") == skeptic, "the pinned section is untouched"
    assert "An open-weight model of 24 billion" in text and "- Entry: **$0.10 / M tokens**" in text
    assert "conflict" in run.out and f"builder quote on {B}" in run.out

    record = json.loads((project / "outputs" / f"{A}-vs-{B}.provenance.json").read_text())
    assert record["pinned"] == [f"skeptic:{B}"]
    run = cli("stale")
    assert run.code == 1, "an unresolved conflict is reported until an editor settles it"
    assert "unresolved conflict" in run.out and f"builder quote on {B}: keep the text you want" in run.out
    assert "0 of 1 draft stale; 1 draft with unresolved conflicts." in run.out

    golden = GOLDEN / "refresh-pr-body.md"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.write_text(body.read_text(), encoding="utf-8")
    assert body.read_text() == golden.read_text(encoding="utf-8"), "PR body differs from golden (UPDATE_GOLDEN=1)"


def test_an_unresolved_conflict_is_kept_replaced_and_then_settled(fake_attentive: FakeChatServer, cli,
                                                                  project: Path) -> None:
    """A conflict is reported until an editor settles it; a new one on the same section replaces the old block."""
    assert cli("draft", A, B).code == 0
    draft_ab = page(project, A, B)
    mine = "> “The editor's own builder quote.”"
    draft_ab.write_text(draft_ab.read_text().replace(quote_line(draft_ab.read_text(), "Mistral 3 Small (24B)",
                                                                "Builder"), mine))
    set_entry(project, B, "$1 / M tokens")
    assert cli("refresh").code == 5
    body = project / "pr-body.md"
    again = cli("refresh", "--pr-body", str(body))
    assert again.code == 5, "nothing new to merge, but an editor must still look"
    assert "Unresolved conflicts" in body.read_text() and f"builder quote on {B}" in body.read_text()
    assert draft_ab.read_text().count("<<<<<<< ") == 1

    set_entry(project, B, "$2 / M tokens")
    assert cli("refresh").code == 5
    text = draft_ab.read_text()
    assert text.count("<<<<<<< ") == 1 and text.count(">>>>>>> ") == 1, "the new conflict replaced the old block"
    before, now = text.split("\n=======\n", 1)
    assert "Entry is $2 / M tokens" in now.split(">>>>>>> ")[0] and mine in text
    assert before.count("Entry is $1 / M tokens") == 1, "the last generation, once, as the block's base"

    # The editor keeps their own text: the markers and the other side go.
    start, end = text.index("\n<<<<<<< "), text.index(">>>>>>> ")
    draft_ab.write_text(text[:start] + "\n" + mine + text[text.index("\n", end):])
    assert cli("stale").code == 0
    assert cli("refresh").code == 0


def test_a_draft_without_provenance_is_stale_and_not_refreshed(fake: FakeChatServer, cli, project: Path) -> None:
    assert cli("draft", A, B).code == 0
    (project / "outputs" / f"{A}-vs-{B}.provenance.json").unlink()
    run = cli("stale")
    assert run.code == 1 and "no provenance record" in run.out
    run = cli("refresh")
    assert run.code == 5 and "no provenance record" in run.out and "--force" in run.out


def test_brackets_in_generated_text_survive_the_sidecar(fake_attentive: FakeChatServer, cli, project: Path) -> None:
    set_entry(project, B, "Tiers [1,5] USD")
    assert cli("draft", A, B).code == 0
    set_entry(project, B, "Tiers [2,6] USD")
    run = cli("refresh")
    assert run.code == 0 and "conflict" not in page(project, A, B).read_text(), run.out
    assert "- Entry: **Tiers [2,6] USD**" in page(project, A, B).read_text()


def test_draft_again_keeps_pins(fake_attentive: FakeChatServer, cli, project: Path) -> None:
    assert cli("draft", A, B).code == 0
    skeptic = quote_line(page(project, A, B).read_text(), "Mistral 3 Small (24B)", "Skeptic")
    assert cli("pin", f"{A}-vs-{B}", f"skeptic:{B}").code == 0
    set_entry(project, B, "$3 / M tokens")
    assert cli("draft", A, B).code == 0
    text = page(project, A, B).read_text()
    assert quote_line(text, "Mistral 3 Small (24B)", "Skeptic") == skeptic and "- Entry: **$3 / M tokens**" in text
    assert json.loads((project / "outputs" / f"{A}-vs-{B}.provenance.json").read_text())["pinned"] == [f"skeptic:{B}"]


def test_a_layout_change_inside_quotes_is_stale_and_refreshed_without_requests(fake: FakeChatServer, cli,
                                                                               project: Path) -> None:
    assert cli("draft", A, B).code == 0
    template = project / "prompts" / "page.md.j2"
    template.write_text(template.read_text().replace("> “{{ review.quote | md }}”", "> “{{ review.quote | md }}” ✦"))
    run = cli("stale")
    assert run.code == 1 and f"builder quote on {B}: prompts/page.md.j2 changed" in run.out
    before = len(fake.history)
    assert cli("refresh").code == 0 and len(fake.history) == before
    assert page(project, A, B).read_text().count("” ✦") == 8
    assert cli("stale").code == 0


def test_rewrapping_a_multiline_string_is_not_stale(fake: FakeChatServer, cli, project: Path) -> None:
    assert cli("draft", A, B).code == 0
    tool = project / "tools" / f"{B}.toml"
    text = tool.read_text()
    description = re.search(r'^description = """(.*?)"""', text, re.MULTILINE | re.DOTALL)
    assert description and "\n" in description.group(1).strip()
    one_line = " ".join(description.group(1).split())
    tool.write_text(text.replace(description.group(0), f'description = "{one_line}"'))
    run = cli("stale")
    assert run.code == 0, run.out


def test_a_draft_whose_tool_is_gone_does_not_block_the_others(fake_attentive: FakeChatServer, cli,
                                                              project: Path) -> None:
    assert cli("draft", A, B).code == 0 and cli("draft", A, C).code == 0
    (project / "tools" / f"{C}.toml").unlink()
    set_entry(project, B, "$5 / M tokens")
    run = cli("stale")
    assert run.code == 1 and f"tools/{C}.toml no longer exists" in run.out and f"card of {B}" in run.out, run.out
    run = cli("refresh")
    assert run.code == 5 and f"{A}-vs-{C}.md: not refreshed" in run.out
    assert "- Entry: **$5 / M tokens**" in page(project, A, B).read_text()


def test_a_corrupt_sidecar_is_one_clear_error(fake: FakeChatServer, cli, project: Path) -> None:
    assert cli("draft", A, B).code == 0
    sidecar = project / "outputs" / f"{A}-vs-{B}.provenance.json"
    sidecar.write_text(sidecar.read_text().replace(f'"tools": ["{A}", "{B}"]', f'"tools": ["{A}", "{A}"]'))
    run = cli("stale")
    assert run.code == 2 and f"{sidecar}: tools: " in run.err and "Traceback" not in run.err


def test_crlf_drafts_stay_crlf_and_a_draft_named_twice_is_merged_once(fake_attentive: FakeChatServer, cli,
                                                                      project: Path) -> None:
    assert cli("draft", A, B).code == 0
    draft_ab = page(project, A, B)
    builder = quote_line(draft_ab.read_text(), "Mistral 3 Small (24B)", "Builder")
    draft_ab.write_bytes(draft_ab.read_text().replace(builder, "> “Mine.”").replace("\n", "\r\n").encode())
    set_entry(project, B, "$7 / M tokens")
    run = cli("refresh", f"{A}-vs-{B}", f"outputs/{A}-vs-{B}.md")
    assert run.code == 5
    raw = draft_ab.read_bytes().decode()
    assert raw.count("\r\n") == raw.count("\n") and raw.count("<<<<<<< your edit") == 1
