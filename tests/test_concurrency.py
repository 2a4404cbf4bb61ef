"""Concurrency that finds the provider's limit: a refresh of many drafts against a fake provider that answers 429
past its own limit. Bounds are generous; timings belong to bench/catalogue.py, not here."""

from __future__ import annotations

import re
import threading
from pathlib import Path

from pipeline.limiter import AdaptiveLimit
from tests.fakeserver import FakeChatServer

TOOLS = 12  # 6 drafts, 48 reviews


def catalogue(project: Path, cli, tools: int = TOOLS) -> list[str]:
    """``tools`` fact sheets drafted in pairs (against the fake with no limit), then a change to the model settings
    that makes every review of every draft stale."""
    sample = (project / "tools" / "mistral-3-small.toml").read_text(encoding="utf-8")
    slugs = [f"tool-{n:02d}" for n in range(tools)]
    for n, slug in enumerate(slugs):
        text = sample.replace('name = "Mistral 3 Small (24B)"', f'name = "Catalogue Tool {n}"')
        (project / "tools" / f"{slug}.toml").write_text(text, encoding="utf-8")
    for a, b in zip(slugs[::2], slugs[1::2], strict=True):
        assert cli("draft", a, b).code == 0
    settings = project / "pyproject.toml"
    settings.write_text(settings.read_text().replace("temperature = 0.7", "temperature = 0.6"), encoding="utf-8")
    return slugs


def test_a_provider_limit_below_the_start_is_found_and_nothing_fails(fake: FakeChatServer, cli,
                                                                      project: Path) -> None:
    catalogue(project, cli)
    before = len(fake.history)
    fake.limit, fake.delay = 4, 0.05
    run = cli("refresh", "--concurrency", "8")
    assert run.code == 0, run.err
    assert "Refreshed 6 of 6 drafts" in run.out and "failed" in run.out
    assert fake.max_working <= 4
    sent = len(fake.history) - before
    assert sent == 4 * TOOLS + fake.overloaded, "every review once, plus a retry per 429"
    assert fake.overloaded <= 2 * TOOLS, f"{fake.overloaded} 429s for {4 * TOOLS} reviews: the limit was not learned"
    failed = re.search(r"^\s+endpoint\s.*$", run.out, re.MULTILINE)
    assert failed is not None and failed.group(0).split()[-4] == "0", run.out  # the "failed" column
    assert re.search(r"started at 8, reached \d+ of at most 64, peak \d+ in flight, \d+ overloads? \(429/503\)",
                     run.out), run.out


def test_the_limit_grows_past_the_start_when_the_provider_allows_more(fake: FakeChatServer, cli,
                                                                       project: Path) -> None:
    catalogue(project, cli)
    fake.limit, fake.delay = 32, 0.3
    fake.max_working = 0
    run = cli("refresh", "--concurrency", "8")
    assert run.code == 0, run.err
    assert fake.max_working > 8, "every stale review of every draft is in one pool, and the pool grew"
    assert fake.overloaded == 0
    reached = re.search(r"started at 8, reached (\d+) of at most 64, peak (\d+) in flight", run.out)
    assert reached is not None, run.out
    assert int(reached.group(1)) > 8 and int(reached.group(2)) > 8


def test_the_ceiling_is_never_exceeded(fake: FakeChatServer, cli, project: Path) -> None:
    catalogue(project, cli)
    fake.limit, fake.delay = 32, 0.2
    fake.max_working = 0
    run = cli("refresh", "--concurrency", "8", "--max-concurrency", "10")
    assert run.code == 0, run.err
    assert fake.max_working <= 10
    assert re.search(r"started at 8, reached (9|10) of at most 10", run.out), run.out


def test_a_burst_of_429s_from_one_overload_halves_the_limit_once() -> None:
    limit = AdaptiveLimit(16, 64)
    rounds = [limit.acquire() for _ in range(16)]
    for sent_in in rounds:  # all 16 refused by one overload
        limit.release(sent_in, 429, clean=False)
    assert limit.limit == 8 and limit.figures.overloads == 16
    limit.release(limit.acquire(), 503, clean=False)  # sent after the decrease: a new overload
    assert limit.limit == 4


def test_a_waiting_request_is_let_go_when_the_run_stops() -> None:
    stop = threading.Event()
    limit = AdaptiveLimit(1, 1, stop)
    limit.acquire()
    waiter = threading.Thread(target=limit.acquire)
    waiter.start()
    stop.set()
    limit.wake()
    waiter.join(5)
    assert not waiter.is_alive()


def test_a_limit_proven_this_round_is_kept_when_a_probe_past_it_is_refused() -> None:
    limit = AdaptiveLimit(8, 64)
    limit.release(limit.acquire(), 429, clean=False)  # the provider takes fewer than 8: halved to 4
    assert limit.limit == 4
    slots = [limit._take() for _ in range(4)]
    for sent_in, level in slots:  # four at once came back clean: the provider takes 4
        limit.release(sent_in, None, clean=True, level=level)
    limit.limit = 5.0  # grown by one to probe
    limit.release(limit.acquire(), 429, clean=False)  # the fifth is refused
    assert limit.limit == 4, "back to what was proven, not down to 2.5"
    limit.release(limit.acquire(), 429, clean=False)  # refused again, with nothing proven since: halved
    assert limit.limit == 2


def test_a_cut_made_by_a_quick_429_comes_back_to_what_was_in_flight_beside_it() -> None:
    """A 429 comes back at once; the 32 requests sent beside it come back clean a reply later, and show that the
    provider took 32: the limit returns to 0.9 of that, not to half of 33. Never to a level refused in the same
    overload, and never after a 503 (a server shedding load, not a quota)."""

    def overloaded(status: int, second_refusal: int | None = None) -> AdaptiveLimit:
        limit = AdaptiveLimit(32, 64)
        beside = [limit._take() for _ in range(32)]
        limit.limit = 33.0  # grown by one to probe
        sent_in, level = limit._take()
        limit.release(sent_in, status, clean=False, level=level)
        assert limit.limit == 16.5
        if second_refusal is not None:  # one of those beside it refused too, in the same overload
            sent_in, level = beside.pop(second_refusal - 1)
            limit.release(sent_in, 429, clean=False, level=level)
            assert limit.limit == 16.5, "one overload halves once"
        for sent_in, level in beside:
            limit.release(sent_in, None, clean=True, level=level)
        return limit

    assert overloaded(429).limit == 0.9 * 32
    assert overloaded(429, second_refusal=20).limit == 0.9 * 19
    assert overloaded(503).limit == 16.5


def test_past_a_known_limit_the_probe_waits_for_a_round_of_work_to_gain() -> None:
    """After an overload, one more request per round is tried only while a whole round is still to be sent: near
    the end of a run a refused probe would only add its Retry-After to the run."""
    stop = threading.Event()
    limit = AdaptiveLimit(4, 64, stop)
    limit.threshold = 4.0  # an overload was seen at 5
    slots = [limit._take() for _ in range(4)]
    waiters = [threading.Thread(target=limit.acquire, daemon=True) for _ in range(2)]
    for waiter in waiters:
        waiter.start()
    try:
        while limit.waiting < 2:
            stop.wait(0.01)
        (sent_in, level), rest = slots[0], slots[1:]
        limit.release(sent_in, None, clean=True, level=level)  # 2 waiting, nothing queued: it fits in a round
        assert limit.limit == 4
        limit.queued = 10  # a whole round and more still to come
        sent_in, level = rest[0]
        limit.release(sent_in, None, clean=True, level=level)
        assert limit.limit == 4.25
    finally:
        stop.set()
        limit.wake()


def test_a_run_the_cache_answers_reports_no_concurrency(fake: FakeChatServer, cli) -> None:
    """A target gets a limit, and a line in the run report, only once a request is sent to it."""
    assert cli("draft", "hf-inference-providers", "mistral-3-small").code == 0
    again = cli("draft", "hf-inference-providers", "mistral-3-small", "--force")
    assert again.code == 0 and ": 0 requests, 8 cache hits" in again.out, again.out
    assert "concurrency" not in again.out and "in flight" not in again.out, again.out
