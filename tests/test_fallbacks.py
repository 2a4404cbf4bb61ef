"""Fallbacks: when a lens's own model keeps failing, the next model it names writes the review, within limits."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from tests.conftest import no_page
from tests.fakeserver import FakeChatServer, Scripted

A, B = "hf-inference-providers", "mistral-3-small"

FLAKY, STEADY = "acme/flaky-70b", "acme/steady-8b"


def give_builder_a_fallback(project: Path, model: str = FLAKY) -> None:
    persona = project / "personas" / "builder.toml"
    persona.write_text(persona.read_text().replace(
        "min_beats = 3", f'min_beats = 3\nmodel = "{model}"\nfallbacks = [{{ model = "{STEADY}" }}]'))


def models_asked(fake: FakeChatServer) -> list[str]:
    return [request["json"]["model"] for request in fake.history]


@pytest.mark.parametrize("concurrency", [1, 8])
def test_a_lens_whose_model_keeps_failing_is_served_by_its_fallback(concurrency: int, fake: FakeChatServer, draft,
                                                                   cli, project: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    give_builder_a_fallback(project)
    monkeypatch.setenv("VERDICTS_TRANSPORT_ATTEMPTS", "3")
    monkeypatch.setenv("VERDICTS_BACKOFF_INITIAL", "0")
    fake.down = {FLAKY: 503}
    run = draft(A, B, "--concurrency", str(concurrency))
    assert run.code == 0, run.err
    asked = models_asked(fake)
    # The first review to exhaust its retries marks the model down; with one review at a time the second builder
    # review goes straight to the fallback, with two in flight each may spend its own retries.
    if concurrency == 1:
        assert asked.count(FLAKY) == 3
    else:
        assert 3 <= asked.count(FLAKY) <= 6
    assert asked.count(STEADY) == 2 and len(asked) - asked.count(FLAKY) == 8
    assert f"asking {STEADY} instead" in run.err
    assert f"Written by a fallback, not the lens's own model: builder on {A} by {STEADY}" in run.out
    report = run.out.split("Run report", 1)[1]
    flaky_row = next(line.split() for line in report.splitlines() if FLAKY in line)
    assert int(flaky_row[3]) == asked.count(FLAKY), "every request sent is counted, answered or not"
    assert int(flaky_row[7]) >= 1 and flaky_row[-1] == "$0.0000", "its failures are counted, no tokens were paid"
    assert f"Wrote outputs/{A}-vs-{B}.md: {len(asked)} requests" in run.out

    record = json.loads((project / "outputs" / f"{A}-vs-{B}.provenance.json").read_text())
    for slug in (A, B):
        builder = record["sections"][f"builder:{slug}"]
        assert builder["model"] == STEADY and builder["fallback"] is True
        assert builder["settings"]["model"] == FLAKY, "the lens's own settings stay the record's key"
        assert record["sections"][f"skeptic:{slug}"].get("fallback") is None
    page = (project / "outputs" / f"{A}-vs-{B}.md").read_text()
    assert page.count("> ") >= 8

    # The fallback's reviews were paid for: the rerun sends nothing, and nothing reads as stale.
    again = draft(A, B, "--force")
    assert again.code == 0 and "0 requests, 8 cache hits" in again.out and len(fake.history) == len(asked)
    assert "Written by a fallback" in again.out
    assert cli("stale").code == 0

    # The lens's own model is back: --retry-fallbacks asks it for exactly the two quotes the fallback wrote.
    fake.down = {}
    back = draft(A, B, "--force", "--retry-fallbacks")
    assert back.code == 0, back.err
    assert models_asked(fake)[len(asked):] == [FLAKY, FLAKY] and "6 cache hits" in back.out
    assert "Written by a fallback" not in back.out
    record = json.loads((project / "outputs" / f"{A}-vs-{B}.provenance.json").read_text())
    assert record["sections"][f"builder:{A}"]["model"] == FLAKY and "fallback" not in record["sections"][f"builder:{A}"]
    assert cli("stale").code == 0


def test_when_the_fallback_fails_too_the_error_names_both(fake: FakeChatServer, draft, project: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    give_builder_a_fallback(project)
    monkeypatch.setenv("VERDICTS_TRANSPORT_ATTEMPTS", "3")
    monkeypatch.setenv("VERDICTS_BACKOFF_INITIAL", "0")
    fake.down = {FLAKY: 503, STEADY: 500}
    run = draft(A, B, "--concurrency", "1")
    assert run.code == 3 and "Traceback" not in run.err
    errors = [line for line in run.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, run.err
    assert f"{FLAKY}: HTTP 503" in errors[0] and f"fallback {STEADY}: HTTP 500" in errors[0], errors[0]
    asked = models_asked(fake)
    assert asked.count(FLAKY) == 3 and asked.count(STEADY) == 3, "each target's retries, once; then the run stops"
    assert no_page(project)


def test_a_refusal_of_one_prompt_moves_only_that_review_to_the_fallback(fake: FakeChatServer, draft,
                                                                         project: Path) -> None:
    """A 400 may be about one prompt (too long for that provider): the model is not down for anyone else."""
    default = tomllib.loads((project / "pyproject.toml").read_text())["tool"]["verdicts"].get(
        "model", "Qwen/Qwen2.5-72B-Instruct")
    give_builder_a_fallback(project, model=default)
    fake.enqueue(Scripted(status=400, raw=json.dumps({"error": {
        "message": "prompt is too long for this provider", "type": "invalid_request_error"}}).encode()))
    run = draft(A, B, "--concurrency", "1")
    assert run.code == 0, run.err
    assert models_asked(fake) == [default, STEADY] + [default] * 7, "only the refused review went elsewhere"
    assert f"{default} failed (HTTP 400 Bad Request: prompt is too long for this provider)" in run.err
    assert f"Written by a fallback, not the lens's own model: builder on {A} by {STEADY}" in run.out


def test_a_lens_without_fallback_still_tries_a_model_another_lens_found_down(fake: FakeChatServer, draft,
                                                                             project: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    give_builder_a_fallback(project)
    skeptic = project / "personas" / "skeptic.toml"
    skeptic.write_text(skeptic.read_text().replace("min_beats = 3", f'min_beats = 3\nmodel = "{FLAKY}"'))
    monkeypatch.setenv("VERDICTS_TRANSPORT_ATTEMPTS", "3")
    monkeypatch.setenv("VERDICTS_BACKOFF_INITIAL", "0")
    fake.down = {FLAKY: 503}
    run = draft(A, B, "--concurrency", "1")
    assert run.code == 3
    errors = [line for line in run.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: skeptic review of {A}: HTTP 503"), run.err
    # builder on A: 3 to the flaky model, then the fallback; builder on B: the fallback; skeptic on A: its own 3.
    assert models_asked(fake) == [FLAKY] * 3 + [STEADY] * 2 + [FLAKY] * 3
    assert no_page(project)


def test_with_a_budget_an_unpriced_fallback_is_not_tried(fake: FakeChatServer, draft, project: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A budget holds only if every reply can be priced: a fallback missing from the price table would escape it."""
    give_builder_a_fallback(project)
    pyproject = project / "pyproject.toml"
    priced = f'[tool.verdicts.prices]\n"{FLAKY}" = [1, 2]\n"Qwen/Qwen2.5-72B-Instruct" = [1, 2]\n'
    pyproject.write_text(pyproject.read_text().replace("[tool.verdicts.prices]\n", priced))
    monkeypatch.setenv("VERDICTS_TRANSPORT_ATTEMPTS", "2")
    monkeypatch.setenv("VERDICTS_BACKOFF_INITIAL", "0")
    fake.down = {FLAKY: 503}
    run = draft(A, B, "--concurrency", "1", "--max-cost", "1")
    assert run.code == 3, run.err
    assert f"fallback {STEADY} not tried: a budget is set and it has no price" in run.err
    assert STEADY not in models_asked(fake) and models_asked(fake).count(FLAKY) == 2
    assert no_page(project)


def test_a_lens_whose_fallbacks_are_all_unpriced_still_tries_its_own_model(fake: FakeChatServer, draft,
                                                                          project: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    give_builder_a_fallback(project)
    skeptic = project / "personas" / "skeptic.toml"
    skeptic.write_text(skeptic.read_text().replace(
        "min_beats = 3", f'min_beats = 3\nmodel = "{FLAKY}"\nfallbacks = [{{ model = "acme/unpriced" }}]'))
    pyproject = project / "pyproject.toml"
    priced = (f'[tool.verdicts.prices]\n"{FLAKY}" = [1, 2]\n"{STEADY}" = [1, 2]\n'
              '"Qwen/Qwen2.5-72B-Instruct" = [1, 2]\n')
    pyproject.write_text(pyproject.read_text().replace("[tool.verdicts.prices]\n", priced))
    monkeypatch.setenv("VERDICTS_TRANSPORT_ATTEMPTS", "3")
    fake.down = {FLAKY: 503}
    run = draft(A, B, "--concurrency", "1", "--max-cost", "1")
    assert run.code == 3
    # builder on A: 3 to the flaky model, then the fallback; builder on B: the fallback; skeptic on A: its own 3.
    assert models_asked(fake) == [FLAKY] * 3 + [STEADY] * 2 + [FLAKY] * 3
    error = next(line for line in run.err.splitlines() if line.startswith("error:"))
    assert "fallback acme/unpriced not tried: a budget is set and it has no price" in error
    assert f"{FLAKY}: HTTP 503 Service Unavailable, still failing after 3 attempts" in error


def test_credentials_refused_by_a_fallback_say_so(fake: FakeChatServer, draft, project: Path) -> None:
    give_builder_a_fallback(project)
    fake.down = {FLAKY: 503, STEADY: 401}
    run = draft(A, B, "--concurrency", "1")
    assert run.code == 3 and "the server refused our credentials" in run.err and "VERDICTS_API_KEY" in run.err


def test_credits_exhausted_is_not_a_reason_to_fall_back(fake: FakeChatServer, draft, project: Path) -> None:
    """402 is the account's, not the provider's: another model would bill the same empty account."""
    give_builder_a_fallback(project)
    fake.down = {FLAKY: 402}
    run = draft(A, B, "--concurrency", "1")
    assert run.code == 3 and "credits are exhausted" in run.err
    assert models_asked(fake).count(FLAKY) == 1 and STEADY not in models_asked(fake)
    assert no_page(project)
