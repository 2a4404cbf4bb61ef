"""What a refresh did, as the body of the pull request CI opens (Markdown), and as lines for the terminal."""

from __future__ import annotations

from pathlib import Path

from .costs import Forecast, money
from .generate import Stats
from .refresh import RefreshResult
from .settings import Settings
from .stale import label


def _shown(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def pr_body(result: RefreshResult, root: Path) -> str:
    """Deterministic for a given run: no times, no URLs, no hostnames."""
    stale = [c for c in result.changes if c.stale and not c.broken]
    broken = [c for c in result.changes if c.broken]
    lines = ["## Refreshed drafts", ""]
    if broken:
        lines += ["**Could not refresh**, an editor must look:", ""]
        lines += [f"- `{_shown(c.path, root)}`: {c.broken}" for c in broken]
        lines.append("")
    if not stale:
        lines += [f"No other draft of {result.checked} is stale; nothing was regenerated." if broken else
                  f"All {result.checked} drafts are up to date; nothing was regenerated.", ""]
        return "\n".join(lines)
    lines += [f"`python -m pipeline refresh` found {len(stale)} of {result.checked} drafts stale and regenerated "
              "only their stale sections. Hand edits were merged, never overwritten.", ""]
    if result.conflicts:
        lines += [f"**{result.conflicts} conflict{'s' if result.conflicts != 1 else ''}**: an editor's text and "
                  "the new generation changed the same lines. The editor's text was kept; the new generation is "
                  "in an HTML comment right below it (look for `verdicts refresh: conflict` in the diff). Take "
                  "what you want from it, then delete the comment.", ""]
    else:
        lines += ["No conflicts.", ""]
    for change in stale:
        lines += [f"### `{_shown(change.path, root)}`", "", "| Section | Why | Result |", "| --- | --- | --- |"]
        lines += [f"| {label(s.section)} | {'; '.join(s.reasons)} | {change.outcome(s.section)} |"
                  for s in change.stale]
        if change.pinned:
            lines += ["", "Pinned, left as they are: " + ", ".join(label(s) for s in change.pinned) + "."]
        if change.released:
            lines += ["", "Pins released, their sections no longer exist: "
                      + ", ".join(label(s) for s in change.released) + "."]
        lines.append("")
    s = result.stats
    models = ", ".join(f"`{m}`" for m in result.models) or "none"
    lines += ["### Spent", "", "| Backend | Models | Requests | Cache hits | Re-asks | Transport retries "
              "| Prompt tokens | Completion tokens |", "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
              f"| {result.backend} | {models} | {s.requests} | {s.cache_hits} | {s.reasks} | {s.retries} "
              f"| {s.prompt_tokens} | {s.completion_tokens} |", ""]
    return "\n".join(lines)


def summary(result: RefreshResult, root: Path) -> list[str]:
    lines = []
    for change in result.changes:
        if change.broken:
            lines.append(f"{_shown(change.path, root)}: not refreshed: {change.broken}")
            continue
        state = "rewritten" if change.written else "unchanged on disk"
        lines.append(f"{_shown(change.path, root)}: {len(change.stale)} stale sections, {state}")
        lines += [f"  {s}: {change.outcome(s.section).replace('**', '')}" for s in change.stale]
    s = result.stats
    lines.append(f"Refreshed {len(result.changes)} of {result.checked} drafts: {s.requests} requests, "
                 f"{s.cache_hits} cache hits, {s.reasks} re-asks, {s.retries} transport retries, "
                 f"{s.prompt_tokens} prompt + {s.completion_tokens} completion tokens, {result.conflicts} conflicts")
    return lines


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    return ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            for row in [header, *rows]]


def run_report(stats: Stats, seconds: float, settings: Settings) -> list[str]:
    """The end-of-run report: what was sent, received and spent, per backend and model."""
    header = ["backend", "model", "provider", "requests", "cache hits", "re-asks", "retries", "failed", "prompt tok",
              "completion tok", "cost"]
    rows = [[backend, model, provider or "-", str(u.requests), str(u.cache_hits), str(u.reasks), str(u.retries),
             str(u.failed), str(u.prompt_tokens), str(u.completion_tokens), money(u.cost)]
            for (backend, model, provider), u in sorted(stats.by_target.items())]
    if len(rows) > 1:
        rows.append(["total", "", "", str(stats.requests), str(stats.cache_hits), str(stats.reasks),
                     str(stats.retries), str(stats.failed), str(stats.prompt_tokens), str(stats.completion_tokens),
                     money(stats.cost)])
    dated = f", prices as of {settings.prices_as_of}" if settings.prices_as_of else ""
    lines = [f"Run report ({seconds:.1f} s wall{dated}):", *("  " + line for line in _table(header, rows))]
    if stats.cost is None:
        lines.append("  cost unknown: add the model's price to [tool.verdicts.prices] in pyproject.toml")
    return lines


def forecast_lines(result: Forecast, settings: Settings) -> list[str]:
    cost = money(result.cost)
    lines = [f"Forecast: {result.requests} requests ({result.cached} reviews cached), about {result.prompt_tokens} "
             f"prompt + {result.completion_tokens} completion tokens, cost {cost}"
             + (f" (prices as of {settings.prices_as_of})" if settings.prices_as_of and result.cost else "")]
    if result.unpriced:
        lines.append("  no price for " + ", ".join(result.unpriced) + ": add it to [tool.verdicts.prices]")
    return lines
