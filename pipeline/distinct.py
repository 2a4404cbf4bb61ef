"""Distinct voices on a tool: once a run's reviews are in, a review that argues another lens's point on the
same tool is asked once more for a point of its own.

A tool's four reviews are shared by every page with the tool, so this is page-independent and runs once per tool.
Of two reviews that make the same point, the later lens in panel order is re-asked; only a reply paid for in this
run is ever replaced (one another page already shows, or an editor accepted, is not), so when the later one is
settled the earlier is re-asked, and when both are the pair is only flagged. The re-ask continues the lens's
conversation (its prompt, its reply, ``prompts/reask-distinct.j2``), at most once per review and run; its reply
replaces the cached review only when it passes the lens's rules. What still repeats is flagged in the sidecar at
the page (``sameness.page_flags``): never a silent pass.

The same lens on the two tools of a page is only flagged, never re-asked: a review depends on one tool and serves
every page with it, so rewriting it to differ from this page's other tool would change it on pages where that
tool is absent, and make a review depend on its page partner.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .cache import ReviewCache
from .generate import Reviewer, cached_review
from .project import Project
from .render import distinct_message
from .review import Job, Review
from .sameness import Overlap, clip_sentence, house_phrases, overlap, prepare, stock_phrases, tool_terms, words


@dataclass(frozen=True)
class Repeat:
    """A review to re-ask: it repeats ``other``'s point (``found``: this review as the later quote)."""

    job: Job
    review: Review
    other: Job
    found: Overlap


def repeats(project: Project, cache: ReviewCache, jobs: list[Job], reviews: dict[str, Review], fresh: set[str],
            library: dict[str, Review]) -> list[Repeat]:
    """The reviews of this run to re-ask: per tool with a review requested in this run, each pair of lenses that
    makes the same point, the later one re-asked where it was requested now, else the earlier one."""
    house = house_phrases(project.personas)
    found: dict[str, Repeat] = {}
    for slug in dict.fromkeys(job.slug for job in jobs if job.key in fresh):
        panel: list[tuple[Job, Review]] = []
        for persona in project.personas:
            job = project.job(persona.lens, slug)
            review = reviews.get(job.section) or cached_review(cache, job) or library.get(job.key)
            if review is not None and review.quote and not review.missing:
                panel.append((job, review))
        terms = tool_terms(project.tool(slug), slug)
        prepared = {job.section: prepare(review.quote, house, terms) for job, review in panel}
        for index, (first, first_review) in enumerate(panel):
            for second, second_review in panel[index + 1:]:
                if second.key in fresh and not second_review.accepted:
                    mine, theirs, review = second, first, second_review
                elif first.key in fresh and not first_review.accepted:
                    mine, theirs, review = first, second, first_review
                else:
                    continue  # neither was paid for in this run: the pair is only flagged
                result = overlap(prepared[theirs.section], prepared[mine.section])
                if result.same and mine.section not in found:
                    found[mine.section] = Repeat(mine, review, theirs, result)
    return list(found.values())


def ask_again(project: Project, reviewer: Reviewer, cache: ReviewCache, jobs: list[Job],
              reviews: dict[str, Review], library: dict[str, Review],
              each: Callable[[list[Repeat], Callable[[Repeat], Review | None]], list[Review | None]]) -> int:
    """Re-ask every review of this run that repeats another lens on its tool; the new reviews replace the old in
    ``reviews``. How many were re-asked. ``each`` runs the re-asks, as many at once as the targets allow."""
    todo = repeats(project, cache, jobs, reviews, reviewer.fresh, library)
    if not todo:
        return 0
    house = house_phrases(project.personas)
    stock: dict[str, set[str]] = {}

    def phrases(repeat: Repeat) -> list[str]:
        """The catalogue's stock phrases of this lens (across the drafts under outputs/) that the reply uses."""
        lens = repeat.job.persona.lens
        if lens not in stock:
            quotes = [(lens, review.slug, review.quote, tool_terms(None, review.slug))
                      for review in library.values() if review.lens == lens]
            stock[lens] = {s.phrase for s in stock_phrases(quotes, house).get(lens, [])}
        said = f" {' '.join(words(repeat.review.quote))} "
        return sorted(phrase for phrase in stock[lens] if f" {phrase} " in said)[:5]

    def one(repeat: Repeat) -> Review | None:
        message = distinct_message(project.root, repeat.job.persona, repeat.other.persona, repeat.found.sentence,
                                   repeat.found.earlier, phrases(repeat))
        reviewer.progress.say(f"  re-asking {repeat.job.persona.lens} review of {repeat.job.slug}: it makes the "
                              f"{repeat.other.persona.lens}'s point (“{clip_sentence(repeat.found.sentence, 80)}”)")
        return reviewer.reask_distinct(repeat.job, repeat.review, message)

    for repeat, new in zip(todo, each(todo, one), strict=True):
        if new is not None:
            for job in jobs:
                if job.key == repeat.job.key:
                    reviews[job.section] = new
    return len(todo)
