"""One review session, shared by ``draft`` and ``refresh``: from planned jobs to reviews, with the cost checked.

Open the cache, forecast what it does not hold, refuse a run above the budget, say what will be sent, open the
run log, run the reviews, close the run log's entry with how it ended, close the cache.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TextIO

from .backends.chat import ChatBackend, refuse_offline, select_backend
from .backends.router import Consulted, consult
from .cache import ReviewCache
from .costs import Forecast, Stats, check_budget, forecast
from .distinct import ask_again
from .errors import GaveUpOnReply, NotServed, ProviderNotServing
from .generate import Reviewer, cached_review
from .progress import Progress
from .project import Project
from .review import Job, Review, parse_section
from .runlog import RunLog
from .validate import quote_problems
from .write import can_write


class ReviewSession:
    """The backend chosen for a run, and what the run has sent and spent so far."""

    def __init__(self, project: Project, env: Mapping[str, str] | None = None, log: TextIO | None = None,
                 retry_fallbacks: bool = False, use_cache: bool = True, keep_going: bool = False) -> None:
        self.project = project
        self.settings = project.settings
        self.backend = select_backend(self.settings, env)
        self.env = env
        self.log = log or sys.stderr
        self.consulted = Consulted(self.settings)  # what the router's catalogue says, once run() has read it
        self.retry_fallbacks = retry_fallbacks
        self.use_cache = use_cache
        self.keep_going = keep_going  # a review no target serves is a placeholder, not the end of the run
        self.stats = Stats()
        self.missing: list[GaveUpOnReply | NotServed] = []  # placeholders: replies still invalid, or not served

    def library(self) -> dict[str, Review]:
        """The reviews the drafts under outputs/ record, by cache key: what they say is enough to rebuild the
        review, so a new page reuses it on any machine, with an empty cache. Quotes left as placeholders are not
        reviews."""
        found: dict[str, Review] = {}
        for _, record in self.project.recorded:
            for name, section in record.sections.items():
                if section.key and section.quote and not section.missing:
                    lens, slug = parse_section(name)  # the review as generated, not an approved text
                    found.setdefault(section.key, Review(lens, slug, section.verdict, section.quote, section.model,
                                                         section.provider, section.fallback,
                                                         served_by=section.served_by))
        return found

    def from_outputs(self, cache: ReviewCache, jobs: list[Job]) -> dict[str, Review]:
        """Reviews of ``jobs`` that the cache lacks and a draft under outputs/ holds, still valid for their lens;
        they are put in the cache too."""
        if not self.use_cache:
            return {}
        library = self.library()
        reused: dict[str, Review] = {}
        for job in jobs:
            old = library.get(job.key)
            if old is None or job.key in reused or (cache.get(job.key) or {}).get("forgotten") or \
                    cached_review(cache, job, self.retry_fallbacks) is not None:
                continue
            if (old.fallback and self.retry_fallbacks) or quote_problems(job.persona, old.quote, job.sheet):
                continue
            review = Review(job.persona.lens, job.slug, old.verdict, old.quote, old.model, old.provider, old.fallback,
                            served_by=old.served_by)
            cache.keep(job.key, review)
            reused[job.key] = review
            self.stats.add(job.target, from_outputs=1)
        return reused

    def run(self, jobs: list[Job], command: str, drafts: list[str], announce: str, what: str,
            while_waiting: Callable[[], object] | None = None) -> dict[str, Review]:
        """Every job's review, by section id. ``announce`` starts the line that says what is about to be sent;
        ``while_waiting`` runs once requests are in flight (imports only the page needs, say)."""
        cache = ReviewCache(self.settings.cache_dir)
        try:
            if jobs:  # where an invalid reply would be kept: found unusable now, not after paying for it
                can_write(self.settings.cache_dir / "failed" / f"{jobs[0].slug}--{jobs[0].persona.lens}.json",
                          "a reply that stays invalid")
            reused = self.from_outputs(cache, jobs)
            jobs_left = [job for job in jobs if job.key not in reused]
            if not jobs_left:
                print(f"{announce}: every review comes from the drafts under outputs/", file=self.log)
                return {job.section: reused[job.key] for job in jobs}
            refuse_offline(self.backend, lambda: sum(cached_review(cache, job, self.retry_fallbacks, self.use_cache)
                                                     is None for job in {job.key: job for job in jobs_left}.values()))
            jobs_left = self.consult(jobs_left)
            planned = self.forecast(cache, jobs_left)
            if self.consulted.refused and planned.requests:
                raise ProviderNotServing("; ".join(self.consulted.refused) + "; nothing was sent")
            if self.backend.name == "hf":  # a forecast worth a line: the router's prices
                from .report import forecast_lines

                for line in forecast_lines(planned, self.settings, self.consulted.read_note):
                    print(line, file=self.log)
            allowed = check_budget(self.settings, planned, self.consulted.prices)
            if allowed:
                print(f"warning: {allowed}", file=self.log)
            print(f"{announce} through {self.backend.describe()}", file=self.log)
            runlog = RunLog(self.settings.cache_dir, command, drafts, self.backend.name, self.settings.run_log_mb)
            reviewer = Reviewer(self.project.root, self.backend, cache, self.settings, Progress(self.log), runlog,
                                self.retry_fallbacks, self.stats, self.use_cache, self.keep_going)
            self.missing = reviewer.missing
            try:
                reviews = reviewer.review_all(jobs_left, what, while_waiting)
                reviews.update({job.section: reused[job.key] for job in jobs if job.key in reused})
                # Distinct voices per tool: a new review that argues another lens's point is asked once more.
                before = reviewer.failure  # the last reply may have reached the budget: the page is written still
                ask_again(self.project, reviewer, cache, jobs, reviews, self.library(), reviewer.each)
                if reviewer.failure is not before and reviewer.failure is not None:
                    raise reviewer.failure  # the budget ran out, or the credits did, during those re-asks
            except BaseException as exc:
                runlog.write(type="end", outcome=f"failed: {getattr(exc, 'message', type(exc).__name__)}",
                             structured=self.structured())
                raise
            s = self.stats
            outcome = f"{len(self.missing)} reviews missing" if self.missing else "ok"
            runlog.write(type="end", outcome=outcome, requests=s.requests, cache_hits=s.cache_hits,
                         prompt_tokens=s.prompt_tokens, completion_tokens=s.completion_tokens, cost=s.cost,
                         structured=self.structured())
            return reviews
        finally:
            cache.close()

    def consult(self, jobs: list[Job]) -> list[Job]:
        """Before anything is sent, what the router's catalogue says (Inference Providers only): prices the table
        lacks, a lens pinned to a provider that does not serve its model (refused), fallbacks listed as down
        (skipped). The jobs, without those fallbacks; their cache keys are unchanged."""
        self.consulted = consult(self.settings, self.backend.name, jobs, self.env)
        self.settings = self.consulted.settings
        if isinstance(self.backend, ChatBackend):
            self.backend.catalogue = self.consulted.catalogue
        for warning in self.consulted.warnings:
            print(f"warning: {warning}", file=self.log)
        skipped = self.consulted.skipped
        for target, why in skipped.items():
            print(f"Fallback {target.label} will not be tried: {why}", file=self.log)
        return [replace(job, fallbacks=tuple(t for t in job.fallbacks if t not in skipped)) if skipped else job
                for job in jobs]

    def price_lines(self) -> list[str]:
        """Where the price of each target the run used came from, for the run report."""
        used = [f"{model}:{provider}" if provider else model for (_, model, provider) in self.stats.by_target]
        return self.consulted.price_lines(used)

    def structured(self) -> dict[str, str]:
        """The response_format dialect each endpoint was asked in (a backend that has none says nothing), kept in
        the stats for the run report."""
        describe = getattr(self.backend, "describe_structured", None)
        self.stats.structured.update(describe() if describe is not None else {})
        return self.stats.structured

    def forecast(self, cache: ReviewCache, jobs: list[Job]) -> Forecast:
        """What the jobs the cache does not hold will cost."""
        unique = list({job.key: job for job in jobs}.values())
        pending = [job for job in unique if cached_review(cache, job, self.retry_fallbacks, self.use_cache) is None]
        return forecast(self.settings, [(job.target, job.messages) for job in pending], len(unique) - len(pending))
