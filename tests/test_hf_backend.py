"""The Inference Providers backend: the real client, its router requests redirected to the fake server.

Only the transport is swapped (``huggingface_hub.set_client_factory``): URL building, headers, the model suffix
and ``bill_to`` are the real client's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx2
import pytest
from huggingface_hub import set_client_factory

from tests.fakeserver import FakeChatServer, alternate

TOKEN = "hf_testTOKENforTheRouter000000"


class ToFakeServer(httpx2.BaseTransport):
    def __init__(self, port: int) -> None:
        self.port = port
        self.seen: list[str] = []
        self.inner = httpx2.HTTPTransport()

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        if request.url.host == "router.huggingface.co":
            self.seen.append(str(request.url))
            request.url = request.url.copy_with(scheme="http", host="127.0.0.1", port=self.port)
        return self.inner.handle_request(request)


@pytest.fixture
def router(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeChatServer, ToFakeServer]]:
    with FakeChatServer() as server:
        transport = ToFakeServer(server._server.server_address[1])
        set_client_factory(lambda: httpx2.Client(transport=transport, timeout=None))
        monkeypatch.setenv("HF_TOKEN", TOKEN)
        monkeypatch.delenv("VERDICTS_ROUTER_URL")  # the default address, router.huggingface.co, swapped above
        try:
            yield server, transport
        finally:
            from huggingface_hub.utils._http import default_client_factory

            set_client_factory(default_client_factory)


def header(request: dict, name: str) -> str | None:
    return next((v for k, v in request["headers"].items() if k.lower() == name.lower()), None)


def test_hf_token_selects_inference_providers(router, draft, monkeypatch) -> None:
    server, transport = router
    monkeypatch.setenv("VERDICTS_BILL_TO", "verdicts-org")
    run = draft("hf-inference-providers", "mistral-3-small")
    assert run.code == 0, run.err
    assert "Hugging Face Inference Providers" in run.err
    # The router's model list is read first (this fake has none: prices are unknown), then the chat completions.
    assert set(transport.seen) == {"https://router.huggingface.co/v1/models",
                                   "https://router.huggingface.co/v1/chat/completions"}
    assert transport.seen.count("https://router.huggingface.co/v1/models") == 1
    assert len(server.history) == 8
    for request in server.history:
        assert header(request, "authorization") == f"Bearer {TOKEN}"
        assert header(request, "x-hf-bill-to") == "verdicts-org"
        assert request["json"]["model"] == "Qwen/Qwen2.5-72B-Instruct"
        assert request["json"]["response_format"]["type"] == "json_schema"
    assert TOKEN not in run.out + run.err


def test_provider_policy_and_per_lens_override(router, draft, project, monkeypatch) -> None:
    server, _ = router
    monkeypatch.setenv("VERDICTS_PROVIDER", "fastest")
    persona = project / "personas" / "futurist.toml"
    text = persona.read_text().replace("min_beats = 3", 'min_beats = 3\nmodel = "meta-llama/Llama-3.3-70B-Instruct"'
                                       '\nprovider = "groq"')
    persona.write_text(text)
    assert draft("hf-inference-providers", "mistral-3-small").code == 0
    models = sorted(r["json"]["model"] for r in server.history)
    assert models == ["Qwen/Qwen2.5-72B-Instruct:fastest"] * 6 + ["meta-llama/Llama-3.3-70B-Instruct:groq"] * 2


def test_base_url_wins_over_hf_token(router, draft, monkeypatch) -> None:
    server, transport = router
    with FakeChatServer() as endpoint:
        monkeypatch.setenv("VERDICTS_BASE_URL", endpoint.base_url)
        assert draft("hf-inference-providers", "mistral-3-small").code == 0
        assert len(endpoint.history) == 8 and server.history == []
        assert all(TOKEN not in str(r) for r in endpoint.history)


def test_a_provider_that_keeps_failing_falls_back_to_another_provider(router, draft, project, monkeypatch) -> None:
    """The builder lens names a provider and a fallback provider for the same model; the router is told each."""
    server, _ = router
    persona = project / "personas" / "builder.toml"
    persona.write_text(persona.read_text().replace(
        "min_beats = 3", 'min_beats = 3\nprovider = "novita"\nfallbacks = [{ provider = "together" }]'))
    monkeypatch.setenv("VERDICTS_TRANSPORT_ATTEMPTS", "2")
    monkeypatch.setenv("VERDICTS_BACKOFF_INITIAL", "0")
    server.down = {"Qwen/Qwen2.5-72B-Instruct:novita": 503}
    run = draft("hf-inference-providers", "mistral-3-small", "--concurrency", "1")
    assert run.code == 0, run.err
    models = [request["json"]["model"] for request in server.history]
    assert models.count("Qwen/Qwen2.5-72B-Instruct:novita") == 2
    assert models.count("Qwen/Qwen2.5-72B-Instruct:together") == 2
    assert "builder on mistral-3-small by Qwen/Qwen2.5-72B-Instruct:together" in run.out


def test_the_provider_the_router_names_is_recorded_through_the_clients_own_router(router, draft, project) -> None:
    """With the default router address the client builds the request with its own auto-router (no base URL): the
    header is read there too, from the client's shared session."""
    server, _ = router
    server.serve = alternate("novita", "together")
    assert draft("hf-inference-providers", "mistral-3-small").code == 0
    sidecar = json.loads((project / "outputs" / "hf-inference-providers-vs-mistral-3-small.provenance.json")
                         .read_text())
    recorded = sorted(section["served_by"] for section in sidecar["sections"].values() if section.get("key"))
    assert recorded == ["novita"] * 4 + ["together"] * 4
