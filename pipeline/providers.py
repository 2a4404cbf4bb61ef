"""The ``providers`` command: for the model each lens uses, the providers the router lists for it, and which one
the configured policy would pick. Sends no review; reads the router's model list (at most once a day)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .backends.router import Catalogue, RouterProvider, catalogue, router_url
from .errors import NoCatalogue, Outcome
from .project import Project, targets_for
from .report import _table
from .settings import POLICIES, Settings

# What each policy is taken to pick, said under the table and in the README.
POLICY_NOTES = {
    "auto": "auto: the router's own order, taken as its first live provider (the router may also follow the "
            "account's preferences at https://hf.co/settings/inference-providers)",
    "fastest": "fastest: the live provider with the highest throughput",
    "cheapest": "cheapest: the live provider with the lowest input + output price",
}


def _number(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _yes(value: bool | None) -> str:
    return "?" if value is None else "yes" if value else "no"


def _row(entry: RouterProvider) -> dict[str, Any]:
    price = entry.listed_price  # a price that is not a finite number >= 0 is shown as none
    return {"provider": entry.provider, "status": entry.status or None,
            "input_usd_per_million": price.input if price else None,
            "output_usd_per_million": price.output if price else None,
            "context_length": entry.context_length, "structured_output": entry.supports_structured_output,
            "supports_tools": entry.supports_tools, "throughput": entry.throughput,
            "first_token_latency_ms": entry.first_token_latency_ms}


def providers(root: Path, settings: Settings, env: Mapping[str, str] | None = None,
              as_json: bool = False) -> Outcome:
    project = Project(root, settings, env)
    found = catalogue(settings, env)
    if found is None:
        raise NoCatalogue(f"could not read the router's model list from {router_url(settings)}/v1/models, and no "
                          f"earlier copy is kept in {settings.cache_dir}",
                          hint="Check the network (or VERDICTS_ROUTER_URL behind a proxy) and try again.")
    # One section per (model, policy): lenses that use the same model the same way share it.
    uses: dict[tuple[str, str], list[str]] = {}
    for persona in project.personas:
        target = targets_for("hf", settings, persona)[0]
        uses.setdefault((target.model, target.provider or "auto"), []).append(persona.lens)
    if as_json:
        return Outcome([json.dumps(_as_json(found, uses), indent=2)])
    lines = [f"Inference Providers per the router {found.router} (read {found.read})"]
    for (model, policy), lenses in uses.items():
        lines += [""] + _section(found, model, policy, lenses)
    return Outcome(lines)


def _section(found: Catalogue, model: str, policy: str, lenses: list[str]) -> list[str]:
    head = f"{model} for {', '.join(lenses)}, provider {policy}"
    listed = found.providers(model)
    if listed is None:
        return [f"{head}: the router does not list this model, so no provider serves it: change the model"]
    chosen = found.pick(model, policy)
    header = ["", "provider", "status", "in $/M", "out $/M", "context", "structured", "tokens/s"]
    rows = [["*" if entry is chosen else "", entry.provider, entry.status or "?",
             _number(entry.listed_price.input if entry.listed_price else None),
             _number(entry.listed_price.output if entry.listed_price else None),
             "-" if entry.context_length is None else str(entry.context_length),
             _yes(entry.supports_structured_output), _number(entry.throughput, 1)] for entry in listed]
    lines = [head + ":", *("  " + line for line in _table(header, rows))] if rows else [f"{head}: no provider listed"]
    if policy in POLICIES:
        mark = f"* what {POLICY_NOTES[policy]}" if chosen else f"{policy}: no live provider to pick"
    elif chosen is None:
        mark = f"{policy}: not served: the router does not list {policy} for this model; pick one above, or auto"
    else:
        mark = f"* the pinned provider, {policy}" + ("" if chosen.live else f" (status {chosen.status or '?'})")
    free = [entry.provider for entry in listed if entry.listed_price is not None and entry.price is None]
    note = [f"  0.00 ({', '.join(free)}): a promotion the router does not say applies to this account; forecast as "
            "unknown unless the price table says [0, 0]"] if free else []
    return [*lines, f"  {mark}", *note]


def _as_json(found: Catalogue, uses: dict[tuple[str, str], list[str]]) -> dict[str, Any]:
    models = []
    for (model, policy), lenses in uses.items():
        listed = found.providers(model)
        chosen = found.pick(model, policy)
        models.append({"model": model, "lenses": lenses, "policy": policy, "listed": listed is not None,
                       "pick": chosen.provider if chosen else None,
                       "providers": [_row(entry) for entry in listed or []]})
    return {"router": found.router, "read_at": found.read_at.isoformat(), "stale": bool(found.unreadable),
            "models": models}
