"""How many requests each target takes at once: learned from its replies, between the start and a ceiling.

The scheme is TCP's congestion control (slow start, then AIMD), per target, because a provider tells us its limit
the same way a network does: by refusing (429, 503) once we go past it, and by nothing at all while we stay under.

- It starts at ``concurrency``. Each clean reply adds one request to the limit while no overload has been seen
  (slow start: the limit doubles each round of replies, so 8 reaches 32 in two rounds, not in 24), and 1/limit
  after one (additive increase: one more request per round of replies, probing slowly near a known limit).
- A 429 or 503 halves it (multiplicative decrease), at most once per round: an overload counts only if its
  request was sent after the last decrease, so a burst of 429s from one overload halves once, not down to 1.
  The halved limit is also where slow start ends. It never halves below what this round proved: the most
  requests in flight when one was sent, since the last decrease, that came back clean (a probe one past a limit
  of 4 falls back to 4, not to 2); it always goes down by at least one, and what is proven starts again at 0.
  A 429 comes back at once while the requests sent alongside it take a whole reply to prove themselves, so
  those that come back clean after the decrease raise the limit again to 0.9 times as many as were in flight with
  them, below the lowest level refused in that overload: a probe one past a quota of 32 ends at 28.8, not at 17,
  and climbs back from there. A 503 (a server shedding load, not a quota) keeps the halving.
- Never above ``max_concurrency``, never below 1; growth only while requests are waiting for a slot, so a short
  queue does not inflate a limit it never tested. Once an overload has been seen, the additive probe is made only
  while a whole round of requests for the target is still to be sent: a refused probe waits out ``Retry-After``,
  and near the end of a run, when everything left fits in the rounds the limit already allows, it could only
  make the run later.

AIMD is the scheme that converges to a fair share when several clients (our parallel CI jobs, other users of the
provider) press on one limit, which faster schemes (multiplicative increase throughout) do not; slow start only
makes the first climb fast. ``Retry-After`` is honoured by the retry itself (retry.py): the slot is freed while
it waits. A ``concurrency`` of 1 means one request at a time, as configured: it does not adapt.

A target is a server for an endpoint (its models share its capacity), and (model, provider) for Inference
Providers, where each provider limits each model on its own. A request names its provider (a pinned one, or where
serving.py moved a skipped provider's share); under ``auto`` or a policy the router picks it and names it on the
answer (x-inference-provider): while the router has named only one provider for such a target, its requests share
that provider's limit, the same one a lens pinned to the provider uses; once it names several, a 429 counts against
the provider that answered it (``Limits.answered``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from .review import Target
from .settings import POLICIES

OVERLOAD_STATUSES = frozenset({429, 503})
# After a 429, the limit comes back to this share of what the requests served beside it proved (Netflix's
# concurrency-limits uses 0.9 in its AIMD limit): still a multiplicative decrease, so clients sharing a quota
# converge on fair shares, but from the proven level, not from half of the probe.
BACKOFF = 0.9


def limit_key(target: Target) -> str:
    """The name a limit is kept and reported under."""
    if target.backend == "endpoint":
        return f"endpoint {target.server}"
    return f"{target.backend} {target.label}" if target.backend != "local" else "local"


@dataclass
class LimitFigures:
    """What a run learned about one target, for the run report."""

    start: int
    ceiling: int
    reached: int = 0  # the highest limit the target was given
    final: int = 0  # the limit at the end of the run
    peak: int = 0  # the most requests in flight to it at once
    overloads: int = 0  # 429 and 503 replies


class AdaptiveLimit:
    """One target's limit: ``slot()`` holds a request's place while it is on the wire."""

    def __init__(self, start: int, ceiling: int, stop: threading.Event | None = None,
                 run: Limits | None = None) -> None:
        self.run = run
        self.ceiling = max(1, ceiling)
        self.fixed = start <= 1 or self.ceiling <= start
        self.limit = float(min(max(1, start), self.ceiling))
        self.threshold = float(self.ceiling)  # slow start until here, or until the first overload
        self.figures = LimitFigures(int(self.limit), self.ceiling, int(self.limit), int(self.limit))
        self.in_flight = 0
        self.waiting = 0
        self.queued = 0  # requests for this target that no worker has taken up yet
        self.round = 0  # bumped at each decrease: overloads of requests sent before it are the same overload
        self.proven = 0  # the most requests in flight when one was sent that came back clean, in this round
        self.refused_at = 0  # the level of the request whose refusal made the last decrease
        self._stop = stop or threading.Event()
        self._ready = threading.Condition()

    def wake(self) -> None:
        """Let every waiter look at the stop event again."""
        with self._ready:
            self._ready.notify_all()

    def acquire(self) -> int:
        """Wait for a slot; the round the request is sent in. Returns at once when the run is stopping: the
        caller's own check of the stop event decides what to do then."""
        return self._take()[0]

    def _take(self) -> tuple[int, int]:
        """A slot: the round, and how many requests are in flight with this one."""
        with self._ready:
            self.waiting += 1
            try:
                while self.in_flight >= int(self.limit) and not self._stop.is_set():
                    self._ready.wait(0.5)
            finally:
                self.waiting -= 1
            self.in_flight += 1
            self.figures.peak = max(self.figures.peak, self.in_flight)
            if self.run is not None:
                self.run.moved(+1)
            return self.round, self.in_flight

    def release(self, sent_in: int, status: int | None, clean: bool, level: int = 0) -> None:
        """The request's reply came (``clean``: a reply, whatever its content), or its failure (``status``).
        ``level``: how many requests were in flight, this one included, when it was sent."""
        if self.run is not None:
            self.run.moved(-1)
        with self._ready:
            self.in_flight -= 1
            if status in OVERLOAD_STATUSES:
                self._overload(sent_in, status, level)
            elif clean and not self.fixed:
                if sent_in == self.round:
                    self.proven = max(self.proven, level)
                elif sent_in == self.round - 1 and level < self.refused_at and BACKOFF * level > self.limit:
                    # Sent before the decrease, beside the refused ones, and served: the quota took this many at
                    # once, so the halving went too deep (the replies come a round after a quick 429).
                    self.limit = self.threshold = BACKOFF * level
                if self.waiting > 0 and (self.limit < self.threshold or self.waiting + self.queued >= self.limit):
                    step = 1.0 if self.limit < self.threshold else 1.0 / self.limit
                    self.limit = min(float(self.ceiling), self.limit + step)
            self.figures.reached = max(self.figures.reached, int(self.limit))
            self.figures.final = int(self.limit)
            self._ready.notify_all()

    def _overload(self, sent_in: int, status: int, level: int) -> None:
        """A 429 or 503 (the condition is held)."""
        self.figures.overloads += 1
        if not self.fixed and sent_in == self.round:
            # Halve, but not below what this round proved the target takes, and always down by one.
            self.limit = max(1.0, min(self.limit - 1, max(self.limit / 2, float(self.proven))))
            self.threshold = self.limit
            self.round += 1
            self.proven = 0
            self.refused_at = level if status == 429 else 0  # a server shedding load (503): the cut stands
        elif not self.fixed and sent_in == self.round - 1 and self.refused_at:
            # Refused in the same overload at another level: the quota is below the lowest one refused.
            self.refused_at = min(self.refused_at, level) if status == 429 and level else 0

    def overloaded(self, status: int) -> None:
        """A 429 or 503 from this target to a request that waited on another limit (a policy's, whose requests the
        router spreads over its providers): it lowers this target's limit, as one sent now would."""
        with self._ready:
            self._overload(self.round, status, 0)
            self.figures.reached = max(self.figures.reached, int(self.limit))
            self.figures.final = int(self.limit)

    @contextmanager
    def slot(self) -> Iterator[_Slot]:
        handle = _Slot(*self._take())
        try:
            yield handle
        finally:
            self.release(handle.round, handle.status, handle.clean, handle.level)


class _Slot:
    def __init__(self, round_: int, level: int) -> None:
        self.round = round_
        self.level = level
        self.status: int | None = None
        self.clean = False


class Limits:
    """Every target's limit in one run, made on first use, shared by all the workers."""

    def __init__(self, start: int, ceiling: int, stop: threading.Event | None = None) -> None:
        self.start, self.ceiling = start, ceiling
        self._stop = stop
        self._lock = threading.Lock()
        self.by_key: dict[str, AdaptiveLimit] = {}
        self._queued: dict[str, int] = {}  # jobs queued for targets not sent to yet
        self._named: dict[str, set[str]] = {}  # a policy target's key -> the providers the router named for it
        self._aliases: dict[str, str] = {}  # a policy target's key -> the key of the one provider serving it
        self._renamed: dict[str, str] = {}  # a provider's key -> the policy target whose limit took that name
        self.in_flight = 0
        self.peak = 0  # the most requests in flight at once, all targets together

    def moved(self, change: int) -> None:
        with self._lock:
            self.in_flight += change
            self.peak = max(self.peak, self.in_flight)

    def _key(self, target: Target) -> str:
        key = limit_key(target)
        return self._aliases.get(key, key)

    def answered(self, target: Target, provider: str, status: int | None) -> int | None:
        """The router named ``provider`` on the answer (``status``, None for a reply) to a request for ``target``,
        which left the choice to it; the status for the limit the request waited on. While ``provider`` is the only
        one named for the target, the target's requests wait on its limit. Once the router spreads them over more
        than one, a 429 or 503 counts against the limit of the provider that answered it (where requests pinned or
        moved to it wait), not the target's: one provider's overload does not slow the others' share."""
        if target.backend != "hf" or (target.provider or "auto") not in POLICIES or not provider:
            return status
        self._named_now(target, provider)
        serving = replace(target, provider=provider)
        with self._lock:
            shared = self._key(target) == limit_key(serving)
        if status not in OVERLOAD_STATUSES or shared:
            return status
        self.of(serving).overloaded(status)
        return None

    def _named_now(self, target: Target, provider: str) -> None:
        key = limit_key(target)
        with self._lock:
            seen = self._named.setdefault(key, set())
            if provider in seen:
                return
            seen.add(provider)
            if len(seen) > 1:  # the router spreads it: no one provider's limit is the target's
                serving = self._aliases.pop(key, "")
                if self._renamed.get(serving) == key:  # the target's own limit goes back to its name
                    del self._renamed[serving]
                    self.by_key[key] = self.by_key.pop(serving)
                return
            serving = limit_key(replace(target, provider=provider))
            if serving not in self.by_key and key in self.by_key:
                self.by_key[serving] = self.by_key.pop(key)
                self._renamed[serving] = key
            elif serving in self.by_key and key in self.by_key:  # its jobs still to send now wait on the provider's
                own, shared = self.by_key[key], self.by_key[serving]
                shared.queued, own.queued = shared.queued + own.queued, 0
            self._aliases[key] = serving

    def of(self, target: Target) -> AdaptiveLimit:
        with self._lock:
            key = self._key(target)
            if key not in self.by_key:
                self.by_key[key] = AdaptiveLimit(self.start, self.ceiling, self._stop, self)
                self.by_key[key].queued = self._queued.pop(key, 0)
            return self.by_key[key]

    def queue(self, target: Target, change: int) -> None:
        """``change`` more (or fewer) jobs for ``target`` wait for a worker to take them up. A target gets its limit
        (and a line in the run report) only once a request is sent to it: a job the cache answers sends none."""
        with self._lock:
            key = self._key(target)
            limit = self.by_key.get(key)
            if limit is None:
                self._queued[key] = self._queued.get(key, 0) + change
                return
        with limit._ready:  # never below 0: a target's jobs may have moved to another limit (``answered``)
            limit.queued = max(0, limit.queued + change)

    def wake(self) -> None:
        with self._lock:
            limits = list(self.by_key.values())
        for limit in limits:
            limit.wake()

    def figures(self) -> dict[str, LimitFigures]:
        with self._lock:
            return {key: limit.figures for key, limit in sorted(self.by_key.items())}
