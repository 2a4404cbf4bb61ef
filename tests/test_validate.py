"""The reply rules, calibrated on the published reference quotes."""

from __future__ import annotations

import json

import pytest

from pipeline.load import load_personas
from pipeline.validate import NeedsReask, validate_reply
from tests.conftest import FIXTURE
from tests.fakeserver import OFFBEAT, SYNTHETIC, reference_quotes

PERSONAS = {p.lens: p for p in load_personas(FIXTURE)}  # the test project's; `check` runs the live ones on drafts


def reply(quote: str, verdict: str = "ship") -> str:
    return json.dumps({"verdict": verdict, "quote": quote})


@pytest.mark.reference
@pytest.mark.parametrize(("lens", "tool"), sorted(reference_quotes()))
def test_every_published_quote_passes_for_its_lens(lens: str, tool: str) -> None:
    quote = reference_quotes()[(lens, tool)]
    assert validate_reply(PERSONAS[lens], reply(quote)).quote == quote


@pytest.mark.parametrize("lens", PERSONAS)
def test_fluent_paragraph_without_beats_fails(lens: str) -> None:
    with pytest.raises(NeedsReask) as caught:
        validate_reply(PERSONAS[lens], reply(OFFBEAT.format(name="Mistral 4B Edge")))
    assert any("no sentence does this" in problem for problem in caught.value.problems)


@pytest.mark.reference
@pytest.mark.parametrize("lens", PERSONAS)
def test_a_published_quote_fails_under_another_lens(lens: str) -> None:
    others = [q for (other, _), q in reference_quotes().items() if other != lens]
    failing = 0
    for quote in others:
        try:
            validate_reply(PERSONAS[lens], reply(quote))
        except NeedsReask:
            failing += 1
    assert failing >= len(others) * 0.75, f"{lens} checks accept most quotes written for other lenses"


def good(lens: str = "buyer") -> str:
    return SYNTHETIC[lens].format(name="Mistral 4B Edge", slug="mistral-4b-edge")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        ("I think it should ship.", "not a JSON object"),
        ('["ship", "fine"]', "not an object"),
        (reply(good(), verdict="maybe"), '"verdict" must be "ship" or "skip"'),
        (json.dumps({"quote": good()}), '"verdict" is missing'),
        (reply("Too short to count."), "words"),
        (reply(good() + " " + good()), "words"),
        (reply(good().replace(". The moat", ".\n\nThe moat")), "one paragraph"),
        (reply("# Verdict\n" + good()), "headings"),
        (reply("- " + good()), "list"),
    ],
)
def test_invalid_replies_say_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(NeedsReask) as caught:
        validate_reply(PERSONAS["buyer"], text)
    assert any(problem in p for p in caught.value.problems), caught.value.problems


def test_fenced_reply_and_extra_keys_are_accepted() -> None:
    body = json.dumps({"verdict": "Skip", "quote": "“" + good() + "”", "confidence": 0.4})
    result = validate_reply(PERSONAS["buyer"], f"```json\n{body}\n```")
    assert result.verdict == "skip" and result.quote == good()
