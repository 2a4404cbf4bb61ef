"""Prices, cost estimates and the forecast: what a run will cost before it starts, and what it spent."""

from __future__ import annotations

from dataclasses import dataclass

from .backends import Target
from .errors import OverBudget
from .render import Message
from .settings import Settings

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
    """The price of a target, or None when the table does not know it. The local model costs nothing."""
    if target.backend == "local":
        return FREE
    for key in (f"{target.model}:{target.provider}", target.model):
        if key in settings.prices:
            return Price(*settings.prices[key])
    return None


def estimate_tokens(messages: list[Message]) -> int:
    """About four characters a token for English prose: good enough to forecast, never used to bill."""
    return sum(len(m["content"]) for m in messages) // 4 + 8 * len(messages)


def money(value: float | None) -> str:
    return "unknown" if value is None else f"${value:.4f}"


@dataclass
class Forecast:
    requests: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = 0.0
    unpriced: tuple[str, ...] = ()  # models (with provider) the price table does not know


def forecast(settings: Settings, pending: list[tuple[Target, list[Message]]], cached: int) -> Forecast:
    result = Forecast(requests=len(pending), cached=cached)
    unpriced: set[str] = set()
    for target, messages in pending:
        prompt, completion = estimate_tokens(messages), min(settings.max_tokens, EXPECTED_COMPLETION_TOKENS)
        result.prompt_tokens += prompt
        result.completion_tokens += completion
        price = price_for(settings, target)
        if price is None:
            unpriced.add(f"{target.model}:{target.provider}" if target.provider else target.model)
        elif result.cost is not None:
            result.cost += price.cost(prompt, completion)
    if unpriced:
        result.cost, result.unpriced = None, tuple(sorted(unpriced))
    return result


def check_budget(settings: Settings, planned: Forecast) -> None:
    """Refuse to start a run whose forecast is above the budget, or cannot be priced against it."""
    budget = settings.max_cost
    if budget is None or planned.requests == 0:
        return
    if planned.cost is None:
        raise OverBudget(f"a budget of ${budget:.4f} is set, but there is no price for {', '.join(planned.unpriced)}; "
                         "nothing was sent", hint="Add the price to [tool.verdicts.prices] in pyproject.toml, "
                         "or run without --max-cost / VERDICTS_MAX_COST.")
    if planned.cost > budget:
        raise OverBudget(f"the forecast cost ${planned.cost:.4f} ({planned.requests} requests) is above the budget "
                         f"of ${budget:.4f}; nothing was sent",
                         hint="Raise --max-cost (VERDICTS_MAX_COST), or see `python -m pipeline prompts A B`.")
