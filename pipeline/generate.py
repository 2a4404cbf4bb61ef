"""Get one valid review per (lens, tool): from the cache, or from the model with re-asks on invalid replies."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from .cache import ReviewCache
from .costs import Price, Stats, counted_usage, price_for
from .errors import BudgetReached, GaveUpOnReply, NotServed, RoutingRefused, TransportError
from .limiter import Limits
from .progress import Progress
from .project import kept_name
from .render import reask_message
from .retry import RETRIED_STATUSES, call_with_retries, describe, status_of
from .review import Backend, Completion, Job, Message, Review, Target, matches_schema
from .runlog import RunLog
from .secret import scrub
from .serving import Serving, named_provider
from .settings import Settings
from .validate import NeedsReask, quote_problems, validate_reply
from .write import write_atomic

T = TypeVar("T")
R = TypeVar("R")

# A model can answer with megabytes. What of an invalid reply goes back to it in a re-ask is paid for again as
# input tokens, and the run log keeps every reply: both keep the start of such a reply and say it was cut.
ECHOED_REPLY = 4_000  # characters
LOGGED_TEXT = 20_000
# After Ctrl-C or SIGTERM, how long replies already on their way may take to arrive and be cached.
INTERRUPT_GRACE = 2.0  # seconds


def clipped(text: str, limit: int) -> str:
    """``text``, or its first ``limit`` characters and a line saying how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n[... cut: the reply was {len(text):,} characters; only the first {limit:,} are shown]"


def _detail(exc: TransportError, where: str) -> str:
    return exc.message.removeprefix(f"{where}: ")


def _is_down(exc: TransportError) -> bool:
    """The target itself is failing (still failing after retries, or it does not serve the model), so other
    reviews should not wait on it. A 400 or 422 may be about this one prompt: only this review moves on."""
    return exc.status is None or exc.status == 404 or exc.status in RETRIED_STATUSES or exc.status >= 500


def scrubbed(completion: Completion) -> Completion:
    """A reply with every secret taken out, as it arrives: a server or a model may echo a key it was sent, and
    from here the text goes to validation, re-asks, the run log, the cache, failed/ and the page."""
    return completion if completion.text is None else replace(completion, text=scrub(completion.text))


class Stopped(Exception):
    """Another review failed first; this one sends nothing more."""


def cached_review(cache: ReviewCache, job: Job, retry_fallbacks: bool = False, use_cache: bool = True) -> Review | None:
    """The cached review, if there is one that still passes the persona's rules (they may have changed).

    With ``retry_fallbacks``, a review a fallback wrote counts as missing, so the lens's own model is asked again;
    without ``use_cache`` (``--no-cache``), every review does, and its new reply overwrites the entry.
    """
    hit = cache.get(job.key) if use_cache else None
    # A reply an editor accepted as it is (``accept``) is not held to the rules again.
    if hit is not None and {"verdict", "quote", "model"} <= hit.keys() and \
            (hit.get("accepted") or not quote_problems(job.persona, str(hit["quote"]), job.sheet)):
        review = Review(job.persona.lens, job.slug, hit["verdict"], hit["quote"], hit["model"],
                        str(hit.get("provider", job.target.provider)), bool(hit.get("fallback", False)),
                        accepted=bool(hit.get("accepted")), served_by=str(hit.get("served_by") or ""))
        return None if review.fallback and retry_fallbacks else review
    return None


class DownTargets:
    """Which targets are down in this run, and the events that cut retry waits short.

    A target that failed after every retry is down: later reviews go straight to their fallbacks, and reviews
    still retrying it stop waiting (its event is set) and move on. ``halt`` stops the whole run: every wait ends.
    """

    def __init__(self) -> None:
        self.halted = threading.Event()  # set by the first failure, or the budget: no new request after it
        self._lock = threading.Lock()
        self._down: dict[Target, TransportError] = {}
        self._events: dict[Target, threading.Event] = {}

    def halt(self) -> None:
        with self._lock:
            self.halted.set()
            for event in self._events.values():
                event.set()

    def event_for(self, target: Target) -> threading.Event:
        """Set when the run halts, or when ``target`` is found down."""
        with self._lock:
            event = self._events.setdefault(target, threading.Event())
            if self.halted.is_set() or target in self._down:
                event.set()
            return event

    def mark(self, target: Target, exc: TransportError) -> None:
        with self._lock:
            self._down.setdefault(target, exc)
            self._events.setdefault(target, threading.Event()).set()

    def why(self, target: Target) -> TransportError | None:
        """The failure that took ``target`` down, or None while it is up."""
        return self._down.get(target)


class Reviewer:
    def __init__(self, root: Path, backend: Backend, cache: ReviewCache, settings: Settings, progress: Progress,
                 runlog: RunLog | None = None, retry_fallbacks: bool = False, stats: Stats | None = None,
                 use_cache: bool = True, keep_going: bool = False) -> None:
        self.root = root
        self.backend = backend
        self.settings = settings
        self.cache = cache
        self.progress = progress
        self.runlog = runlog
        self.retry_fallbacks = retry_fallbacks
        self.use_cache = use_cache
        # With ``keep_going`` a review no target could serve is left missing, as an invalid one is, and the others go
        # on; without it, the first such failure stops the run. Credentials refused stop it either way.
        self.keep_going = keep_going
        self.stats = stats or Stats()
        self.down = DownTargets()
        # Concurrency per target, learned from its replies (limiter.py); the workers share it.
        start = min(settings.concurrency, backend.concurrency)
        ceiling = start if start <= 1 or backend.concurrency < settings.concurrency else \
            max(start, settings.max_concurrency)
        self.limits = Limits(start, ceiling, self.down.halted)
        self.stats.limits = self.limits
        # Who served each request through Inference Providers: providers skipped, schemas ignored (serving.py).
        self.serving = Serving()
        self.stats.serving = self.serving
        self.missing: list[GaveUpOnReply | NotServed] = []  # reviews left as placeholders: invalid, or not served
        self.fresh: set[str] = set()  # cache keys whose reply was requested in this run: only these may be re-asked
        self._first_failure: BaseException | None = None
        self._lock = threading.Lock()

    @property
    def failure(self) -> BaseException | None:
        """What stopped the run (the first failure, or the budget), if anything did."""
        return self._first_failure

    def _fail(self, exc: BaseException) -> None:
        with self._lock:
            if self._first_failure is None and not isinstance(exc, Stopped):
                self._first_failure = exc
        self.down.halt()
        self.limits.wake()  # requests waiting for a slot see the halt at once

    def review(self, job: Job) -> Review:
        try:
            return self._review(job)
        except GaveUpOnReply as exc:  # the page is still written, with a placeholder for this quote
            self.missing.append(exc)
            self.progress.finished(f"  {job.persona.lens} on {job.slug}: no valid reply, kept in {exc.kept}",
                                   cached=False)
            return Review(job.persona.lens, job.slug, "", "", job.target.model, job.target.provider,
                          missing="; ".join(exc.problems),
                          kept=kept_name(exc.kept, self.root, self.settings.cache_dir) if exc.kept else "")
        except TransportError as exc:
            # A target that is not there (404: a model or server name that is wrong) fails every review alike, as
            # credentials do: that ends the run. An outage or a refusal of one prompt leaves this review missing.
            if not self.keep_going or exc.status in (401, 403, 404) or self.down.halted.is_set():
                self._fail(exc)
                raise
            failed = NotServed(job.persona.lens, job.slug, exc)
            self.missing.append(failed)
            self.progress.finished(f"  {job.persona.lens} on {job.slug}: not served ({exc.message})", cached=False)
            return Review(job.persona.lens, job.slug, "", "", job.target.model, job.target.provider,
                          missing=failed.problems[0])
        except BaseException as exc:
            self._fail(exc)
            raise

    def _review(self, job: Job) -> Review:
        hit = self._from_cache(job)
        if hit is not None:
            return hit
        # Another process may be asking for the same review: wait for it, then read its reply from the cache.
        with self.cache.lock(job.key, stop=self.down.halted) as held:
            if not held:
                raise Stopped()
            return self._from_cache(job) or self._request(job)

    def _from_cache(self, job: Job) -> Review | None:
        hit = cached_review(self.cache, job, self.retry_fallbacks, self.use_cache)
        if hit is not None:
            self.stats.add(job.target, cache_hits=1)
            self.progress.finished(f"  {job.persona.lens} on {job.slug}: {hit.verdict} (cache)", cached=True)
        return hit

    def _request(self, job: Job) -> Review:
        where = f"{job.persona.lens} review of {job.slug}"
        failed: list[str] = []  # what became of each target in the chain, for the error when none served
        chain = [job.target]
        for target in job.fallbacks:  # under a budget, a reply that cannot be priced must not be bought
            if self.settings.max_cost is not None and not self.settings.allow_unknown_prices and \
                    price_for(self.settings, target) is None:
                failed.append(f"fallback {target.label} not tried: a budget is set and it has no price")
            else:
                chain.append(target)
        last: TransportError | None = None
        for index, target in enumerate(chain):
            if self.down.halted.is_set():
                raise Stopped()
            final = index == len(chain) - 1  # the review's last option is always tried, down or not
            name = f"{'fallback ' if index else ''}{target.label}"
            down = self.down.why(target)
            if down is not None and not final:
                failed.append(f"{name} skipped: down since {down.message}")
                last = down
                continue
            try:
                return self._ask(job, target, where, fallback=index > 0, may_move_on=not final)
            except TransportError as exc:
                if exc.status in (401, 403) or (final and not failed):
                    raise  # the credentials are wrong, or nothing else was tried: the error as it came
                last = exc
                failed.append(f"{name}: {_detail(exc, where)}")
                if final or self.down.halted.is_set():
                    break
                if _is_down(exc):
                    self.down.mark(target, exc)
                upcoming = next(t for t in chain[index + 1:] if self.down.why(t) is None or t is chain[-1])
                self.progress.say(f"  {where}: {target.label} failed ({_detail(exc, where)}); "
                                  f"asking {upcoming.label} instead")
        raise TransportError(f"{where}: no model could serve it: " + "; ".join(failed),
                             last.status if last else None, last.attempts if last else 0,
                             hint="Every reply received is cached: run the draft again later, or add another "
                             "fallback to the persona file.")

    def _ask(self, job: Job, target: Target, where: str, fallback: bool, may_move_on: bool) -> Review:
        """One review from one target: send, validate, re-ask with the problems until valid or out of attempts."""
        messages = list(job.messages)
        problems: list[str] = []
        text: str | None = None
        attempts = 1 + self.settings.reask_attempts
        for attempt in range(1, attempts + 1):
            if self.down.halted.is_set():
                raise Stopped()
            completion, route = self._send(job, target, messages, where, attempt, may_move_on)
            # A server that reports no usage, or nonsense, is counted from the text: a budget never fails open.
            prompt_tokens, completion_tokens = counted_usage(messages, completion)
            price = self._price(target, route, completion.served_by)
            cost = price.cost(prompt_tokens, completion_tokens) if price else None
            self.stats.add(target, cost, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
            # A reply cut off by max_tokens cannot match the schema, enforced or not.
            self.serving.replied(target, route, completion.served_by, cost, completion.schema_sent,
                                 matches_schema(completion.text) or completion.finish_reason == "length")
            text = completion.text
            try:
                reply = validate_reply(job.persona, text, job.sheet)
            except NeedsReask as exc:
                problems = list(exc.problems)
                if completion.finish_reason == "length":
                    problems.insert(0, "the reply was cut off by the max_tokens limit; write a shorter quote")
                self._log(job, target, messages, attempt, completion=completion, problems=problems)
                if attempt < attempts:
                    self.stats.add(target, reasks=1)
                    self.progress.say(f"  re-asking {where}: {'; '.join(problems)}")
                    messages = [*messages, {"role": "assistant", "content": clipped(text or "", ECHOED_REPLY)},
                                reask_message(self.root, job.persona, problems)]
                self._check_budget()
                continue
            self._log(job, target, messages, attempt, completion=completion)
            # Kept under the lens's own key: a rerun reuses what was paid for, and knows who wrote it.
            review = Review(job.persona.lens, job.slug, reply.verdict, reply.quote, target.model, target.provider,
                            fallback, served_by=completion.served_by)
            self.cache.keep(job.key, review)
            self.fresh.add(job.key)
            served = f"{target.label}, fallback" if fallback else target.model
            self.progress.finished(f"  {job.persona.lens} on {job.slug}: {reply.verdict} ({served})", cached=False)
            self._check_budget()
            return review
        kept = self._keep_failed(job, target, text, problems)
        raise GaveUpOnReply(job.persona.lens, job.slug, problems, attempts, kept)

    def reask_distinct(self, job: Job, review: Review, message: Message) -> Review | None:
        """Once more, for a valid review that makes another lens's point (distinct.py): its conversation goes on
        with ``message``. The new review, cached in place of the old, when its reply passes the lens's rules; None
        (the first reply stands) when it does not, or the request fails."""
        where = f"{job.persona.lens} review of {job.slug}"
        if self.down.halted.is_set():
            return None
        target = next((t for t in (job.target, *job.fallbacks)
                       if (t.model, t.provider) == (review.model, review.provider)), job.target)
        reply_text = json.dumps({"verdict": review.verdict, "quote": review.quote}, ensure_ascii=False)
        messages = [*job.messages, {"role": "assistant", "content": reply_text}, message]
        self.stats.add(target, reasks=1)
        try:
            completion, route = self._send(job, target, messages, where, 2, may_move_on=False)
        except (TransportError, Stopped) as exc:
            self.progress.say(f"  {where}: the re-ask failed ({getattr(exc, 'message', 'stopped')}); the first reply "
                              "stands, flagged for the editor")
            return None
        prompt_tokens, completion_tokens = counted_usage(messages, completion)
        price = self._price(target, route, completion.served_by)
        self.stats.add(target, price.cost(prompt_tokens, completion_tokens) if price else None,
                       prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
        try:
            reply = validate_reply(job.persona, completion.text, job.sheet)
        except NeedsReask as exc:
            self._log(job, target, messages, 2, completion=completion, problems=exc.problems)
            self.progress.say(f"  {where}: the new reply breaks the lens's rules ({'; '.join(exc.problems)}); the "
                              "first reply stands, flagged for the editor")
            self._check_budget()
            return None
        self._log(job, target, messages, 2, completion=completion)
        again = Review(job.persona.lens, job.slug, reply.verdict, reply.quote, target.model, target.provider,
                       review.fallback, served_by=completion.served_by)
        self.cache.keep(job.key, again)
        self._check_budget()
        return again

    def each(self, items: list[T], work: Callable[[T], R]) -> list[R]:
        """``work`` on every item, as many at once as the targets' limits allow (each request holds a slot); the
        results in the items' order. Daemon threads, as in ``review_all``: Ctrl-C does not wait for them."""
        results: dict[int, R] = {}
        errors: list[BaseException] = []
        todo: queue.SimpleQueue[int] = queue.SimpleQueue()
        for index in range(len(items)):
            todo.put(index)

        def run() -> None:
            while True:
                try:
                    index = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    results[index] = work(items[index])
                except BaseException as exc:  # raised in the caller's thread below
                    errors.append(exc)
                    self._fail(exc)

        threads = [threading.Thread(target=run, name=f"reask-{n}", daemon=True)
                   for n in range(min(self.limits.ceiling, len(items)))]
        for thread in threads:
            thread.start()
        try:
            while any(thread.is_alive() for thread in threads):
                for thread in threads:
                    thread.join(0.1)
        except KeyboardInterrupt:
            self.down.halt()
            self.limits.wake()
            raise
        if errors:
            raise errors[0]
        return [results[index] for index in range(len(items))]

    def _price(self, target: Target, route: Target, served_by: str) -> Price | None:
        """What a reply costs: at the price of the provider that served it, where it is named and priced (the
        table's "<model>:<provider>", else the router's), else at the target's own (for auto, the upper bound)."""
        provider = served_by or (route.provider if route.provider != target.provider else "")
        price = price_for(self.settings, replace(target, provider=provider)) if provider and \
            target.backend == "hf" else None
        return price or price_for(self.settings, target)

    def _send(self, job: Job, target: Target, messages: list[Message], where: str, attempt: int,
              may_move_on: bool) -> tuple[Completion, Target]:
        """One request with its transport retries, and where it went (``target``, or the provider a skipped one's
        share goes to: serving.py). Every request sent is counted, whether it is answered or not.

        A review that has a fallback to move on to stops retrying when another review finds the target down.
        """
        retrying = False
        sent = 0
        named = ""  # the provider the router named on the last answer

        def send() -> tuple[Completion, Target]:
            nonlocal sent, named
            while True:
                route = self.serving.route(target)
                # A slot of the limit is held while the request is on the wire, not while a retry waits.
                with self.limits.of(route).slot() as slot:
                    if self.down.halted.is_set():
                        raise Stopped()
                    now = self.serving.route(target)
                    if now.provider != route.provider:  # a provider was skipped while this one waited: move
                        continue
                    route = now  # whether to send the schema, as of now
                    sent += 1
                    self.stats.add(target, requests=1, retries=int(sent > 1))  # a retry is counted when it is sent
                    sent_at = time.monotonic()
                    try:
                        completion = scrubbed(self.backend.complete(route, messages))
                    except RoutingRefused as exc:
                        if route.provider == target.provider:
                            raise  # the router's answer to what the lens asked for: the run stops
                        self.serving.gone(target, route.provider, exc.message)  # the provider we moved it to
                        continue
                    except BaseException as exc:
                        status = status_of(exc)
                        response = getattr(exc, "response", None)
                        named = named_provider(response.headers) if response is not None else ""
                        slot.status = self.limits.answered(route, named, status)
                        if status == 429:
                            self.serving.refused(target, route, named, sent_at)
                        raise
                    slot.clean = True
                    named = completion.served_by
                    self.limits.answered(route, named, None)
                return completion, route

        def note(exc: BaseException) -> None:
            nonlocal retrying
            self.progress.say(f"  retrying {where} ({target.label}): {describe(exc)}")
            if not retrying:
                retrying = True
                self.progress.retry(+1)

        try:
            return call_with_retries(send, self.settings, where, on_retry=note,
                                     stop=self.down.event_for(target) if may_move_on else self.down.halted)
        except Exception as exc:
            if isinstance(exc, Stopped):
                raise
            if not self.down.halted.is_set():
                self.stats.add(target, failed=1)
            self._log(job, target, messages, attempt, error=str(getattr(exc, "message", exc)), served_by=named)
            raise
        finally:
            if retrying:
                self.progress.retry(-1)

    def _check_budget(self) -> None:
        """Once the running estimate reaches the budget, nothing new is sent; what arrived is cached already."""
        # Unknown prices under a budget run only when allowed (allow_unknown_prices): the priced part is held to it.
        budget, spent = self.settings.max_cost, self.stats.priced_cost
        if budget is not None and spent >= budget and not self.down.halted.is_set():
            self._fail(BudgetReached(spent, budget, self.stats.requests))

    def _log(self, job: Job, target: Target, messages: list[Message], attempt: int,
             completion: Completion | None = None, problems: list[str] | None = None, error: str | None = None,
             served_by: str = "") -> None:
        if self.runlog is None:
            return
        self.runlog.write(type="request", lens=job.persona.lens, tool=job.slug, backend=target.backend,
                          model=target.model, provider=target.provider,
                          served_by=completion.served_by if completion else served_by, attempt=attempt,
                          messages=messages,
                          reply=None if completion is None or completion.text is None else
                          clipped(completion.text, LOGGED_TEXT),
                          finish_reason=completion.finish_reason if completion else None,
                          prompt_tokens=completion.prompt_tokens if completion else 0,
                          completion_tokens=completion.completion_tokens if completion else 0,
                          problems=problems or [], error=error, ok=completion is not None and not problems)

    def _keep_failed(self, job: Job, target: Target, text: str | None, problems: list[str]) -> Path:
        """Keep the last invalid reply for debugging, beside the cache and never under outputs/."""
        path = self.settings.cache_dir / "failed" / f"{job.slug}--{job.persona.lens}.json"
        write_atomic(path, json.dumps({"key": job.key, "lens": job.persona.lens, "tool": job.slug,
                                       "model": target.model, "provider": target.provider,
                                       "problems": problems, "last_reply": text}, indent=2, ensure_ascii=False))
        return path

    def review_all(self, jobs: list[Job], what: str = "Reviews",
                   while_waiting: Callable[[], object] | None = None) -> dict[str, Review]:
        """Every review, by section id, in flight up to each target's limit (from ``concurrency``, learned
        from the replies up to ``max_concurrency``: limiter.py); the first failure stops new requests and
        is raised once the requests in flight have ended (retries and re-asks stop on the event).

        ``while_waiting`` runs in this thread once the requests are on their way: work for after the replies.

        Workers are daemon threads: on Ctrl-C or SIGTERM, replies already on their way get INTERRUPT_GRACE seconds
        to arrive and be cached, and then the process exits without waiting for the rest.
        """
        unique = {job.key: job for job in jobs}  # one request per distinct prompt
        todo: queue.SimpleQueue[Job] = queue.SimpleQueue()
        for job in unique.values():
            todo.put(job)
            self.limits.queue(job.target, +1)
        finished: queue.SimpleQueue[tuple[Job, Review | None, BaseException | None]] = queue.SimpleQueue()

        def work() -> None:
            while not self.down.halted.is_set():
                try:
                    job = todo.get_nowait()
                except queue.Empty:
                    return
                self.limits.queue(job.target, -1)
                try:
                    finished.put((job, self.review(job), None))
                except BaseException as exc:  # raised in the caller's thread below
                    finished.put((job, None, exc))

        # As many workers as the highest limit could use: each waits for a slot of its target's limit.
        workers = min(self.limits.ceiling, max(1, len(unique)))
        threads = [threading.Thread(target=work, name=f"review-{n}", daemon=True) for n in range(workers)]
        results: dict[str, Review] = {}
        failure: BaseException | None = None
        self.progress.start(len(unique), what)
        try:
            for thread in threads:
                thread.start()
            if while_waiting is not None:
                while_waiting()
            done = 0
            # Every review in, the run is over: no wait for the workers to notice that the queue is empty.
            while done < len(unique) and (any(thread.is_alive() for thread in threads) or not finished.empty()):
                try:
                    job, review, exc = finished.get(timeout=0.1)
                except queue.Empty:
                    continue
                done += 1
                if review is not None:
                    results[job.key] = review
                elif failure is None or isinstance(failure, Stopped):
                    failure = exc
            if failure is not None or len(results) < len(unique):  # halted: the workers took no more jobs
                raise self._first_failure or failure or Stopped()
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: send nothing more, keep what arrives in the grace period
            self.down.halt()
            self.limits.wake()
            deadline = time.monotonic() + INTERRUPT_GRACE
            for thread in threads:
                thread.join(max(0.0, deadline - time.monotonic()))
            raise
        except BaseException:
            self.down.halt()
            self.limits.wake()
            raise
        finally:
            self.progress.close()
        return {job.section: results[job.key] for job in jobs}
