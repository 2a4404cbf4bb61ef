"""Get one valid review per (lens, tool): from the cache, or from the model with re-asks on invalid replies."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from .backends import ChatBackend, Target
from .cache import ReviewCache, review_key
from .errors import ReplyInvalid, redact
from .load import FactSheet, Persona
from .local import LocalBackend
from .render import Message, reask_message, review_messages
from .retry import call_with_retries, describe
from .settings import Settings
from .validate import InvalidReply, quote_problems, validate_reply
from .write import write_atomic


class Stopped(Exception):
    """Another review failed first; this one sends nothing more."""


@dataclass(frozen=True)
class Job:
    persona: Persona
    slug: str
    sheet: FactSheet
    target: Target
    messages: list[Message]
    key: str


@dataclass(frozen=True)
class Review:
    lens: str
    slug: str
    verdict: str
    quote: str
    model: str

    @property
    def section(self) -> str:
        return f"{self.lens}:{self.slug}"


@dataclass
class Stats:
    requests: int = 0
    cache_hits: int = 0
    reasks: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)


def make_job(root: Path, target: Target, persona: Persona, slug: str, sheet: FactSheet, settings: Settings) -> Job:
    messages = review_messages(root, persona, sheet)
    return Job(persona, slug, sheet, target, messages, review_key(target, messages, settings))


def plan(root: Path, backend: ChatBackend | LocalBackend, personas: list[Persona],
         tools: dict[str, FactSheet]) -> list[Job]:
    """Render every prompt up front, so a template error stops the draft before any request."""
    return [make_job(root, backend.target(p), p, slug, sheet, backend.settings)
            for p in personas for slug, sheet in tools.items()]


class Reviewer:
    def __init__(self, root: Path, backend: ChatBackend | LocalBackend, cache: ReviewCache,
                 log: TextIO | None = None) -> None:
        self.root = root
        self.backend = backend
        self.settings = backend.settings
        self.cache = cache
        self.log = log or sys.stderr
        self.stats = Stats()
        self._stop = threading.Event()  # set by the first failure: no new request after it
        self._first_failure: BaseException | None = None
        self._failure_lock = threading.Lock()

    def _say(self, line: str) -> None:
        print(redact(line), file=self.log, flush=True)

    def review(self, job: Job) -> Review:
        try:
            return self._review(job)
        except BaseException as exc:
            with self._failure_lock:
                if self._first_failure is None and not isinstance(exc, Stopped):
                    self._first_failure = exc
            self._stop.set()
            raise

    def _review(self, job: Job) -> Review:
        hit = self.cache.get(job.key)
        # A cached review is checked again: the persona's rules may have changed since it was stored.
        if hit is not None and {"verdict", "quote", "model"} <= hit.keys() and \
                not quote_problems(job.persona, str(hit["quote"])):
            self.stats.add(cache_hits=1)
            self._say(f"  {job.persona.lens} on {job.slug}: {hit['verdict']} (cache)")
            return Review(job.persona.lens, job.slug, hit["verdict"], hit["quote"], hit["model"])
        where = f"{job.persona.lens} review of {job.slug}"
        messages = list(job.messages)
        problems: list[str] = []
        text: str | None = None
        attempts = 1 + self.settings.reask_attempts
        for attempt in range(1, attempts + 1):
            if self._stop.is_set():
                raise Stopped()
            completion = call_with_retries(lambda m=messages: self.backend.complete(job.target, m),  # type: ignore[misc]
                                           self.settings, where, on_retry=self._on_retry(where), stop=self._stop)
            self.stats.add(requests=1, prompt_tokens=completion.prompt_tokens,
                           completion_tokens=completion.completion_tokens)
            text = completion.text
            try:
                reply = validate_reply(job.persona, text)
            except InvalidReply as exc:
                problems = list(exc.problems)
                if completion.finish_reason == "length":
                    problems.insert(0, "the reply was cut off by the max_tokens limit; write a shorter quote")
                if attempt < attempts:
                    self.stats.add(reasks=1)
                    self._say(f"  re-asking {where}: {'; '.join(problems)}")
                    messages = [*messages, {"role": "assistant", "content": text or ""},
                                reask_message(self.root, job.persona, problems)]
                continue
            self.cache.set(job.key, {"verdict": reply.verdict, "quote": reply.quote, "model": job.target.model})
            self._say(f"  {job.persona.lens} on {job.slug}: {reply.verdict} ({job.target.model})")
            return Review(job.persona.lens, job.slug, reply.verdict, reply.quote, job.target.model)
        kept = self._keep_failed(job, text, problems)
        raise ReplyInvalid(job.persona.lens, job.slug, problems, attempts, kept)

    def _on_retry(self, where: str) -> Callable[[BaseException], None]:
        def note(exc: BaseException) -> None:
            self.stats.add(retries=1)
            self._say(f"  retrying {where}: {describe(exc)}")
        return note

    def _keep_failed(self, job: Job, text: str | None, problems: list[str]) -> Path:
        """Keep the last invalid reply for debugging, beside the cache and never under outputs/."""
        path = self.settings.cache_dir / "failed" / f"{job.slug}--{job.persona.lens}.json"
        write_atomic(path, json.dumps({"lens": job.persona.lens, "tool": job.slug, "model": job.target.model,
                                       "problems": problems, "last_reply": text}, indent=2, ensure_ascii=False))
        return path

    def review_all(self, jobs: list[Job]) -> dict[tuple[str, str], Review]:
        """Every review, up to ``concurrency`` in flight; the first failure stops new requests and is raised."""
        unique = {job.key: job for job in jobs}  # one request per distinct prompt
        results: dict[str, Review] = {}
        workers = min(self.settings.concurrency, self.backend.concurrency)
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="review")
        try:
            futures: dict[Future[Review], Job] = {pool.submit(self.review, job): job for job in unique.values()}
            done, pending = wait(futures, return_when=FIRST_EXCEPTION)
            if self._stop.is_set():
                wait(pending)  # requests in flight end quickly: retries and re-asks stop on the event
                failure = self._first_failure or next(f.exception() for f in done if f.exception())
                raise failure  # type: ignore[misc]
            for future in done:
                results[futures[future].key] = future.result()
        except BaseException:  # KeyboardInterrupt included: send nothing more, keep what was cached
            self._stop.set()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        return {(job.persona.lens, job.slug): results[job.key] for job in jobs}
