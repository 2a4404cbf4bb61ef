"""The ``prompts`` command: what a draft would send, what the cache already holds, and what it would cost.

Builds no client and sends no review; through Inference Providers it reads the router's model list (at most once a
day) for prices and to warn of a lens pinned to a provider that does not serve its model.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from .backends.router import consult
from .cache import ReviewCache
from .costs import check_budget, forecast, unpriced_targets
from .errors import OverBudget, UnknownPrice
from .generate import cached_review
from .project import Project
from .report import forecast_lines
from .settings import Settings


def dry_run(root: Path, slug_a: str, slug_b: str, settings: Settings,
            env: Mapping[str, str] | None = None) -> list[str]:
    project = Project(root, settings, env)
    jobs = project.plan(project.pair(slug_a, slug_b))
    cache = ReviewCache(settings.cache_dir)
    try:
        cached = {job.key for job in jobs if cached_review(cache, job) is not None}
    finally:
        cache.close()
    out = [f"Prompts for {slug_a} vs {slug_b} through the {project.backend} backend (nothing is sent)", ""]
    consulted = consult(settings, project.backend, jobs, env)
    settings = consulted.settings
    out += [f"warning: {line}; `python -m pipeline draft` would refuse to start" for line in consulted.refused]
    out += [f"warning: {line}" for line in consulted.warnings]
    out += [f"warning: fallback {target.label} would not be tried: {why}" for target, why in consulted.skipped.items()]
    if consulted.refused or consulted.warnings or consulted.skipped:
        out.append("")
    for job in jobs:
        state = "cached" if job.key in cached else "to send"
        provider = f", provider {job.target.provider}" if job.target.provider else ""
        fallbacks = f", then {', '.join(t.label for t in job.fallbacks)} if it keeps failing" if job.fallbacks else ""
        out.append(f"=== {job.persona.lens} on {job.slug}: model {job.target.model}{provider}{fallbacks}, "
                   f"temperature {job.target.temperature} [{state}]")
        for message in job.messages:
            out += [f"--- {message['role']}", message["content"].rstrip(), ""]
    pending = [(job.target, job.messages) for job in jobs if job.key not in cached]
    planned = forecast(settings, pending, len(jobs) - len(pending))
    out += forecast_lines(planned, settings, consulted.read_note)
    out += consulted.price_lines()
    if settings.max_cost is not None:
        try:
            allowed = check_budget(settings, planned, consulted.prices)
            verdict = f"within it; {allowed}" if allowed else "within it"
        except UnknownPrice:
            verdict = (f"cannot be checked: no price for {unpriced_targets(planned, consulted.prices)}; the draft "
                       "would refuse to start (unless --allow-unknown-prices)")
        except OverBudget:
            verdict = "ABOVE it: the draft would refuse to start"
        out.append(f"Budget ${settings.max_cost:.4f}: {verdict}")
    return out
