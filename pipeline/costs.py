"""Prices, cost estimates and the forecast: what a run will cost before it starts, and what it spent."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .errors import OverBudget, UnknownPrice, plural
from .review import Completion, Message, Target, model_label
from .settings import Settings

if TYPE_CHECKING:
    from .limiter import Limits
    from .serving import Serving

# A forecast needs a reply length before there is a reply: a 170-word quote in JSON is about 260 tokens.
EXPECTED_COMPLETION_TOKENS = 300


@dataclass(frozen=True)
class Price:
    input: float  # USD per million tokens
    output: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input + completion_tokens * self.output) / 1_000_000


FREE = Price(0.0, 0.0)


def price_for(settings: Settings, target: Target) -> Price | None:
    """The price of a target, or None when the table does not know it. The local model costs nothing.

    A plain ``"<model>"`` key prices an endpoint's model only. Through Inference Providers each provider sets
    its own price, and ``auto`` or a policy may pick any of them: only ``"<model>:<provider>"`` applies there
    (``"<model>:auto"``, ``"<model>:cheapest"`` ...), so a price typed for one provider makes no other free.
    """
    if target.backend == "local":
        return FREE
    key = target.model if target.backend == "endpoint" else model_label(target.model, target.provider or "auto")
    price = settings.prices.get(key)
    return Price(*price) if price is not None else None


def estimate_tokens(messages: list[Message]) -> int:
    """About four characters a token for English prose: good enough to forecast, never used to bill."""
    return sum(len(m["content"]) for m in messages) // 4 + 8 * len(messages)


def counted_usage(messages: list[Message], completion: Completion) -> tuple[int, int]:
    """The (prompt, completion) tokens a reply is counted at: what the server reported, or, where it reported
    none, zero, a negative count or less than a quarter of the estimate, the estimate from the text. A budget must
    not fail open because a server says a request was free."""
    def plausible(reported: int, estimate: int) -> int:
        return reported if reported > 0 and reported >= estimate // 4 else estimate

    return (plausible(completion.prompt_tokens, estimate_tokens(messages)),
            plausible(completion.completion_tokens, len(completion.text or "") // 4 + 1))


@dataclass
class Forecast:
    requests: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = 0.0
    unpriced: tuple[str, ...] = ()  # models (with provider) the price table does not know
    priced_cost: float = 0.0  # the cost of the requests that have a price (all of them, unless some are unpriced)


def forecast(settings: Settings, pending: list[tuple[Target, list[Message]]], cached: int) -> Forecast:
    result = Forecast(requests=len(pending), cached=cached)
    unpriced: set[str] = set()
    for target, messages in pending:
        prompt, completion = estimate_tokens(messages), min(settings.max_tokens, EXPECTED_COMPLETION_TOKENS)
        result.prompt_tokens += prompt
        result.completion_tokens += completion
        price = price_for(settings, target)
        if price is None:
            unpriced.add(target.label)
        else:
            result.priced_cost += price.cost(prompt, completion)
    result.cost = result.priced_cost
    if unpriced:
        result.cost, result.unpriced = None, tuple(sorted(unpriced))
    return result


@dataclass
class Usage:
    """What was actually sent and received (a ``Forecast`` is what will be)."""

    requests: int = 0
    cache_hits: int = 0
    from_outputs: int = 0  # reviews reused from the drafts under outputs/, with no request
    reasks: int = 0
    retries: int = 0
    failed: int = 0  # times a target could not serve a review: still failing after its retries, or refused
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = 0.0  # USD; None once a request was made at a price the table does not know


@dataclass
class Stats(Usage):
    """Totals, and the same counts per (backend, model, provider) for the run report."""

    by_target: dict[tuple[str, str, str], Usage] = field(default_factory=dict)
    priced_cost: float = 0.0  # USD spent on the requests that have a price (``cost`` is None once one has none)
    # endpoint address -> the response_format dialect its reviews were asked in, and why (pipeline/dialects.py)
    structured: dict[str, str] = field(default_factory=dict)
    limits: Limits | None = field(default=None, repr=False)  # the concurrency each target reached (limiter.py)
    serving: Serving | None = field(default=None, repr=False)  # who served what through Inference Providers
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, target: Target, cost: float | None = 0.0, **counts: int) -> None:
        with self._lock:
            row = self.by_target.setdefault((target.backend, target.model, target.provider), Usage())
            for usage in (self, row):
                for name, value in counts.items():
                    setattr(usage, name, getattr(usage, name) + value)
                usage.cost = None if usage.cost is None or cost is None else usage.cost + cost
            self.priced_cost += cost or 0.0


def unpriced_targets(planned: Forecast, why: Mapping[str, str] | None = None) -> str:
    """The targets with no price, each with why when known: ``Qwen/...:auto (the router's list could not be read)``
    from ``why``'s ``unknown (the router's list could not be read)``."""
    return ", ".join(label + (why or {}).get(label, "").removeprefix("unknown") for label in planned.unpriced)


def check_budget(settings: Settings, planned: Forecast, why: Mapping[str, str] | None = None) -> str:
    """Refuse to start a run whose forecast is above the budget, or cannot be priced against it (``why``: target
    label -> where its price comes from, ``unknown (...)`` and why). With ``allow_unknown_prices`` an unpriced run
    starts, its priced part held to the budget: the warning to print says so (empty when there is nothing to say)."""
    budget = settings.max_cost
    if budget is None or planned.requests == 0:
        return ""
    unpriced = unpriced_targets(planned, why)
    if planned.cost is None and not settings.allow_unknown_prices:
        raise UnknownPrice(f"a budget of ${budget:.4f} is set, but there is no price for {unpriced}; nothing was sent",
                           hint='Add its price to [tool.verdicts.prices] in pyproject.toml ("<model>:<provider>", '
                           'or "<model>" for an endpoint, = [input, output] in USD per million tokens), or pin a '
                           "provider the router prices; to hold only the priced requests to the budget, pass "
                           "--allow-unknown-prices (VERDICTS_ALLOW_UNKNOWN_PRICES=1); or run without --max-cost.")
    cost = planned.priced_cost if planned.cost is None else planned.cost
    if cost > budget:
        raise OverBudget(f"the forecast cost ${cost:.4f} ({plural(planned.requests, 'request')}) is "
                         f"above the budget of ${budget:.4f}; nothing was sent",
                         hint="Raise --max-cost (VERDICTS_MAX_COST), or see `python -m pipeline prompts A B`.")
    if planned.cost is None:
        return (f"the budget of ${budget:.4f} counts only the requests that have a price (allow_unknown_prices): "
                f"what is spent on {unpriced} is not counted")
    return ""
