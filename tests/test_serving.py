"""Inference Providers as they really behave (issue 25): the provider that served each quote, recorded everywhere
and priced; limits per provider, and a provider that keeps answering 429 skipped; the router's terminal errors; the
model list read defensively; structured output checked.

The fake router (``tests/fakeserver.py``) names a provider on every answer in ``x-inference-provider``: the one a
``model:provider`` suffix asks for, else the next of two in turn (``alternate``), as the router's ``auto`` spreads
requests. The real ``huggingface_hub`` client talks to it.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from pipeline.cache import ReviewCache
from pipeline.runlog import read_runs
from tests.fakeserver import FakeChatServer, Scripted, alternate, lens_and_tool, shape_of
from tests.test_router import (
    MODEL,
    TOKEN,
    all_priced,
    entry,
    errors,
    fake_router,  # noqa: F401  (a fixture: the fake router, as test_router.py sets it up)
    pin,
)

A, B = "hf-inference-providers", "mistral-3-small"
SLUGS = {"Hugging Face Inference Providers Marketplace": A, "Mistral 3 Small (24B)": B}
PRICES = {"novita": (0.38, 0.40), "together": (1.2, 1.2)}  # as in tests/test_router.py's catalogue
USAGE = (5000, 300)  # tokens every reply reports: above the pipeline's own estimate, so they are what is counted


@pytest.fixture
def router(fake_router: FakeChatServer) -> FakeChatServer:  # noqa: F811
    return fake_router


def served(server: FakeChatServer) -> dict[str, list[str]]:
    """Section id -> the providers the fake named for its requests, in order."""
    found: dict[str, list[str]] = {}
    for request in server.history:
        lens, name = lens_and_tool(request["json"])
        found.setdefault(f"{lens}:{SLUGS[name]}", []).append(request["provider"])
    return found


def sidecar(project: Path) -> dict:
    return json.loads((project / "outputs" / f"{A}-vs-{B}.provenance.json").read_text())


def cost_of(provider: str) -> float:
    price_in, price_out = PRICES[provider]
    return (USAGE[0] * price_in + USAGE[1] * price_out) / 1_000_000


def report_row(out: str, provider: str = "auto") -> list[str]:
    return next(line.split() for line in out.splitlines() if line.split()[:3] == ["hf", MODEL, provider])


# --- 1. the serving provider, recorded -----------------------------------------------------------------------------


def test_the_provider_that_served_each_quote_is_recorded_and_priced(router, draft, cli, project,
                                                                    tmp_path) -> None:
    router.models = all_priced()
    router.serve = alternate("novita", "together")
    router.usage = USAGE
    run = draft(A, B)
    assert run.code == 0, run.err
    by_section = served(router)
    assert sorted(p for providers in by_section.values() for p in providers) == ["novita"] * 4 + ["together"] * 4
    expected = {name: providers[-1] for name, providers in by_section.items()}

    sections = sidecar(project)["sections"]
    assert {name: sections[name]["served_by"] for name in expected} == expected
    cache = ReviewCache(tmp_path / "cache")
    try:
        assert {name: cache.get(sections[name]["key"])["served_by"] for name in expected} == expected
    finally:
        cache.close()
    logged = {f"{e['lens']}:{e['tool']}": e["served_by"] for e in read_runs(tmp_path / "cache")
              if e.get("type") == "request"}
    assert logged == expected
    shown = cli("log")
    assert shown.code == 0 and "(served by novita): ok" in shown.out and "(served by together): ok" in shown.out

    quotes = cli("quotes").out.splitlines()
    for name, provider in expected.items():
        lens, slug = name.split(":")
        at = quotes.index(f"{slug} / {lens}: raw")
        assert f"(raw, served by {provider}):" in quotes[at + 1]
    listed = json.loads(cli("quotes", "--json").out)
    assert {f"{q['lens']}:{q['tool']}": q["pages"][0]["served_by"] for q in listed} == expected

    # Each reply at the price of the provider that served it, not auto's upper bound (together's, the dearest).
    total = 4 * cost_of("novita") + 4 * cost_of("together")
    assert report_row(run.out)[-1] == f"${total:.4f}"
    assert f"    {MODEL}:novita: 4 replies, ${4 * cost_of('novita'):.4f}" in run.out
    assert f"    {MODEL}:together: 4 replies, ${4 * cost_of('together'):.4f}" in run.out


def test_the_preview_says_who_served_each_quote(router, draft, cli, project, tmp_path) -> None:
    router.serve = alternate("together", "novita")
    assert draft(A, B).code == 0
    out = tmp_path / "preview.html"
    assert cli("preview", f"outputs/{A}-vs-{B}.md", "--out", str(out)).code == 0
    html = out.read_text()
    said = re.findall(r'<p class="source">Written by ([^<]+)</p>', html)
    assert sorted(said) == sorted([f"{MODEL}:auto, served by together"] * 4 + [f"{MODEL}:auto, served by novita"] * 4)


def test_without_the_header_the_provider_is_unknown_and_old_sidecars_stay_as_they_are(fake, draft, cli,
                                                                                        project) -> None:
    """An endpoint names no provider: nothing new is written in the sidecar (a draft made before this change is
    byte for byte what it would be now, and fresh), and `quotes` says unknown."""
    assert draft(A, B).code == 0
    text = (project / "outputs" / f"{A}-vs-{B}.provenance.json").read_text()
    assert "served_by" not in text
    assert cli("stale").code == 0
    lines = [line for line in cli("quotes").out.splitlines() if line.startswith("  ")]
    assert len(lines) == 8 and all("served by unknown" in line for line in lines)


def test_a_header_that_is_not_a_provider_name_is_not_recorded(router, draft, project) -> None:
    """The header comes from a server: a key it echoes, or junk, is never written anywhere; the provider is unknown."""
    said = iter([TOKEN, "Novita (EU) / backup", "x" * 200])
    router.serve = lambda request: next(said, "together")
    run = draft(A, B, "--concurrency", "1")
    assert run.code == 0, run.err
    recorded = [s.get("served_by", "") for s in sidecar(project)["sections"].values() if s.get("key")]
    assert sorted(recorded) == [""] * 3 + ["together"] * 5
    assert TOKEN not in (project / "outputs" / f"{A}-vs-{B}.provenance.json").read_text()
    assert TOKEN not in run.out + run.err


# --- 2. limits per provider ----------------------------------------------------------------------------------------


def test_a_provider_that_answers_429_to_everything_is_skipped_while_another_serves(router, draft,
                                                                                   project) -> None:
    router.models = all_priced()
    router.serve = alternate("novita", "together")
    router.provider_status = {"novita": 429}
    run = draft(A, B)
    assert run.code == 0, run.err
    to_novita = [r for r in router.history if r["provider"] == "novita"]
    assert 3 <= len(to_novita) <= 8, "skipped after a few refusals, not tried again for every review"
    assert f"{MODEL}:together" in [r["json"]["model"] for r in router.history], "its share went to together"
    assert {s.get("served_by") for s in sidecar(project)["sections"].values() if s.get("key")} == {"together"}
    line = next(line for line in run.out.splitlines() if "skipped for the rest of the run" in line)
    assert line.strip() == (f"skipped for the rest of the run: {MODEL}:novita kept answering 429 (to "
                            f"{len(to_novita)} requests, none served) while together served; its share went to "
                            f"{MODEL}:together")
    assert f"{MODEL}:novita: 0 replies, $0.0000; {len(to_novita)} requests answered 429" in run.out


def test_the_limit_is_kept_per_serving_provider_where_the_router_names_one(router, draft) -> None:
    """auto, served by one provider: its requests wait on that provider's limit, the one a lens pinned to it uses."""
    router.serve = alternate("novita")
    run = draft(A, B, "--concurrency", "2")
    assert run.code == 0, run.err
    limits = [line.strip() for line in run.out.splitlines() if line.startswith("    hf ")]
    assert len(limits) == 1 and limits[0].startswith(f"hf {MODEL}:novita: started at 2, "), limits


# --- 3. terminal errors --------------------------------------------------------------------------------------------


TERMINAL = {
    "out of credit": (402, "Payment required", "", f"error: out of Inference Providers credit for {MODEL} (auto) "
                      "(HTTP 402): top up at https://huggingface.co/settings/billing"),
    "no provider enabled": (400, f"Model {MODEL} is not supported by any provider you have enabled.", "",
                            f"error: no Inference Provider serves {MODEL} (HTTP 400: Model {MODEL} is not supported "
                            "by any provider you have enabled.): enable one that does for the account at "
                            "https://huggingface.co/settings/inference-providers"),
    "disabled for the organisation": (403, "Provider novita is disabled for organization verdicts-org.", "",
                                      "error: provider novita is disabled for the organisation verdicts-org "
                                      f"(bill_to), so it cannot serve {MODEL} (auto) (HTTP 403: "),
    "pinned provider removed": (400, f"The requested model '{MODEL}' is not supported by provider 'novita'.",
                                "novita", f"error: provider novita no longer serves {MODEL} (HTTP 400: "),
}


@pytest.mark.parametrize("case", list(TERMINAL))
def test_a_terminal_error_stops_a_refresh_at_the_first_request(router, draft, cli, project, monkeypatch,
                                                               case) -> None:
    """refresh leaves a review no target could serve as a placeholder and goes on; these are the account's or the
    router's answer to every request, so the run stops at the first, said in one line."""
    status, message, provider, expected = TERMINAL[case]
    if "organisation" in case:
        monkeypatch.setenv("VERDICTS_BILL_TO", "verdicts-org")
    if provider:
        monkeypatch.setenv("VERDICTS_PROVIDER", provider)
    assert draft(A, B).code == 0
    system = project / "prompts" / "system.j2"
    system.write_text(system.read_text() + "\nAnswer in the house voice.\n")  # every quote is stale
    sent = len(router.history)
    router.serve = alternate("novita")
    router.enqueue(*[Scripted(raw=json.dumps({"error": {"message": message}}).encode(), status=status)
                          for _ in range(8)])
    run = cli("refresh", "--concurrency", "1")
    assert run.code == 3, run.out + run.err
    (line,) = errors(run.err)
    assert line.startswith(expected), line
    assert "hint:" not in run.err
    assert len(router.history) - sent == 1, "one request, no retry, nothing after it"


def test_a_pinned_provider_removed_from_routing_is_not_replaced_by_a_fallback(router, draft, project) -> None:
    pin(project, "builder", 'provider = "novita"\nfallbacks = [{ provider = "together" }]')
    router.serve = alternate("together")
    router.provider_status = {"novita": 400}
    router.provider_error = {"novita": f"Model {MODEL} is not supported by provider novita."}
    run = draft(A, B, "--concurrency", "1")
    assert run.code == 3, run.out
    (line,) = errors(run.err)
    assert line.startswith(f"error: provider novita no longer serves {MODEL} (HTTP 400"), line
    models = [r["json"]["model"] for r in router.history]
    assert models.count(f"{MODEL}:novita") == 1 and f"{MODEL}:together" not in models


# --- 4. the router's list, read defensively ------------------------------------------------------------------------


def test_a_zero_price_is_not_forecast_as_free(router, cli, draft, monkeypatch) -> None:
    router.models = [{"id": MODEL, "providers": [entry("novita", price=(0.0, 0.0))]}]
    monkeypatch.setenv("VERDICTS_PROVIDER", "novita")
    dry = cli("prompts", A, B)
    assert f"prices: {MODEL}:novita unknown (novita gives a price of 0, a promotion the router does not say " \
        "applies to this account" in dry.out
    run = draft(A, B, "--max-cost", "1")
    assert run.code == 2 and router.history == []
    assert "there is no price for" in errors(run.err)[0]


# --- 5. structured output, checked ---------------------------------------------------------------------------------


def test_response_format_is_no_longer_sent_where_a_provider_ignores_it(router, draft, project,
                                                                       monkeypatch) -> None:
    models = copy.deepcopy(router.models)
    models[0]["providers"][0]["supports_structured_output"] = True  # novita says it takes a schema; it does not
    router.models = models
    router.provider_fenced = {"novita"}
    router.serve = alternate("novita")
    monkeypatch.setenv("VERDICTS_PROVIDER", "novita")
    pin(project, "builder", 'provider = "together"')
    run = draft(A, B, "--concurrency", "1")
    assert run.code == 0, run.err
    shapes = [(r["provider"], shape_of(r["json"])) for r in router.history]
    novita = [shape for provider, shape in shapes if provider == "novita"]
    assert novita == ["json_schema"] + ["none"] * 5, "sent once; the fenced reply showed it was ignored"
    assert [shape for provider, shape in shapes if provider == "together"] == ["json_schema"] * 2
    assert f"{MODEL}:novita: 6 replies, " in run.out
    assert "; 1 of 1 did not match the reply schema although response_format was sent; no longer sent it" in run.out
    assert "; 0 of 2 did not match the reply schema although response_format was sent" in run.out


def test_providers_shows_a_zero_price_as_listed_and_says_it_is_not_forecast(router, cli) -> None:
    router.models = [{"id": MODEL, "providers": [entry("novita", price=(0.0, 0.0)),
                                                 entry("together", price=(1.2, 1.2))]}]
    run = cli("providers", "--provider", "cheapest")
    assert run.code == 0, run.err
    row = next(line.split() for line in run.out.splitlines() if "novita" in line.split())
    assert row[:5] == ["*", "novita", "live", "0.00", "0.00"], "cheapest goes by the router's listed price"
    assert "  0.00 (novita): a promotion the router does not say applies to this account; forecast as unknown " \
        "unless the price table says [0, 0]" in run.out.splitlines()
    dry = cli("prompts", A, B, "--provider", "cheapest")
    assert f"prices: {MODEL}:cheapest unknown (novita gives a price of 0" in dry.out
