"""End to end: the real huggingface_hub client against the fake chat-completions server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from tests.fakeserver import (
    OFFBEAT,
    REFERENCE_DIR,
    REFERENCE_PANEL,
    FakeChatServer,
    Scripted,
    offbeat,
    reference,
    reference_quotes,
)

GOLDEN = Path(__file__).parent / "golden"
PAIRS = [("hf-inference-providers", "mistral-3-small"), ("hf-inference-providers", "mistral-4b-edge")]


def page_of(project: Path, a: str, b: str) -> str:
    return (project / "outputs" / f"{a}-vs-{b}.md").read_text(encoding="utf-8")


def quotes_in(page: str) -> list[str]:
    return re.findall(r"^> “(.*)”$", page, re.MULTILINE)


@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_page_matches_golden(fake: FakeChatServer, draft, project: Path, a: str, b: str) -> None:
    run = draft(a, b)
    assert run.code == 0, run.err
    page = page_of(project, a, b)
    golden = GOLDEN / f"{a}-vs-{b}.md"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.write_text(page, encoding="utf-8")
    assert page == golden.read_text(encoding="utf-8"), "page differs from the golden file (UPDATE_GOLDEN=1)"


def test_page_has_every_element_in_reference_order(fake: FakeChatServer, draft, project: Path) -> None:
    assert draft("hf-inference-providers", "mistral-3-small").code == 0
    page = page_of(project, "hf-inference-providers", "mistral-3-small")
    a, b = "Hugging Face Inference Providers Marketplace", "Mistral 3 Small (24B)"
    expected = [
        "AI tool comparison", f"# {a} vs {b}", "Which one should you ship with?",
        "*Developer Tools*", f"## {a}", "**One endpoint and one bill", "- Panel ship: **75%**",
        "- Community: **—**", "- Entry: **Free**", "A routing layer from Hugging Face",
        "*Developer Tools*", f"## {b}", "**A 24B open-weight model", "- Panel ship: **75%**",
        "- Community: **—**", "- Entry: **Free**", "An open-weight language model of 24 billion",
        "## Reviewer scorecard",
        "### Builder", f"**{a}**: Ship", "> “", f"**{b}**: Ship", "> “",
        "### Skeptic", f"**{a}**: Skip", "> “", f"**{b}**: Skip", "> “",
        "### Buyer", f"**{a}**: Ship", "> “", f"**{b}**: Ship", "> “",
        "### Futurist", f"**{a}**: Ship", "> “", f"**{b}**: Ship", "> “",
        "Weekly AI Tool Verdicts",
    ]
    position = 0
    for element in expected:
        found = page.find(element, position)
        assert found >= 0, f"{element!r} missing after position {position}"
        position = found + len(element)
    assert len(quotes_in(page)) == 8


def test_reviews_are_cached_and_shared_between_comparisons(fake: FakeChatServer, draft) -> None:
    assert draft("hf-inference-providers", "mistral-3-small").code == 0
    assert len(fake.history) == 8
    again = draft("hf-inference-providers", "mistral-3-small")
    assert again.code == 0 and len(fake.history) == 8, "a warm draft must send no request"
    assert "0 requests, 8 cache hits" in again.out
    assert draft("hf-inference-providers", "mistral-4b-edge").code == 0
    assert len(fake.history) == 12, "only the four reviews of the new tool are requested"


def test_all_reviews_are_in_flight_at_once(fake: FakeChatServer, draft) -> None:
    fake.delay = 0.3
    assert draft("hf-inference-providers", "mistral-3-small").code == 0
    assert fake.max_in_flight == 8


def test_concurrency_ceiling_bounds_requests_in_flight(fake: FakeChatServer, draft) -> None:
    fake.delay = 0.1
    assert draft("hf-inference-providers", "mistral-3-small", "--concurrency", "2", "--max-concurrency", "2").code == 0
    assert fake.max_in_flight == 2


def test_concurrency_one_sends_one_request_at_a_time(fake: FakeChatServer, draft) -> None:
    fake.delay = 0.05
    assert draft("hf-inference-providers", "mistral-3-small", "--concurrency", "1").code == 0
    assert fake.max_in_flight == 1, "1 means one at a time: it does not adapt"


def test_transient_errors_and_bad_replies_are_survived(fake: FakeChatServer, draft, project: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VERDICTS_REASK_ATTEMPTS", "3")
    fake.enqueue(
        Scripted(status=429, headers={"Retry-After": "1"}),
        Scripted(status=500),
        Scripted(status=503),
        Scripted(content="Sure! Here is my review of the tool."),
        Scripted(content=json.dumps({"verdict": "maybe", "quote": "undecided"})),
        Scripted(content=""),
    )
    fenced = "```json\n" + fake.responder({"messages": [{"content": "Lens: builder\nTool: Hugging Face"}]}) + "\n```"
    fake.enqueue(Scripted(content=fenced))
    run = draft("hf-inference-providers", "mistral-3-small", "--concurrency", "1")
    assert run.code == 0, run.err
    assert "3 transport retries" in run.out and "3 re-asks" in run.out
    assert len(quotes_in(page_of(project, "hf-inference-providers", "mistral-3-small"))) == 8
    reasks = [r for r in fake.history if len(r["json"]["messages"]) > 2]
    assert reasks and "could not be used" in reasks[0]["json"]["messages"][-1]["content"]


def test_retry_after_is_honoured(fake: FakeChatServer, draft, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("VERDICTS_RETRY_AFTER_CAP", "5")
    fake.enqueue(Scripted(status=429, headers={"Retry-After": "1"}))
    started = time.monotonic()
    assert draft("hf-inference-providers", "mistral-3-small", "--concurrency", "1").code == 0
    assert time.monotonic() - started >= 1.0, "the client must wait as long as Retry-After asks"


def test_reply_that_stays_invalid_fails_cleanly(fake: FakeChatServer, draft, project: Path) -> None:
    fake.responder = lambda request: "not json at all"
    run = draft("hf-inference-providers", "mistral-3-small", "--concurrency", "1")
    assert run.code == 4
    assert "builder review of hf-inference-providers" in run.err and "not a JSON object" in run.err
    assert len(fake.history) == 8 * 3, "per review, one request and two re-asks, then stop"
    page = (project / "outputs" / "hf-inference-providers-vs-mistral-3-small.md").read_text()
    assert page.count("**Missing ") == 8 and page.count(": no verdict yet") == 8, "a page of placeholders"
    assert draft("hf-inference-providers", "mistral-3-small", "--force").code == 4
    assert len(fake.history) == 2 * 8 * 3, "nothing invalid was cached"
    kept = Path(os.environ["VERDICTS_CACHE_DIR"]) / "failed" / "hf-inference-providers--builder.json"
    assert json.loads(kept.read_text())["last_reply"] == "not json at all"


def test_invalid_replies_are_never_cached(fake: FakeChatServer, draft) -> None:
    fake.responder = lambda request: '{"verdict": "ship", "quote": "too short"}'
    assert draft("hf-inference-providers", "mistral-3-small", "--concurrency", "1").code == 4
    fake.responder = FakeChatServer().responder
    before = len(fake.history)
    assert draft("hf-inference-providers", "mistral-3-small").code == 0
    assert len(fake.history) - before == 8


@pytest.mark.reference
@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_published_quotes_draft_without_reask(fake: FakeChatServer, draft, project: Path, a: str, b: str) -> None:
    fake.responder = reference()
    run = draft(a, b)
    assert run.code == 0, run.err
    # The lens checks take every published quote at once. Requests after the first eight are re-asks of quotes that
    # argue another lens's point on their tool (the published pages do that too); the same quote comes back, so it
    # stays, flagged for the editor.
    again = [request["json"]["messages"][-1]["content"] for request in fake.history[8:]]
    assert f"{len(again)} re-asks" in run.out and all("makes the same point" in message for message in again)
    assert not again or "Same point twice" in run.out
    reference_page = REFERENCE_DIR / f"{a}-vs-{b}.txt"
    published = [line.strip()[1:-1] for line in reference_page.read_text().splitlines() if line.startswith("“")]
    assert quotes_in(page_of(project, a, b)) == published


def test_quotes_hitting_no_beat_fail_the_draft(fake: FakeChatServer, draft, project: Path) -> None:
    fake.responder = offbeat
    run = draft("hf-inference-providers", "mistral-3-small")
    assert run.code == 4 and "no sentence does this:" in run.err
    assert page_of(project, "hf-inference-providers", "mistral-3-small").count("**Missing ") == 8
    assert len(fake.history) == 8 * 3


def test_credits_exhausted_stops_at_once(fake: FakeChatServer, draft, project: Path) -> None:
    fake.enqueue(Scripted(status=402))
    run = draft("hf-inference-providers", "mistral-3-small", "--concurrency", "1")
    assert run.code == 3 and "402" in run.err and "credits" in run.err
    assert len(fake.history) == 1
    assert not (project / "outputs").exists()


def test_persistent_server_errors_are_bounded(fake: FakeChatServer, draft, monkeypatch) -> None:
    monkeypatch.setenv("VERDICTS_TRANSPORT_ATTEMPTS", "3")
    fake.enqueue(*[Scripted(status=503)] * 3)
    run = draft("hf-inference-providers", "mistral-3-small", "--concurrency", "1")
    assert run.code == 3 and "HTTP 503" in run.err and "after 3 attempts" in run.err
    assert len(fake.history) == 3


def test_hf_token_never_reaches_the_endpoint(fake: FakeChatServer, draft, project: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "hf_SECRETtokenVALUE1234567890"
    monkeypatch.setenv("HF_TOKEN", secret)
    run = draft("hf-inference-providers", "mistral-3-small")
    assert run.code == 0 and secret not in run.out + run.err
    for request in fake.history:
        assert secret not in json.dumps(request)
    stored = [p for p in Path(os.environ["VERDICTS_CACHE_DIR"]).rglob("*") if p.is_file()]
    stored += list((project / "outputs").rglob("*"))
    assert stored
    for path in stored:
        assert secret.encode() not in path.read_bytes(), path


def test_endpoint_api_key_is_sent_as_bearer(fake: FakeChatServer, draft, monkeypatch) -> None:
    monkeypatch.setenv("VERDICTS_API_KEY", "sk-local-key-42")
    assert draft("hf-inference-providers", "mistral-3-small").code == 0
    sent = {value for r in fake.history for name, value in r["headers"].items() if name.lower() == "authorization"}
    assert sent == {"Bearer sk-local-key-42"}
    assert {r["json"]["model"] for r in fake.history} == {"Qwen/Qwen2.5-72B-Instruct"}


def test_offbeat_paragraph_is_fluent_length() -> None:
    # The negative control must fail on beats, not on length.
    assert 90 <= len(OFFBEAT.format(name="Some Tool").split()) <= 170


@pytest.mark.reference
def test_reference_pages_give_a_quote_per_lens_and_tool() -> None:
    """Tests are parametrized from these quotes: pages that read as empty must fail here, not skip there."""
    expected: set[tuple[str, str]] = set()
    for page in REFERENCE_DIR.glob("*.txt"):
        names = page.read_text(encoding="utf-8").splitlines()[1].split(" vs ")
        expected |= {(lens, name) for lens in REFERENCE_PANEL for name in names}
    assert reference_quotes().keys() == expected


def test_hand_edits_are_not_overwritten(fake: FakeChatServer, draft, project: Path) -> None:
    assert draft("hf-inference-providers", "mistral-3-small").code == 0
    page = project / "outputs" / "hf-inference-providers-vs-mistral-3-small.md"
    edited = page.read_text().replace("# Hugging Face", "# Edited by hand: Hugging Face")
    page.write_text(edited)
    persona = project / "personas" / "buyer.toml"
    persona.write_text(persona.read_text().replace("You advise companies", "You advise firms"))
    run = draft("hf-inference-providers", "mistral-3-small")
    assert run.code == 2 and "not generated text" in run.err and str(page) in run.err
    assert "refresh" in run.err, "the hint points to the command that merges instead"
    assert page.read_text() == edited
    requests = len(fake.history)
    assert draft("hf-inference-providers", "mistral-3-small", "--force").code == 0
    assert len(fake.history) == requests, "the forced run reuses the reviews the refused run paid for"
    assert "Edited by hand" not in page.read_text()


def test_a_draft_without_hand_edits_is_simply_regenerated(fake: FakeChatServer, draft, project: Path) -> None:
    assert draft("hf-inference-providers", "mistral-3-small").code == 0
    tool = project / "tools" / "mistral-3-small.toml"
    tool.write_text(tool.read_text().replace('entry = "Free"', 'entry = "$0.10 / M tokens"'))
    assert draft("hf-inference-providers", "mistral-3-small").code == 0
    assert "- Entry: **$0.10 / M tokens**" in page_of(project, "hf-inference-providers", "mistral-3-small")


def test_malformed_body_is_one_clear_error(fake: FakeChatServer, draft, project: Path) -> None:
    fake.enqueue(Scripted(raw=b"<html>bad gateway page</html>"))
    run = draft("hf-inference-providers", "mistral-3-small", "--concurrency", "1")
    assert run.code == 3 and "not JSON" in run.err and "Traceback" not in run.err
    assert not (project / "outputs").exists()
