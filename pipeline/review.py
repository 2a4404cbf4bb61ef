"""What every stage shares: where a review is sent, what comes back, the review itself, and section ids.

Nothing here does work; every other module may import it, and it imports only ``load``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, field_validator

from .load import FactSheet, Persona

Message = dict[str, str]

REPLY_FORMAT_VERSION = 1  # bump when parsing or the rules change what a valid reply is
# The reply format as a JSON schema, for servers that constrain their output to one.
REPLY_SCHEMA = {
    "type": "object",
    "properties": {"verdict": {"type": "string", "enum": ["ship", "skip"]}, "quote": {"type": "string"}},
    "required": ["verdict", "quote"],
}


def matches_schema(text: str | None) -> bool:
    """Whether a reply is exactly what REPLY_SCHEMA allows: a bare JSON object with a verdict of ``ship`` or
    ``skip`` and a string quote. A server that enforces the schema it was sent answers nothing else; a reply the
    pipeline still accepts (a code fence around it, ``"Ship"``) shows the schema was not enforced."""
    try:
        data = json.loads(text or "")
    except (ValueError, RecursionError):
        return False
    return isinstance(data, dict) and data.get("verdict") in ("ship", "skip") and isinstance(data.get("quote"), str)


class Reply(BaseModel):
    """The reply format: ``{"verdict": "ship" | "skip", "quote": "..."}``; other keys are ignored."""

    model_config = ConfigDict(extra="ignore")

    verdict: Literal["ship", "skip"]
    quote: str

    @field_validator("verdict", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value


# Section ids: ``card:<slug>`` for a tool's card, ``<lens>:<slug>`` for a lens's quote on a tool, ``frame`` for
# the page outside its sections. Built and parsed here and nowhere else.
CARD = "card"
FRAME = "frame"


def section_id(kind: str, slug: str) -> str:
    """``kind`` is ``card`` or a lens."""
    return f"{kind}:{slug}"


def card_id(slug: str) -> str:
    return section_id(CARD, slug)


def parse_section(name: str) -> tuple[str, str]:
    """``skeptic:ollama`` -> (``skeptic``, ``ollama``); ``card:ollama`` -> (``card``, ``ollama``)."""
    kind, colon, slug = name.partition(":")
    if not colon or not kind or not slug:
        raise ValueError(f"{name!r} is not a section id (card:<slug> or <lens>:<slug>)")
    return kind, slug


def describe_section(name: str) -> str:
    """``skeptic:ollama`` -> ``skeptic quote on ollama``; ``card:ollama`` -> ``card of ollama``."""
    if name == FRAME:
        return "page frame"
    kind, slug = parse_section(name)
    return f"card of {slug}" if kind == CARD else f"{kind} quote on {slug}"


def is_card(name: str) -> bool:
    return name.startswith(CARD + ":")


def model_label(model: str, provider: str) -> str:
    """``model:provider`` as the router spells it, or the model alone."""
    return f"{model}:{provider}" if provider else model


@dataclass(frozen=True)
class Target:
    """Where one review is sent: everything about the model that can change its reply.

    The cache key and the model-settings fingerprint in the sidecar are both made from ``settings()``, so they
    cannot disagree about what changes a reply.
    """

    backend: str
    model: str
    provider: str
    temperature: float
    max_tokens: int
    structured: bool  # the reply schema is sent as response_format
    server: str  # the endpoint's or the router's address, without credentials; empty for the local model

    @property
    def label(self) -> str:
        return model_label(self.model, self.provider)

    def settings(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Completion:
    text: str | None
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    served_by: str = ""  # the provider that answered, as the router names it (x-inference-provider); "" unknown
    schema_sent: bool = False  # the reply schema went with the request as response_format


class Backend(Protocol):
    """A chat model to send reviews to: an endpoint, Inference Providers, or the embedded model."""

    name: str
    concurrency: int  # the most requests it takes at once

    def describe(self) -> str: ...

    def complete(self, target: Target, messages: list[Message]) -> Completion: ...


@dataclass(frozen=True)
class Job:
    """One review to get: a lens on a tool, its rendered messages, and where to send them."""

    persona: Persona
    slug: str
    sheet: FactSheet
    target: Target
    messages: list[Message]
    key: str  # from the lens's own target: a fallback's reply stands in for it, and says so
    fallbacks: tuple[Target, ...] = ()

    @property
    def section(self) -> str:
        return section_id(self.persona.lens, self.slug)


@dataclass(frozen=True)
class Review:
    lens: str
    slug: str
    verdict: str
    quote: str
    model: str  # the model that wrote the quote: the lens's own, or a fallback's
    provider: str = ""
    fallback: bool = False
    # A review the model never got right: no quote, why, and where its last reply is kept for ``accept``.
    missing: str = ""
    kept: str = ""
    accepted: bool = False  # an editor took the reply as it is (``accept``): not held to the lens's rules again
    served_by: str = ""  # the provider that served the reply, as the router named it; "" when unknown

    @property
    def section(self) -> str:
        return section_id(self.lens, self.slug)

    @property
    def written_by(self) -> str:
        return model_label(self.model, self.provider)
