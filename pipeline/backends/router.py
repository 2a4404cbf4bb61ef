"""The Inference Providers router's catalogue: which providers serve a model, their status, prices and capabilities.

``GET <router>/v1/models`` lists, per model, each provider with its status, context length, structured-output and
tool support, prices in USD per million tokens, and latency and throughput from the router's probes. It is read at
most once a day and kept in ``<cache_dir>/router-models.json`` with the time it was read; without a network the
last copy read is used, and without one either there is no catalogue: prices are then unknown, never free.

Only the Inference Providers backend uses it. The Hugging Face token is sent to the configured router (the
``router_url`` setting, ``VERDICTS_ROUTER_URL``) and nowhere else.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from ..costs import Price
from ..errors import clip
from ..retry import get_within
from ..review import Target, model_label
from ..secret import scrub
from ..settings import POLICIES, Settings, public_url
from ..write import write_atomic

CACHE_FILE = "router-models.json"
MAX_AGE = timedelta(hours=24)  # read the router at most once a day
FETCH_TIMEOUT = 10.0  # seconds: the catalogue is a convenience, a draft never waits long for it


# The shape documented at https://huggingface.co/docs/inference-providers/hub-api#list-openai-compatible-models
# ("List OpenAI-compatible models"): {"object": "list", "data": [{"id": ..., "providers": [{"provider", "status"
# ("live" or "error"), "context_length", "pricing": {"input", "output"} (USD per million tokens), "supports_tools",
# "supports_structured_output", "first_token_latency_ms", "throughput" (tokens/s), "is_model_author"}]}]}. Every
# provider field but "provider" is optional ("when available"), and read on its own: a field that is missing or not
# of its type is unknown (a price is then unknown, never 0; structured output is then asked for and the reply
# validated, never taken as "no"), and the provider is kept. Unknown fields are ignored; only an entry with no
# provider name is skipped. A price of 0 in and 0 out is not taken as free: the router lists promotions that way, and
# says nowhere whether one applies to the account (the price table can say [0, 0]).
class RouterPricing(BaseModel):
    model_config = ConfigDict(extra="ignore")

    input: float | None = None  # USD per million tokens
    output: float | None = None


class RouterProvider(BaseModel):
    model_config = ConfigDict(extra="ignore")

    provider: str
    status: str = ""
    context_length: int | None = None
    pricing: RouterPricing | None = None
    supports_tools: bool | None = None
    supports_structured_output: bool | None = None
    first_token_latency_ms: float | None = None
    throughput: float | None = None  # output tokens per second
    is_model_author: bool | None = None

    @property
    def live(self) -> bool:
        return self.status == "live"

    @property
    def price(self) -> Price | None:
        """The provider's price; None when it gives none, or gives one that is not a finite number >= 0 (JSON
        from the router may say NaN, or a negative price), or 0 (a promotion): a budget must not take any for a
        price."""
        return None if self.unpriced else self.listed_price

    @property
    def listed_price(self) -> Price | None:
        """The price as the router lists it, a promotion's 0 included (what ``cheapest`` goes by, and what
        ``providers`` shows); None when it is not a finite number >= 0."""
        p = self.pricing
        if p is None or p.input is None or p.output is None or \
                not all(math.isfinite(value) and value >= 0 for value in (p.input, p.output)):
            return None
        return Price(p.input, p.output)

    @property
    def unpriced(self) -> str:
        """Why the provider has no price, in a phrase (``gives no price``); empty when it has one."""
        p = self.pricing
        if p is None or p.input is None or p.output is None:
            return "gives no price"
        if not all(math.isfinite(value) and value >= 0 for value in (p.input, p.output)):
            return f"gives a price that is not a finite number >= 0 (input {p.input:g}, output {p.output:g}), " \
                "taken as no price"
        if p.input == 0 and p.output == 0:
            return "gives a price of 0, a promotion the router does not say applies to this account: taken as no " \
                "price (the price table can say [0, 0])"
        return ""


def _provider(entry: object) -> RouterProvider | None:
    """One provider entry, each field read on its own: one that does not parse is dropped (unknown), not the entry;
    an entry with no provider name is None."""
    fields = dict(entry) if isinstance(entry, dict) else {}
    while fields:
        try:
            return RouterProvider.model_validate(fields)
        except ValidationError as exc:
            bad = {str(error["loc"][0]) for error in exc.errors() if error["loc"]}
            if not bad or "provider" in bad:
                return None
            fields = {name: value for name, value in fields.items() if name not in bad}
    return None


def _providers(entries: object) -> list[RouterProvider]:
    return [found for entry in (entries if isinstance(entries, list) else []) if (found := _provider(entry))]


def parse_models(body: object) -> dict[str, list[RouterProvider]]:
    """model id -> its providers, in the router's order, from a ``/v1/models`` body (or a list of models)."""
    data = body.get("data") if isinstance(body, dict) else body
    models: dict[str, list[RouterProvider]] = {}
    for item in data if isinstance(data, list) else []:
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            models[item["id"]] = _providers(item.get("providers"))
    return models


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _age(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 1:
        return "just now"
    if minutes < 60:
        return f"{minutes} min ago"
    if minutes < 48 * 60:
        return f"{minutes // 60} h ago"
    return f"{minutes // (24 * 60)} days ago"


@dataclass
class Catalogue:
    """What the router said, when, and whether that copy is out of date (the router could not be read now)."""

    models: dict[str, list[RouterProvider]]
    read_at: datetime
    router: str
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    unreadable: str = ""  # why the router could not be read now, when this is an older copy

    @property
    def read(self) -> str:
        """``2026-11-23 21:14 UTC, 3 h ago`` (and why it is old, when the router could not be read now)."""
        note = f"{_when(self.read_at)}, {_age(self.now - self.read_at)}"
        return note + (f"; the router could not be read now: {self.unreadable}" if self.unreadable else "")

    def providers(self, model: str) -> list[RouterProvider] | None:
        """The providers serving ``model``, in the router's order; None when the router does not list the model."""
        return self.models.get(model)

    def entry(self, model: str, provider: str) -> RouterProvider | None:
        return next((p for p in self.models.get(model) or [] if p.provider == provider), None)

    def pick(self, model: str, policy: str) -> RouterProvider | None:
        """The provider ``policy`` would pick for ``model``. ``auto``: the first live provider in the router's order
        (the router may also follow the account's preferences, which we cannot see); ``fastest``: the live one with
        the highest throughput; ``cheapest``: the live one with the lowest input + output price; a provider name:
        that provider, if the router lists it for the model."""
        every = self.models.get(model) or []
        if policy not in POLICIES:
            return self.entry(model, policy)
        live = [p for p in every if p.live]
        if policy == "fastest":
            timed = [p for p in live if p.throughput is not None]
            return max(timed, key=lambda p: p.throughput or 0.0) if timed else (live[0] if live else None)
        if policy == "cheapest":
            priced = [(price.input + price.output, p) for p in live if (price := p.listed_price) is not None]
            return min(priced, key=lambda pair: pair[0])[1] if priced else None
        return live[0] if live else None

    def price(self, model: str, policy: str) -> tuple[Price, str] | None:
        """The price of ``model`` under ``policy`` and which provider it is; None when unknown (``no_price`` says
        why).

        ``auto`` is priced at the dearest live provider: the router chooses, so the forecast and the budget take
        the upper bound, which is unknown while any live provider has no price. A pinned provider or a policy is
        priced at the provider it picks."""
        if policy in ("", "auto"):
            live = [p for p in self.models.get(model) or [] if p.live]
            priced = [(price, p.provider) for p in live if (price := p.price)]
            return max(priced, key=lambda pair: pair[0].input + pair[0].output) \
                if priced and len(priced) == len(live) else None
        chosen = self.pick(model, policy)
        price = chosen.price if chosen is not None else None
        return (price, chosen.provider) if price is not None and chosen is not None else None

    def no_price(self, model: str, policy: str) -> str:
        """Why ``price`` is None for a model the router lists, in a phrase."""
        if policy in ("", "auto"):
            unpriced = [f"{p.provider} {p.unpriced}" for p in self.models.get(model) or [] if p.live and p.unpriced]
            if not unpriced:
                return "the router lists no live provider for it"
            which = "live provider" if len(unpriced) == 1 else "live providers"
            return f"{which} {'; '.join(unpriced)}: auto may pick it, so the upper bound is unknown"
        chosen = self.pick(model, policy)
        if chosen is None:
            return f"the router has no live provider for {policy} to pick"
        return f"{chosen.provider} {chosen.unpriced or 'gives no price'}"

    def unlisted(self, model: str, provider: str) -> bool:
        """A pinned provider the router lists ``model`` without (a policy, or a model it does not list, is not)."""
        return provider not in ("", *POLICIES) and model in self.models and self.entry(model, provider) is None

    def down(self, model: str, provider: str) -> str | None:
        """Why a pinned provider should not be tried, per the router: not listed, or listed with a status other
        than live. None when it is live, or for a policy (the router chooses among live providers)."""
        if self.unlisted(model, provider):
            return f"the router does not list {provider} for {model}"
        entry = self.entry(model, provider) if provider not in ("", *POLICIES) else None
        return None if entry is None or entry.live else \
            f"the router lists {provider} as {entry.status or 'not live'} for {model}"

    def serving(self, model: str) -> list[str]:
        return [p.provider for p in self.models.get(model) or [] if p.live]


def router_url(settings: Settings) -> str:
    return public_url(settings.router_url)


def _read_file(path: Path, router: str) -> tuple[dict[str, list[RouterProvider]], datetime] | None:
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        read_at = datetime.fromisoformat(saved["read_at"])
        if saved.get("router") != router or read_at.tzinfo is None:
            return None
        return parse_models(saved.get("data")), read_at
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _fetch(url: str, token: str) -> Any:
    response = get_within(f"{url}/v1/models", {"Authorization": f"Bearer {token}"} if token else {}, FETCH_TIMEOUT)
    if response.status_code != 200:
        raise ValueError(f"HTTP {response.status_code} from {url}/v1/models")
    return json.loads(scrub(response.text))  # a copy is kept in the cache: nothing the router echoes of the token


_read: dict[tuple[str, str], Catalogue | None] = {}  # one read per process, per cache file and router


def catalogue(settings: Settings, env: Mapping[str, str] | None = None, now: datetime | None = None,
              refresh: bool = False) -> Catalogue | None:
    """The router's catalogue: the cached copy when younger than a day, else read from the router (the token goes
    there and nowhere else), else the last copy read, however old (it says so), else None."""
    env = os.environ if env is None else env
    now = now or datetime.now(UTC)
    router = router_url(settings)
    path = settings.cache_dir / CACHE_FILE
    memo = (str(path), router)
    if memo in _read and not refresh:
        return _read[memo]
    saved = _read_file(path, router)
    if saved is not None and now - saved[1] < MAX_AGE and not refresh:
        result: Catalogue | None = Catalogue(saved[0], saved[1], router, now)
    else:
        try:
            body = _fetch(router, env.get("HF_TOKEN", ""))
            models = parse_models(body)
            if not models:  # a proxy's page, or an outage: not a router that serves nothing
                raise ValueError("the router's answer lists no model")
            # Only the parsed fields are kept: nothing the request carried (the token) can reach the file.
            data = [{"id": model, "providers": [p.model_dump(exclude_none=True) for p in providers]}
                    for model, providers in models.items()]
            write_atomic(path, json.dumps({"read_at": now.isoformat(), "router": router, "data": data}, indent=1))
            result = Catalogue(models, now, router, now)
        except Exception as exc:  # no network, a proxy's error page, a body that is not JSON: never fails a draft
            why = clip(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, 200)
            result = Catalogue(saved[0], saved[1], router, now, unreadable=why) if saved is not None else None
    _read[memo] = result
    return result


def forget() -> None:
    """Drop what this process read (tests, and a command that asks for a fresh read)."""
    _read.clear()


def structured_for(target: Target, found: Catalogue | None) -> bool:
    """Whether to send the reply schema as ``response_format`` to ``target``: when it is asked for and, through
    Inference Providers, the provider that will answer supports structured output (as far as the router says: a
    provider it does not describe is asked, as before). Replies are validated either way."""
    if not target.structured:
        return False
    if target.backend != "hf" or found is None:
        return True
    chosen = found.pick(target.model, target.provider or "auto")
    return chosen is None or chosen.supports_structured_output is not False


@dataclass
class Consulted:
    """What the catalogue says about a run's targets, before anything is sent."""

    settings: Settings  # with the router's prices where the price table has none
    catalogue: Catalogue | None = None
    prices: dict[str, str] = field(default_factory=dict)  # target label -> where its price comes from
    router_priced: bool = False  # some price came from the router
    refused: list[str] = field(default_factory=list)  # lenses pinned to a provider that does not serve their model
    warnings: list[str] = field(default_factory=list)
    skipped: dict[Target, str] = field(default_factory=dict)  # fallbacks not to try, and why

    def price_lines(self, labels: list[str] | None = None) -> list[str]:
        """``prices: <model>:<provider> from the router (read ...)``, for the run report."""
        return [f"prices: {label} {note}" for label, note in self.prices.items() if labels is None or label in labels]

    @property
    def read_note(self) -> str:
        """``router prices read <time>``, for the forecast, when a router price was used."""
        return f"router prices read {self.catalogue.read}" if self.router_priced and self.catalogue else ""


def _where(persona: Any, name: str) -> str:
    return f"personas/{persona.lens}.toml ({name})" if getattr(persona, name) else f"the settings ({name})"


def consult(settings: Settings, backend: str, jobs: list[Any], env: Mapping[str, str] | None = None,
            now: datetime | None = None) -> Consulted:
    """Read the catalogue for an Inference Providers run: price what the table does not, find lenses pinned to a
    provider the router does not list for their model, and fallbacks the router lists as down. Other backends
    get the price table as it is."""
    found = catalogue(settings, env, now) if backend == "hf" else None
    result = Consulted(settings, found)
    table = dict(settings.prices)
    added: dict[str, tuple[float, float]] = {}
    seen: set[Target] = set()
    dated = f" (as of {settings.prices_as_of})" if settings.prices_as_of else ""
    for job in jobs:
        for target in (job.target, *job.fallbacks):
            if target in seen or target.backend == "local":
                continue
            seen.add(target)
            key = target.model if target.backend == "endpoint" else target.label
            if key in table:
                result.prices.setdefault(target.label, f"from the price table{dated}")
                continue
            priced = found.price(target.model, target.provider or "auto") if found else None
            if priced is None:
                why = "" if backend != "hf" else " (the router's list could not be read)" if found is None else \
                    f" (the router does not list {target.model})" if found.providers(target.model) is None else \
                    f" (the router does not list {target.provider} for it)" \
                    if found.unlisted(target.model, target.provider) else \
                    f" ({found.no_price(target.model, target.provider or 'auto')})"
                result.prices.setdefault(target.label, f"unknown{why}")
                continue
            price, provider = priced
            added[key] = (price.input, price.output)
            result.router_priced = True
            which = f"the dearest live provider, {provider}; " if (target.provider or "auto") == "auto" else \
                f"the {target.provider} live provider, {provider}; " if target.provider in POLICIES else ""
            result.prices.setdefault(target.label, f"from the router ({which}read {found.read if found else ''})")
    # A reply is priced at the provider that served it (the router names it on the answer): every priced provider of
    # the models in use, for the table to override like the rest.
    for model in {target.model for target in seen if target.backend == "hf"}:
        for entry in (found.providers(model) if found else None) or []:
            if (served := entry.price) is not None:
                added.setdefault(model_label(model, entry.provider), (served.input, served.output))
    if added:
        result.settings = settings.model_copy(update={"prices": {**added, **table}})
    if found is None:
        return result
    lenses: set[str] = set()
    for job in jobs:
        target, persona = job.target, job.persona
        if persona.lens in lenses:
            continue
        lenses.add(persona.lens)
        serving = found.serving(target.model)
        listed = found.providers(target.model)
        if listed is None:
            result.warnings.append(f"{persona.lens} lens: the router does not list {target.model} (read "
                                   f"{found.read}); if no provider serves it, change the model in "
                                   f"{_where(persona, 'model')}")
        elif found.unlisted(target.model, target.provider):
            result.refused.append(f"{persona.lens} lens: provider {target.provider} does not serve {target.model} "
                                  f"per the router (read {found.read}); the providers that do: "
                                  f"{', '.join(serving) or 'none live'}; set one in {_where(persona, 'provider')}, "
                                  "or auto")
        elif (down := found.down(target.model, target.provider)) is not None:
            result.warnings.append(f"{persona.lens} lens: {down} (read {found.read}); live: "
                                   f"{', '.join(serving) or 'none'}")
        for fallback in job.fallbacks:
            gone = found.down(fallback.model, fallback.provider)
            if gone is not None and fallback not in result.skipped:
                result.skipped[fallback] = gone
    return result
