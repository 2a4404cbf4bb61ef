"""Transport retries (408, 429, 5xx, timeouts, dropped connections), kept apart from validation re-asks."""

from __future__ import annotations

import email.utils
import ipaddress
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx2
from huggingface_hub.errors import HfHubHTTPError, InferenceTimeoutError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_when_event_set,
    wait_exponential_jitter,
)
from tenacity.stop import stop_base

from .capped import MAX_LIST, capped
from .errors import CreditsExhausted, RoutingRefused, TransportError, VerdictsError, clip, plural
from .review import Target
from .serving import named_provider
from .settings import POLICIES, Settings, public_url

T = TypeVar("T")
RETRIED_STATUSES = frozenset({408, 425, 429})
# Connection refused on this machine or the local network means nothing listens there, and nothing will in the
# next minute: one quick retry (a server restarting), not transport_attempts with backoff.
LOCAL_NETWORKS = tuple(ipaddress.ip_network(net) for net in
                       ("127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
REFUSED_ATTEMPTS = 2
REFUSED_WAIT = 0.2  # seconds before the one retry
# The longest timeout honoured, in seconds: an hour is already no timeout for a chat reply, and a larger number
# (inf, 1e300) overflows the clocks that sockets and threads wait on.
MAX_TIMEOUT = 3600.0


def request_timeout(settings: Settings) -> float:
    """Seconds a request may take from start to finish, ``timeout`` capped at MAX_TIMEOUT."""
    return min(settings.timeout, MAX_TIMEOUT)


class RequestDeadline(TimeoutError):
    """No complete reply within the timeout, however the server paced it (a byte at a time counts as slow)."""

    def __init__(self, url: str, seconds: float) -> None:
        super().__init__(f"no complete reply from {url} within {seconds:g} s")
        self.url, self.seconds = url, seconds


def within_deadline(call: Callable[[], T], seconds: float, url: str) -> T:
    """``call()``, or RequestDeadline once ``seconds`` have passed, whatever the call is waiting on.

    httpx's timeouts bound each read, so a server that sends a byte every few hundred milliseconds never trips them.
    The call runs in a daemon thread: past the deadline it is abandoned (its connection ends when the server's does,
    or at the next read timeout) and never holds up the run or the process's exit.
    """
    values: list[T] = []
    failures: list[BaseException] = []
    done = threading.Event()

    def run() -> None:
        try:
            values.append(call())
        except BaseException as exc:  # handed to the caller, in its own thread
            failures.append(exc)
        finally:
            done.set()

    threading.Thread(target=run, name="request", daemon=True).start()
    if not done.wait(seconds):
        raise RequestDeadline(url, seconds)
    if failures:
        raise failures[0]
    return values[0]


def get_within(url: str, headers: dict[str, str], seconds: float) -> httpx2.Response:
    """``GET url`` on huggingface_hub's shared HTTP client (the chat requests then reuse its connection and TLS
    set-up), the whole answer within ``seconds`` and MAX_LIST bytes: httpx's timeout bounds each read, so a server
    that trickles its answer is cut off here instead, and one that streams it without end is cut off at the cap."""
    from huggingface_hub.utils import get_session  # only once a list is asked for, not on every command's start

    return within_deadline(lambda: capped(lambda: get_session().get(url, headers=headers, timeout=seconds), MAX_LIST),
                           seconds, public_url(url))


def is_local(host: str) -> bool:
    """Loopback or a private network (10/8, 172.16/12, 192.168/16)."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in network for network in LOCAL_NETWORKS)


def _request_url(exc: BaseException) -> httpx2.URL | None:
    try:
        return exc.request.url if isinstance(exc, httpx2.RequestError) else None
    except RuntimeError:  # httpx raises when the error was made without its request
        return None


def url_of(exc: BaseException) -> str | None:
    """The URL a failed request was sent to, without userinfo, when the error carries it."""
    url = _request_url(exc)
    return public_url(str(url)) if url is not None else None


def refused(exc: BaseException) -> bool:
    """The connection was refused: nothing listens at that address and port."""
    seen: BaseException | None = exc
    for _ in range(10):  # the cause of httpx's error is httpcore's, whose cause is the OSError
        if seen is None or isinstance(seen, ConnectionRefusedError):
            return seen is not None
        seen = seen.__cause__ or seen.__context__
    return False


def refused_locally(exc: BaseException) -> bool:
    url = _request_url(exc)
    return url is not None and refused(exc) and is_local(url.host)


def status_of(exc: BaseException) -> int | None:
    if isinstance(exc, HfHubHTTPError) and exc.response is not None:
        return int(exc.response.status_code)
    return None


def is_transient(exc: BaseException) -> bool:
    status = status_of(exc)
    if status is not None:
        return status in RETRIED_STATUSES or (status >= 500 and status != 501)
    return isinstance(exc, InferenceTimeoutError | httpx2.TransportError | TimeoutError | ConnectionError)


def retry_after(exc: BaseException) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date), if the error carries one."""
    if not isinstance(exc, HfHubHTTPError) or exc.response is None:
        return None
    value = exc.response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class WaitRetryAfterOrBackoff:
    """Honour Retry-After up to a cap; otherwise exponential backoff with jitter."""

    def __init__(self, settings: Settings) -> None:
        self.cap = settings.retry_after_cap
        self.backoff = wait_exponential_jitter(multiplier=settings.backoff_initial, max=settings.backoff_max,
                                               jitter=settings.backoff_initial)

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if exc is not None and refused_locally(exc):
            return REFUSED_WAIT
        asked = retry_after(exc) if exc else None
        if asked is not None:
            return min(asked, self.cap)
        return float(self.backoff(state))


def describe(exc: BaseException) -> str:
    status = status_of(exc)
    if status is not None:
        reason = getattr(exc.response, "reason_phrase", "") if isinstance(exc, HfHubHTTPError) else ""
        return f"HTTP {status} {reason}".strip()
    if isinstance(exc, RequestDeadline):
        return str(exc)
    if isinstance(exc, InferenceTimeoutError | httpx2.TimeoutException | TimeoutError):
        return "the request timed out"
    if isinstance(exc, httpx2.ConnectError | ConnectionError):
        url, why = url_of(exc), " (connection refused)" if refused(exc) else ""
        return f"could not connect to {url}{why}" if url else f"could not connect{why}"
    return clip(f"{type(exc).__name__}: {exc}", 300)


def server_said(exc: HfHubHTTPError) -> str:
    """The server's own words about an error: OpenAI-style ``{"error": {"message": ...}}``, ``{"error": ...}``,
    ``{"message": ...}`` or ``{"detail": ...}``; else the body as text."""
    response = exc.response
    try:
        body = response.json() if response is not None else None
    except (ValueError, RecursionError):  # not JSON, or nested too deeply to read: the body as text below
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        for value in (error, body.get("message"), body.get("detail")):
            if isinstance(value, str) and value:
                return value
    return exc.server_message or (response.text if response is not None else "")


class _StopWhenRefusedLocally(stop_base):
    """Stop after REFUSED_ATTEMPTS when a local address refused the connection."""

    def __call__(self, retry_state: RetryCallState) -> bool:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        return exc is not None and retry_state.attempt_number >= REFUSED_ATTEMPTS and refused_locally(exc)


class _Cut(Exception):
    """The stop event ended a wait between attempts: no further attempt is made."""


def call_with_retries(call: Callable[[], T], settings: Settings, where: str,
                      on_retry: Callable[[BaseException], Any] | None = None,
                      stop: threading.Event | None = None) -> T:
    """Run ``call``; retry transient failures; turn the final failure into one of our errors.

    ``stop``, when set by another thread, ends the waiting at once, and no further attempt is sent.
    """
    stop = stop or threading.Event()
    failures: list[BaseException] = []

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if exc is not None:
            failures.append(exc)
            if on_retry:
                on_retry(exc)

    def sleep(seconds: float) -> None:
        if stop.wait(seconds):
            raise _Cut()

    retrying = Retrying(
        stop=stop_after_attempt(settings.transport_attempts) | stop_when_event_set(stop) | _StopWhenRefusedLocally(),
        wait=WaitRetryAfterOrBackoff(settings),
        retry=retry_if_exception(is_transient),
        before_sleep=before_sleep,
        sleep=sleep,
        reraise=True,
    )
    try:
        return retrying(call)
    except _Cut:  # tenacity had already numbered the attempt that was not made
        raise _final(failures[-1], where, len(failures)) from None
    except Exception as exc:
        raise _final(exc, where, retrying.statistics.get("attempt_number", 1)) from None


def _attempts(count: int) -> str:
    return plural(count, "attempt")


def _final(exc: BaseException, where: str, attempts: int) -> BaseException:
    """The error a caller sees once no more attempts will be made."""
    status = status_of(exc)
    if status == 402:
        return CreditsExhausted(f"{where}: HTTP 402, the account's inference credits are exhausted; "
                                "stopped without retrying")
    if status in (401, 403):
        return TransportError(f"{where}: HTTP {status}, the server refused our credentials", status, attempts,
                              hint="Check HF_TOKEN (Inference Providers) or VERDICTS_API_KEY (endpoint).")
    # describe() may end a sentence ("... without sending a response."): the clause goes on after it
    failing = f"{where}: {describe(exc).rstrip('. ')}, still failing after {_attempts(attempts)}"
    if refused_locally(exc):
        return TransportError(failing, status, attempts, hint="Nothing listens at that address: start the server "
                              "(llama-server, ollama serve, vLLM ...), or point VERDICTS_BASE_URL at the one that "
                              "is running.")
    if is_transient(exc):
        return TransportError(failing, status, attempts, hint="The server may be down or overloaded; run the draft "
                              "again later, replies already received are cached.")
    if isinstance(exc, HfHubHTTPError):  # the status, and what the server said about it
        said = clip(" ".join(server_said(exc).split()), 300)
        return TransportError(f"{where}: {describe(exc)}" + (f": {said}" if said else ""), status, attempts)
    if isinstance(exc, ValueError):
        detail = clip(str(exc).splitlines()[0], 300) if str(exc) else describe(exc)
        return TransportError(f"{where}: {detail}", status, attempts)
    return exc


# The router's words for an account out of credit (besides HTTP 402), for a model a provider does not serve, and for
# a provider an organisation turned off. Matched on the error's message, case aside; the router does not publish a
# list of error codes.
OUT_OF_CREDIT = re.compile(r"(credit|balance|quota)s?\b.{0,60}\b(exhausted|depleted|insufficient|exceeded|too low|"
                           r"run out|used up)|\b(exhausted|depleted|insufficient|exceeded|no|not enough|run out of|"
                           r"used up)\b.{0,40}\b(credit|balance|prepaid)", re.IGNORECASE | re.DOTALL)
NOT_SERVED = re.compile(r"not supported by (any |the )?(provider|inference provider)|(model|it) (is )?not "
                        r"(supported|available|served|found)|(does not|doesn't|no longer) (serve|support|host)s?|"
                        r"no (inference )?provider", re.IGNORECASE)
DISABLED = re.compile(r"(organi[sz]ation|\borg\b)[^.]{0,80}\b(disabled|not (enabled|allowed)|blocked)|"
                      r"\b(disabled|not (enabled|allowed)|blocked)\b[^.]{0,80}(organi[sz]ation|\borg\b)", re.IGNORECASE)
BILLING = "https://huggingface.co/settings/billing"
PROVIDER_SETTINGS = "https://huggingface.co/settings/inference-providers"


def router_error(exc: HfHubHTTPError, target: Target, bill_to: str = "") -> VerdictsError | None:
    """An error from the Inference Providers router in its own words, in one line naming the model and provider and
    saying what to do. The account's or the router's refusals stop the run at the first, never retried and with no
    fallback, since every other request would be refused alike: out of credit (402, or a balance error under
    another status), no provider the account has enabled serves the model, the organisation billed (``bill_to``)
    has the provider disabled, a pinned provider was taken out of routing. None for the rest, which the transport
    retries handle as before."""
    status = status_of(exc)
    if status is None or exc.response is None:
        return None
    said = " ".join(server_said(exc).split())
    provider = target.provider or "auto"
    via = f"{target.model} via {provider}" if provider not in POLICIES else f"{target.model} ({provider})"
    served = named_provider(exc.response.headers)
    billed = f"the organisation {bill_to} (bill_to)" if bill_to else "the account"
    if status == 402 or (status in (400, 403, 429) and OUT_OF_CREDIT.search(said)):
        what = f"add credit to {bill_to} or set bill_to (VERDICTS_BILL_TO) to another organisation" if bill_to else \
            f"top up at {BILLING} or set bill_to (VERDICTS_BILL_TO) to an organisation with credit"
        return CreditsExhausted(f"out of Inference Providers credit for {via} (HTTP {status}"
                                f"{', billed to ' + bill_to if bill_to else ''}): {what}, then run again (replies "
                                "already received are cached)", hint="")
    if 400 <= status < 500 and DISABLED.search(said):
        which = f"provider {served or provider}" if (served or provider not in POLICIES) else "the provider it picks"
        where = f"the Inference Providers settings of {bill_to} on huggingface.co" if bill_to else PROVIDER_SETTINGS
        return RoutingRefused(f"{which} is disabled for {billed}, so it cannot serve {via} (HTTP {status}: "
                              f"{clip(said, 200)}): enable it in {where}, or pin another provider (provider in the "
                              "persona file or the settings)" + (", or unset bill_to" if bill_to else ""))
    if status in (400, 404, 422) and NOT_SERVED.search(said):
        if provider in POLICIES:
            return RoutingRefused(f"no Inference Provider serves {target.model} (HTTP {status}: {clip(said, 200)}): "
                                  f"enable one that does for {billed} at {PROVIDER_SETTINGS}, or change the model "
                                  "(model in the settings or the persona file); `python -m pipeline providers` "
                                  "shows who serves the configured ones")
        return RoutingRefused(f"provider {provider} no longer serves {target.model} (HTTP {status}: "
                              f"{clip(said, 200)}): pick another from `python -m pipeline providers` (provider in "
                              "the persona file or the settings), or use auto")
    return None
