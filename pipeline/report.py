"""The run report and the forecast: what a run sent, received and spent, or will."""

from __future__ import annotations

from .costs import Forecast, Stats, Usage
from .errors import money, plural
from .review import describe_section
from .settings import Settings


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    return ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            for row in [header, *rows]]


def run_report(stats: Stats, seconds: float, settings: Settings, prices: list[str] | None = None) -> list[str]:
    """The end-of-run report: what was sent, received and spent, per backend and model, and where each price came
    from (``prices``: the price table, the router, or unknown)."""
    header = ["backend", "model", "provider", "requests", "cache hits", "from outputs/", "re-asks", "retries",
              "failed", "prompt tok", "completion tok", "cost"]

    def counts(u: Usage) -> list[str]:
        return [str(n) for n in (u.requests, u.cache_hits, u.from_outputs, u.reasks, u.retries, u.failed,
                                 u.prompt_tokens, u.completion_tokens)] + [money(u.cost)]

    rows = [[backend, model, provider or "-", *counts(u)]
            for (backend, model, provider), u in sorted(stats.by_target.items())]
    if not rows:
        return [f"Run report ({seconds:.1f} s wall): no review was needed, nothing was sent or spent."]
    if len(rows) > 1:
        rows.append(["total", "", "", *counts(stats)])
    dated = f", prices as of {settings.prices_as_of}" if settings.prices_as_of else ""
    lines = [f"Run report ({seconds:.1f} s wall{dated}):", *("  " + line for line in _table(header, rows))]
    lines += [f"  {line}" for line in prices or []]
    if stats.cost is None:
        lines.append("  cost unknown: add the model's price to [tool.verdicts.prices] in pyproject.toml")
    lines += [f"  structured output from {server}: {dialect}" for server, dialect in sorted(stats.structured.items())]
    return lines + (stats.serving.lines() if stats.serving is not None else []) + concurrency_lines(stats)


def concurrency_lines(stats: Stats) -> list[str]:
    """Per target, the concurrency its replies allowed (limiter.py): where it started, the highest it reached, the
    most requests in flight at once, and the 429 and 503 replies that held it back."""
    if stats.limits is None or not stats.limits.by_key:
        return []
    lines = [f"  concurrency (peak {stats.limits.peak} in flight in all):"]
    for key, f in stats.limits.figures().items():
        held = f", {plural(f.overloads, 'overload')} (429/503), ended at {f.final}" if f.overloads else ""
        lines.append(f"    {key}: started at {f.start}, reached {f.reached} of at most {f.ceiling}, "
                     f"peak {f.peak} in flight{held}")
    return lines


def forecast_lines(result: Forecast, settings: Settings, router: str = "") -> list[str]:
    """The forecast; ``router`` is ``router prices read <time>`` when the router priced some of it."""
    cost = money(result.cost)
    dated = [f"prices as of {settings.prices_as_of}"] if settings.prices_as_of else []
    dated += [router] if router else []
    lines = [f"Forecast: {result.requests} requests ({result.cached} reviews cached), about {result.prompt_tokens} "
             f"prompt + {result.completion_tokens} completion tokens, cost {cost}"
             + (f" ({'; '.join(dated)})" if dated and result.cost else "")]
    if result.unpriced:
        lines.append("  no price for " + ", ".join(result.unpriced) + ": add it to [tool.verdicts.prices]")
    return lines


def facts_to_check(flags: dict[str, list[str]]) -> list[str]:
    """Claims in the new quotes that their fact sheets do not support: the editor verifies them (no re-ask)."""
    if not flags:
        return []
    return ["Facts to check (the quotes say them, the fact sheets do not):",
            *(f"  {describe_section(name)}: {', '.join(claims)}" for name, claims in flags.items())]


def for_the_editor(sameness: dict[str, list[str]], notes: dict[str, list[str]]) -> list[str]:
    """Quotes that repeat another quote's point on the page, and near misses on length: accepted, for the editor
    to cut, rewrite or trim by hand (neither is asked again: see README, "Flags rather than re-asks")."""
    lines = []
    if sameness:
        lines.append("Same point twice (an editor should cut or rewrite one of them):")
        lines += [f"  {describe_section(name)} repeats the {flag}"
                  for name, flags in sameness.items() for flag in flags]
    if notes:
        lines.append("Near misses on length, accepted (trim or extend by hand):")
        lines += [f"  {describe_section(name)}: {note}" for name, found in notes.items() for note in found]
    return lines
