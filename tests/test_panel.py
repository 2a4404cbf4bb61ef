"""The panel is the persona files: how many reviewers the prompts and the page speak of comes from personas/."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipeline.render import counted
from tests.conftest import add_persona
from tests.fakeserver import FakeChatServer, reference, synthetic

A, B = "hf-inference-providers", "mistral-3-small"


def system_prompts(fake: FakeChatServer) -> list[str]:
    return [request["json"]["messages"][0]["content"] for request in fake.history]


def dek(project: Path) -> str:
    page = (project / "outputs" / f"{A}-vs-{B}.md").read_text(encoding="utf-8")
    return next(line for line in page.splitlines() if line.startswith("Which one should you ship with?"))


@pytest.mark.parametrize(("count", "words"), [(1, "one reviewer"), (2, "two reviewers"), (4, "four reviewers"),
                                              (5, "five reviewers"), (10, "ten reviewers"), (12, "12 reviewers")])
def test_counts_read_as_words_in_prose(count: int, words: str) -> None:
    assert counted(count, "reviewer") == words


def test_a_fifth_persona_makes_a_panel_of_five(fake: FakeChatServer, cli, project: Path) -> None:
    add_persona(project, "operator", "Operator")
    run = cli("draft", A, B)
    assert run.code == 0, run.err
    prompts = system_prompts(fake)
    assert len(prompts) == 10
    assert all(" on a panel of five reviewers for " in prompt for prompt in prompts), prompts[0]
    assert not any(re.search(r"\bfour\b", prompt) for prompt in prompts)
    assert "Two tools, five reviewers: each reviewer's verdict" in dek(project)
    page = (project / "outputs" / f"{A}-vs-{B}.md").read_text(encoding="utf-8")
    assert "### Operator · developer-experience engineer" in page and page.count("> “") == 10


def test_three_personas_make_a_panel_of_three(fake: FakeChatServer, cli, project: Path) -> None:
    (project / "personas" / "futurist.toml").unlink()
    assert cli("draft", A, B).code == 0
    assert all(" on a panel of three reviewers for " in prompt for prompt in system_prompts(fake))
    assert "Two tools, three reviewers: each" in dek(project)


def test_the_shipped_panel_of_four_says_four(fake: FakeChatServer, cli, project: Path) -> None:
    """Four personas render the same prompts as before the number came from the files: cached reviews still serve."""
    assert cli("draft", A, B).code == 0
    assert all(" on a panel of four reviewers for " in prompt for prompt in system_prompts(fake))
    assert "Two tools, four reviewers: each" in dek(project)


def test_adding_a_persona_is_a_new_prompt_for_every_lens(fake: FakeChatServer, cli, project: Path) -> None:
    """The panel size is in every system prompt, so a new lens means new reviews of the others too."""
    assert cli("draft", A, B).code == 0 and len(fake.history) == 8
    add_persona(project)
    run = cli("stale")
    assert run.code == 1, run.out
    for lens in ("builder", "skeptic", "buyer", "futurist", "operator"):
        assert f"{lens} quote on {A}" in run.out and f"{lens} quote on {B}" in run.out, run.out
    sent = len(fake.history)
    assert cli("refresh").code == 0 and len(fake.history) == sent + 10
    assert cli("stale").code == 0


def test_the_reference_fake_answers_a_lens_the_published_pages_lack() -> None:
    """The published pages have four lenses; a fifth gets the synthetic quote rather than a broken reply."""
    answer = reference({("builder", "Tool X"): "the published builder quote"})
    operator = {"messages": [{"role": "user", "content": "Lens: operator\nTool: Tool X"}]}
    builder = {"messages": [{"role": "user", "content": "Lens: builder\nTool: Tool X"}]}
    assert json.loads(answer(builder))["quote"] == "the published builder quote"
    assert json.loads(answer(operator)) == json.loads(synthetic(operator))
