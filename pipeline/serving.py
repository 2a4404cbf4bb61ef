"""Who served each request through Inference Providers, and what a run learns per (model, provider).

Under ``auto`` and the policies the router picks a provider for each request and names it in the
``x-inference-provider`` header of its answer, a reply or an error alike. A run keeps, per (model, provider), the
replies it served and what they cost, the 429s it answered, and how often a reply did not match the reply schema
although ``response_format`` was sent. From that:

- a provider that keeps answering 429 while another provider of the same model serves is skipped for the rest of
  the run: THROTTLED_AFTER refusals in a row, at least one of them to a request sent after its first refusal came
  back (a provider at its concurrency limit serves some of what it is sent, and a burst of refusals from one
  overload is not "keeps"), and no reply in between. Requests under a policy then go to ``model:<provider>`` of
  the provider that served the most. A pinned provider is never skipped: the lens asked for it;
- a provider that sent back a reply not matching the schema it was sent is not sent ``response_format`` again in
  the run. One such reply is proof: a server that enforces a schema answers nothing else (a reply cut off by
  ``max_tokens`` aside). Replies are validated either way.

Endpoints and the local model name no provider: their requests go as planned, and their provider is unknown.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace

from .errors import money, plural
from .review import Target, model_label
from .secret import secret_in
from .settings import POLICIES

PROVIDER_HEADER = "x-inference-provider"
THROTTLED_AFTER = 3  # 429s in a row, none served in between, before a provider can be skipped
UNKNOWN = "unknown"  # how a reply with no provider named is shown
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")  # a provider's name as the router spells it (novita, fireworks-ai)


def named_provider(headers: Mapping[str, str] | None) -> str:
    """The provider an answer's headers name, or "" when they name none, or something that is not a provider's name
    (a server may send anything: a long string, control characters, a key it was given)."""
    value = (headers.get(PROVIDER_HEADER) or "").strip() if headers is not None else ""
    return value.lower() if _NAME.fullmatch(value.lower()) and secret_in(value) is None else ""


def shown_provider(provider: str) -> str:
    return provider or UNKNOWN


def chosen_by_router(target: Target) -> bool:
    """Inference Providers picks the provider for this target (``auto`` or a policy): none is named in the request."""
    return target.backend == "hf" and (target.provider or "auto") in POLICIES


@dataclass
class ProviderFigures:
    """One (model, provider) in one run."""

    served: int = 0  # replies
    cost: float | None = 0.0  # USD, at that provider's price; None once a reply had no known price
    refused: int = 0  # 429s
    schema_sent: int = 0  # replies to a request that carried response_format
    schema_missed: int = 0  # of those, replies that did not match the schema
    streak: int = 0  # 429s since it last served
    streak_since: float = 0.0  # when the first of them came back
    repeated: bool = False  # one of them answered a request sent after the first came back


class Serving:
    """What one run learns of the providers that serve it; shared by the workers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.figures: dict[tuple[str, str], ProviderFigures] = {}
        self.skipped: dict[tuple[str, str], str] = {}  # (model, provider) -> why it is skipped
        self.moved_to: dict[str, str] = {}  # model -> the provider its policy requests are sent to instead
        self.ignores_schema: set[tuple[str, str]] = set()
        self._last: dict[str, str] = {}  # a policy target's label -> the provider that served its last reply

    def route(self, target: Target) -> Target:
        """Where to send a request for ``target`` now: to the provider a skipped one's share went to, and without
        response_format where the provider expected to answer ignores it. The cache key stays the target's."""
        if target.backend != "hf":
            return target
        with self._lock:
            provider = target.provider
            if chosen_by_router(target) and target.model in self.moved_to:
                provider = self.moved_to[target.model]
            expected = provider if provider not in ("", *POLICIES) else self._last.get(target.label, "")
            ignored = (target.model, expected) in self.ignores_schema
        return replace(target, provider=provider, structured=target.structured and not ignored)

    def _of(self, model: str, provider: str) -> ProviderFigures:
        return self.figures.setdefault((model, provider), ProviderFigures())

    def replied(self, target: Target, route: Target, provider: str, cost: float | None, schema_sent: bool,
                matched: bool) -> None:
        """A reply to a request for ``target`` sent as ``route``, served by ``provider`` ("" when not named)."""
        if target.backend != "hf":
            return
        provider = provider or (route.provider if route.provider not in ("", *POLICIES) else "")
        with self._lock:
            if chosen_by_router(target):
                self._last[target.label] = provider
            if not provider:
                return
            figures = self._of(target.model, provider)
            figures.served += 1
            figures.cost = None if figures.cost is None or cost is None else figures.cost + cost
            figures.streak, figures.repeated = 0, False
            if schema_sent:
                figures.schema_sent += 1
                if not matched:
                    figures.schema_missed += 1
                    self.ignores_schema.add((target.model, provider))
            self._skip_throttled(target.model)

    def refused(self, target: Target, route: Target, provider: str, sent_at: float) -> None:
        """A 429 to a request for ``target`` sent (at ``sent_at``, time.monotonic) as ``route``."""
        provider = provider or (route.provider if route.provider not in ("", *POLICIES) else "")
        if target.backend != "hf" or not provider:
            return
        now = time.monotonic()
        with self._lock:
            figures = self._of(target.model, provider)
            figures.refused += 1
            if figures.streak == 0:
                figures.streak_since = now
            elif sent_at > figures.streak_since:
                figures.repeated = True
            figures.streak += 1
            self._skip_throttled(target.model)

    def gone(self, target: Target, provider: str, why: str) -> None:
        """The router refused ``provider``, where a skipped provider's share of ``target``'s model was moved: it is
        skipped too, and the share goes to another provider that served, or back to the router's choice."""
        with self._lock:
            self.skipped[(target.model, provider)] = f"refused by the router: {why}"
            others = {name: f.served for (m, name), f in self.figures.items()
                      if m == target.model and f.served and (m, name) not in self.skipped}
            if others:
                self.moved_to[target.model] = max(others, key=lambda name: others[name])
            else:
                self.moved_to.pop(target.model, None)

    def _skip_throttled(self, model: str) -> None:
        """Skip each provider of ``model`` that keeps answering 429 while another one serves (the lock is held)."""
        serving = {provider: f.served for (m, provider), f in self.figures.items()  # live: it serves, now
                   if m == model and f.served and f.streak < THROTTLED_AFTER and (m, provider) not in self.skipped}
        for (m, provider), f in self.figures.items():
            if m != model or (m, provider) in self.skipped or f.streak < THROTTLED_AFTER or not f.repeated:
                continue
            others = {name: count for name, count in serving.items() if name != provider}
            if not others:
                continue
            best = max(others, key=lambda name: others[name])
            self.skipped[(m, provider)] = f"while {', '.join(sorted(others))} served"
            if self.moved_to.get(m, provider) == provider:
                self.moved_to[m] = best

    def lines(self) -> list[str]:
        """For the run report: who served what, at what cost, the providers skipped, the schemas ignored."""
        with self._lock:
            figures = sorted(self.figures.items())
            skipped, moved, ignored = dict(self.skipped), dict(self.moved_to), set(self.ignores_schema)
        if not figures:
            return []
        lines = ["  served by (the provider the router named on each reply, whose price it is counted at):"]
        for (model, provider), f in figures:
            said = [f"{plural(f.served, 'reply', 'replies')}, {money(f.cost)}"]
            if f.refused:
                said.append(f"{plural(f.refused, 'request')} answered 429")
            if f.schema_sent:
                said.append(f"{f.schema_missed} of {f.schema_sent} did not match the reply schema although "
                            "response_format was sent" + ("; no longer sent it" if (model, provider) in ignored
                                                          else ""))
            lines.append(f"    {model_label(model, provider)}: {'; '.join(said)}")
        counts = dict(figures)
        for (model, provider), why in sorted(skipped.items()):
            f = counts.get((model, provider), ProviderFigures())
            if why.startswith("while "):
                served = f"{plural(f.served, 'reply', 'replies')} served before" if f.served else "none served"
                why = f"kept answering 429 (to {plural(f.refused, 'request')}, {served}) {why}"
            where = f"; its share went to {model_label(model, moved[model])}" if model in moved else ""
            lines.append(f"  skipped for the rest of the run: {model_label(model, provider)} {why}{where}")
        return lines
