"""The Inference Providers router's catalogue (issue 16): the `providers` command, prices read from the router,
capabilities respected, and the router's errors in its words.

A fake router on 127.0.0.1 (``tests/fakeserver.py`` with ``models`` set) serves ``GET /v1/models`` in the documented
shape and chat completions; ``VERDICTS_ROUTER_URL`` points the real ``huggingface_hub`` client at it.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2
import pytest
from huggingface_hub import set_client_factory

from pipeline.backends import router as router_module
from pipeline.backends.router import parse_models
from tests.fakeserver import FakeChatServer, Scripted, shape_of

TOKEN = "hf_testTOKENforTheRouter000000"
MODEL = "Qwen/Qwen2.5-72B-Instruct"


def entry(name: str, status: str = "live", price: tuple[float, float] | None = None, structured: bool | None = True,
          throughput: float | None = None, context: int | None = 32768) -> dict:
    """A provider as the router documents it; fields left None are left out, as the router does."""
    found: dict = {"provider": name, "status": status, "context_length": context, "supports_tools": True,
                   "supports_structured_output": structured, "throughput": throughput,
                   "first_token_latency_ms": 500.0, "is_model_author": False, "some_new_field": {"x": 1}}
    if price is not None:
        found["pricing"] = {"input": price[0], "output": price[1]}
    return {key: value for key, value in found.items() if value is not None}


# novita comes first in the router's order (auto picks it) and takes no response_format; together is the fastest
# and the dearest; featherless-ai gives no price; sambanova is listed with status error.
CATALOGUE = [
    {"id": MODEL, "object": "model", "created": 1726000000, "owned_by": "Qwen",
     "architecture": {"input_modalities": ["text"], "output_modalities": ["text"]},
     "providers": [entry("novita", price=(0.38, 0.40), structured=False, throughput=35.2),
                   entry("together", price=(1.2, 1.2), throughput=80.5, context=131072),
                   entry("featherless-ai", structured=None, context=None),
                   entry("sambanova", status="error", price=(0.6, 1.2), throughput=120.0)]},
    {"id": "meta-llama/Llama-3.3-70B-Instruct", "object": "model", "owned_by": "meta-llama",
     "providers": [entry("groq", price=(0.59, 0.79), throughput=300.0)]},
]


def all_priced() -> list[dict]:
    """The catalogue without featherless-ai, its one live provider that gives no price: auto then has an upper
    bound (the dearest live provider, together)."""
    models = copy.deepcopy(CATALOGUE)
    models[0]["providers"] = [p for p in models[0]["providers"] if p["provider"] != "featherless-ai"]
    return models


@pytest.fixture
def fake_router(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeChatServer]:
    with FakeChatServer() as server:
        server.models = copy.deepcopy(CATALOGUE)
        monkeypatch.setenv("VERDICTS_ROUTER_URL", server.base_url.removesuffix("/v1"))
        monkeypatch.setenv("HF_TOKEN", TOKEN)
        router_module.forget()
        yield server
        router_module.forget()


def header(request: dict, name: str) -> str | None:
    return next((v for k, v in request["headers"].items() if k.lower() == name.lower()), None)


def pin(project: Path, lens: str, extra: str) -> None:
    persona = project / "personas" / f"{lens}.toml"
    persona.write_text(persona.read_text().replace("min_beats = 3", f"min_beats = 3\n{extra}", 1))


def errors(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


def test_providers_shows_each_provider_and_marks_the_pick(fake_router, cli) -> None:
    run = cli("providers")
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert lines[0].startswith(f"Inference Providers per the router {fake_router.base_url.removesuffix('/v1')} (read ")
    assert f"{MODEL} for builder, skeptic, buyer, futurist, provider auto:" in lines
    rows = {line.split()[1] if line.strip().startswith("*") else line.split()[0]: line for line in lines
            if line.startswith("  ") and not line.strip().startswith(("provider", "*  what", "* what"))}
    assert rows["novita"].strip().startswith("*"), "auto picks the router's first live provider"
    assert rows["novita"].split()[1:] == ["novita", "live", "0.38", "0.40", "32768", "no", "35.2"]
    assert rows["featherless-ai"].split() == ["featherless-ai", "live", "-", "-", "-", "?", "-"]
    assert rows["sambanova"].split()[:2] == ["sambanova", "error"]
    assert any(line.strip().startswith("* what auto: the router's own order") for line in lines)
    assert [g["path"] for g in fake_router.gets] == ["/v1/models"]
    assert header(fake_router.gets[0], "authorization") == f"Bearer {TOKEN}"
    assert fake_router.history == [] and TOKEN not in run.out + run.err


@pytest.mark.parametrize(("policy", "picked"), [("fastest", "together"), ("cheapest", "novita"),
                                                 ("sambanova", "sambanova")])
def test_providers_json_marks_what_each_policy_picks(fake_router, cli, policy, picked) -> None:
    run = cli("providers", "--json", "--provider", policy)
    assert run.code == 0, run.err
    data = json.loads(run.out)
    (model,) = data["models"]
    assert model["model"] == MODEL and model["policy"] == policy and model["pick"] == picked
    rows = {row["provider"]: row for row in model["providers"]}
    assert rows["novita"]["input_usd_per_million"] == 0.38 and rows["novita"]["structured_output"] is False
    assert rows["featherless-ai"]["input_usd_per_million"] is None, "a missing price is unknown, never 0"


def test_providers_says_a_pinned_provider_is_not_served(fake_router, cli, project) -> None:
    pin(project, "builder", 'provider = "groq"')
    run = cli("providers")
    assert run.code == 0, run.err
    assert f"{MODEL} for builder, provider groq:" in run.out
    assert "groq: not served: the router does not list groq for this model" in run.out
    assert f"{MODEL} for skeptic, buyer, futurist, provider auto:" in run.out


def test_providers_without_any_catalogue_exits_2(fake_router, cli, tmp_path) -> None:
    fake_router.models = None  # the router answers 404, and nothing was read before
    run = cli("providers")
    assert run.code == 2 and run.out == ""
    assert errors(run.err) == [f"error: could not read the router's model list from "
                               f"{fake_router.base_url.removesuffix('/v1')}/v1/models, and no earlier copy is kept "
                               f"in {tmp_path / 'cache'}"]
    assert "Traceback" not in run.err


def test_a_draft_with_an_empty_price_table_is_priced_by_the_router(fake_router, draft, tmp_path) -> None:
    fake_router.models = all_priced()
    run = draft("hf-inference-providers", "mistral-3-small")
    assert run.code == 0, run.err
    forecast = next(line for line in run.err.splitlines() if line.startswith("Forecast:"))
    assert "cost $" in forecast and "router prices read " in forecast and "just now" in forecast
    report = run.out.splitlines()
    row = next(line for line in report if line.strip().startswith("hf "))
    assert row.split()[-1].startswith("$") and row.split()[-1] != "$0.0000"
    prices = [line.strip() for line in report if line.strip().startswith("prices:")]
    assert len(prices) == 1 and prices[0].startswith(f"prices: {MODEL}:auto from the router (the dearest live "
                                                     "provider, together; read ")
    assert "cost unknown" not in run.out
    # Kept in the cache directory with the time it was read, and without the token.
    saved = (tmp_path / "cache" / "router-models.json").read_text()
    assert TOKEN not in saved and json.loads(saved)["read_at"]
    # Read at most once a day: a second run (a new process: nothing remembered) reads the file, not the router.
    router_module.forget()
    assert draft("hf-inference-providers", "mistral-3-small", "--force").code == 0
    assert [g["path"] for g in fake_router.gets] == ["/v1/models"]


def test_max_cost_below_the_router_forecast_refuses_to_start(fake_router, draft, project) -> None:
    fake_router.models = all_priced()
    run = draft("hf-inference-providers", "mistral-3-small", "--max-cost", "0.0001")
    assert run.code == 6
    assert fake_router.history == [], "nothing was sent"
    (error,) = errors(run.err)
    assert "the forecast cost $" in error and "is above the budget of $0.0001" in error
    assert not (project / "outputs").exists() or not list((project / "outputs").glob("*.md"))


def test_the_price_table_still_overrides_the_router(fake_router, draft, project) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(
        '# "Qwen/Qwen2.5-72B-Instruct:together" = [0.00, 0.00]', f'"{MODEL}:auto" = [0.5, 0.5]'))
    run = draft("hf-inference-providers", "mistral-3-small")
    assert run.code == 0, run.err
    assert f"prices: {MODEL}:auto from the price table" in run.out
    assert "router prices read" not in run.err


def test_without_network_the_last_prices_read_are_used_and_their_age_said(fake_router, draft, tmp_path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    read_at = datetime.now(UTC) - timedelta(hours=30)
    (cache / "router-models.json").write_text(json.dumps({
        "read_at": read_at.isoformat(), "router": fake_router.base_url.removesuffix("/v1"), "data": all_priced()}))
    fake_router.models = None  # the router cannot be read now
    run = draft("hf-inference-providers", "mistral-3-small")
    assert run.code == 0, run.err
    forecast = next(line for line in run.err.splitlines() if line.startswith("Forecast:"))
    assert "cost $" in forecast and "30 h ago; the router could not be read now: HTTP 404" in forecast
    assert f"read {read_at.strftime('%Y-%m-%d %H:%M')} UTC, 30 h ago" in run.out


def test_with_no_catalogue_at_all_the_cost_is_unknown_never_free(fake_router, draft) -> None:
    fake_router.models = None
    run = draft("hf-inference-providers", "mistral-3-small")
    assert run.code == 0, run.err  # a draft never fails because the router's list cannot be read
    forecast = next(line for line in run.err.splitlines() if line.startswith("Forecast:"))
    assert forecast.endswith("cost unknown")
    assert f"prices: {MODEL}:auto unknown (the router's list could not be read)" in run.out
    assert "cost unknown" in run.out and "$0.0000" not in run.out


def test_a_lens_pinned_to_a_provider_the_router_does_not_list_is_reported_before_any_request(
        fake_router, cli, draft, project) -> None:
    pin(project, "builder", 'provider = "groq"')
    dry = cli("prompts", "hf-inference-providers", "mistral-3-small")
    assert dry.code == 0, dry.err
    warning = next(line for line in dry.out.splitlines() if line.startswith("warning:"))
    assert warning.startswith(f"warning: builder lens: provider groq does not serve {MODEL} per the router (read ")
    assert "the providers that do: novita, together, featherless-ai; set one in personas/builder.toml" in warning
    assert warning.endswith("`python -m pipeline draft` would refuse to start")
    assert f"prices: {MODEL}:groq unknown (the router does not list groq for it)" in dry.out
    run = draft("hf-inference-providers", "mistral-3-small")
    assert run.code == 2
    (error,) = errors(run.err)
    assert error.startswith(f"error: builder lens: provider groq does not serve {MODEL} per the router")
    assert "novita, together, featherless-ai" in error and error.endswith("nothing was sent")
    assert fake_router.history == []


def test_response_format_only_where_the_provider_supports_structured_output(fake_router, draft, project) -> None:
    pin(project, "builder", 'provider = "together"')
    run = draft("hf-inference-providers", "mistral-3-small")
    assert run.code == 0, run.err
    sent = {(r["json"]["model"], shape_of(r["json"])) for r in fake_router.history}
    # auto goes to novita first, which the router says takes no response_format; together does, in OpenAI's shape
    # as written (through a base URL, huggingface_hub would rewrite it into TGI's, which a provider may ignore).
    assert sent == {(MODEL, "none"), (f"{MODEL}:together", "json_schema")}


def test_fallbacks_skip_providers_the_router_lists_as_down(fake_router, draft, project, monkeypatch) -> None:
    pin(project, "builder", 'provider = "novita"\nfallbacks = [{ provider = "sambanova" }, { provider = "together" }]')
    monkeypatch.setenv("VERDICTS_TRANSPORT_ATTEMPTS", "2")
    fake_router.down = {f"{MODEL}:novita": 503}
    run = draft("hf-inference-providers", "mistral-3-small", "--concurrency", "1")
    assert run.code == 0, run.err
    models = [request["json"]["model"] for request in fake_router.history]
    assert f"{MODEL}:sambanova" not in models
    assert models.count(f"{MODEL}:together") == 2
    assert f"Fallback {MODEL}:sambanova will not be tried: the router lists sambanova as error for {MODEL}" in run.err


@pytest.mark.parametrize(("status", "body", "expected"), [
    (402, {"error": "Payment required"},
     f"error: out of Inference Providers credit for {MODEL} via novita (HTTP 402): top up at "
     "https://huggingface.co/settings/billing or set bill_to"),
    (403, {"error": {"message": "You have exceeded your monthly included credits for Inference Providers."}},
     f"error: out of Inference Providers credit for {MODEL} via novita (HTTP 403)"),
    (400, {"error": {"message": f"The requested model '{MODEL}' is not supported by provider 'novita'."}},
     f"error: provider novita no longer serves {MODEL} (HTTP 400: "),
])
def test_router_errors_name_the_model_and_provider_and_what_to_do(fake_router, draft, monkeypatch, status, body,
                                                                   expected) -> None:
    monkeypatch.setenv("VERDICTS_PROVIDER", "novita")
    fake_router.enqueue(*[Scripted(raw=json.dumps(body).encode(), status=status) for _ in range(8)])
    run = draft("hf-inference-providers", "mistral-3-small", "--concurrency", "1")
    assert run.code == 3
    (error,) = errors(run.err)
    assert error.startswith(expected)
    assert "hint:" not in run.err, "one line"
    assert len(fake_router.history) == 1, "not retried"
    if status == 400:
        assert error.endswith("pick another from `python -m pipeline providers` (provider in the persona file or "
                              "the settings), or use auto")


def test_a_model_no_provider_serves_says_to_change_the_model(fake_router, draft) -> None:
    body = {"error": {"message": f"Model {MODEL} is not supported by any provider you have enabled."}}
    fake_router.enqueue(*[Scripted(raw=json.dumps(body).encode(), status=400) for _ in range(8)])
    run = draft("hf-inference-providers", "mistral-3-small", "--concurrency", "1")
    assert run.code == 3
    (error,) = errors(run.err)
    assert error.startswith(f"error: no Inference Provider serves {MODEL} (HTTP 400: ")
    assert "change the model" in error


class Elsewhere(httpx2.BaseTransport):
    """Every request the Hugging Face client sends to any address but the fake router goes to a second server."""

    def __init__(self, router_port: int, other_port: int) -> None:
        self.router_port, self.other_port = router_port, other_port
        self.inner = httpx2.HTTPTransport()
        self.seen: list[str] = []

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        self.seen.append(str(request.url))
        if not (request.url.host == "127.0.0.1" and request.url.port == self.router_port):
            request.url = request.url.copy_with(scheme="http", host="127.0.0.1", port=self.other_port)
        return self.inner.handle_request(request)


def test_the_token_goes_to_the_router_and_nowhere_else(fake_router, draft, cli) -> None:
    with FakeChatServer() as other:
        other.models = copy.deepcopy(CATALOGUE)
        transport = Elsewhere(fake_router._server.server_address[1], other._server.server_address[1])
        set_client_factory(lambda: httpx2.Client(transport=transport))
        try:
            assert draft("hf-inference-providers", "mistral-3-small").code == 0
            assert cli("providers").code == 0
        finally:
            from huggingface_hub.utils._http import default_client_factory

            set_client_factory(default_client_factory)
        assert len(transport.seen) == 9, "every request went through the client: 1 model list, 8 reviews"
        assert other.history == [] and other.gets == [], "nothing reached another address"
        received = fake_router.history + fake_router.gets
        assert len(fake_router.history) == 8 and len(fake_router.gets) == 1
        assert all(header(request, "authorization") == f"Bearer {TOKEN}" for request in received)


def test_a_router_url_that_is_not_http_is_refused(fake_router, draft, monkeypatch) -> None:
    monkeypatch.setenv("VERDICTS_ROUTER_URL", "router.internal:8080")
    run = draft("hf-inference-providers", "mistral-3-small")
    assert run.code == 2
    assert errors(run.err) == ["error: environment variable VERDICTS_ROUTER_URL: router_url: must start with "
                               "http:// or https://, not 'router.internal:8080'"]


def test_the_catalogue_is_parsed_leniently() -> None:
    """Every field is optional and read on its own: one of the wrong type is unknown, and its provider is kept."""
    models = parse_models({"object": "list", "data": [
        {"id": "a/b", "providers": [{"provider": "x", "status": "live", "pricing": {"input": 1.0}},
                                    {"status": "live"},  # no provider name: skipped
                                    {"provider": "y", "pricing": "free", "status": "live",  # a bad price: unknown
                                     "context_length": "long", "supports_structured_output": "maybe"},
                                    {"provider": "z", "status": "live", "pricing": {"input": 0.1, "output": 0.2},
                                     "unknown": [1, 2]},
                                    {"provider": "w", "status": ["live"], "pricing": {"input": "cheap", "output": 1}},
                                    {"provider": None, "status": "live"}]},  # a provider name that is none: skipped
        {"providers": []},  # no id: skipped
        "junk"]})
    assert list(models) == ["a/b"]
    x, y, z, w = models["a/b"]
    assert [p.provider for p in models["a/b"]] == ["x", "y", "z", "w"]
    assert x.price is None, "half a price is unknown, never 0"
    assert y.live and y.price is None and y.context_length is None and y.supports_structured_output is None
    assert z.price is not None and z.price.output == 0.2
    assert not w.live and w.price is None, "a status that is not the string live is not live"


def test_a_draft_through_another_router_is_not_stale_afterwards(fake_router, draft, cli) -> None:
    """The router's address is part of a review's key: a draft records the one the environment chose, so `stale`
    plans as the draft did rather than against the default router."""
    assert draft("hf-inference-providers", "mistral-3-small").code == 0
    run = cli("stale")
    assert run.code == 0, run.out + run.err


def test_a_router_that_trickles_its_model_list_is_cut_off(fake_router, monkeypatch, project) -> None:
    """httpx's timeout bounds each read; a list sent a byte at a time is cut off at FETCH_TIMEOUT all the same."""
    from pipeline.settings import load_settings

    monkeypatch.setattr(router_module, "FETCH_TIMEOUT", 0.5)
    fake_router.trickle = 0.05  # a byte every 50 ms: the list would take minutes
    started = time.monotonic()
    assert router_module.catalogue(load_settings(project)) is None
    assert time.monotonic() - started < 5


def test_refresh_refuses_a_lens_pinned_to_a_provider_the_router_does_not_list(fake_router, draft, cli,
                                                                             project) -> None:
    assert draft("hf-inference-providers", "mistral-3-small").code == 0
    sent = len(fake_router.history)
    pin(project, "builder", 'provider = "groq"')  # the builder's quotes are stale now
    run = cli("refresh")
    assert run.code == 2, run.out + run.err
    (error,) = errors(run.err)
    assert error.startswith(f"error: builder lens: provider groq does not serve {MODEL} per the router")
    assert len(fake_router.history) == sent, "nothing was sent"


@pytest.mark.parametrize(("policy", "note"), [("cheapest", "the cheapest live provider, novita; read "),
                                               ("fastest", "the fastest live provider, together; read "),
                                               ("novita", "read ")])
def test_a_policy_or_a_pinned_provider_is_priced_at_its_pick(fake_router, cli, monkeypatch, policy, note) -> None:
    monkeypatch.setenv("VERDICTS_PROVIDER", policy)
    run = cli("prompts", "hf-inference-providers", "mistral-3-small", "--max-cost", "1")
    assert run.code == 0, run.err
    assert f"prices: {MODEL}:{policy} from the router ({note}" in run.out
    forecast = next(line for line in run.out.splitlines() if line.startswith("Forecast:"))
    price = {"cheapest": (0.38, 0.40), "fastest": (1.2, 1.2), "novita": (0.38, 0.40)}[policy]
    tokens = [int(word) for word in forecast.replace(",", " ").split() if word.isdigit()]
    prompt, completion = tokens[-2], tokens[-1]
    expected = (prompt * price[0] + completion * price[1]) / 1_000_000
    assert f"cost ${expected:.4f} (router prices read " in forecast
    assert "Budget $1.0000: within it" in run.out


def test_an_empty_model_list_does_not_replace_the_last_one_read(fake_router, project) -> None:
    from pipeline.settings import load_settings

    settings = load_settings(project)
    first = router_module.catalogue(settings)
    assert first is not None and first.providers(MODEL)
    fake_router.models = []  # an answer that parses, but lists nothing
    later = router_module.catalogue(settings, now=datetime.now(UTC) + timedelta(days=2), refresh=True)
    assert later is not None and later.providers(MODEL) == first.providers(MODEL)
    assert later.read.endswith("2 days ago; the router could not be read now: the router's answer lists no model")
