"""Choose the backend and talk to it. Every backend is a ``huggingface_hub.InferenceClient``.

Order: ``VERDICTS_BACKEND`` if set; else ``VERDICTS_BASE_URL`` (an OpenAI-compatible endpoint); else
``HF_TOKEN`` (Hugging Face Inference Providers); else the embedded local model.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from huggingface_hub import ChatCompletionInputMessage, InferenceClient
from huggingface_hub.errors import HfHubHTTPError, InferenceTimeoutError

from .errors import InputError, VerdictsError
from .retry import RequestDeadline, request_timeout, router_error, within_deadline
from .review import REPLY_SCHEMA, Backend, Completion, Message, Target
from .router import Catalogue, structured_for
from .settings import HF_ROUTER, Settings, choose_backend, public_url, server_of

# Sent to endpoints when VERDICTS_API_KEY is unset. Without an explicit key, huggingface_hub would fall back
# to the Hugging Face token and send it to whatever server VERDICTS_BASE_URL names.
NO_KEY = "verdicts-no-key"


class ChatBackend:
    """An OpenAI-style chat-completions backend: an endpoint, or Inference Providers through the router."""

    def __init__(self, name: str, settings: Settings, *, base_url: str = "", api_key: str = "") -> None:
        self.name = name
        self.settings = settings
        self.base_url = base_url
        self.concurrency = settings.concurrency
        self.timeout = request_timeout(settings)  # for the whole request; httpx's applies to each read
        self.server = server_of(settings, name)
        # The router's catalogue, once the session has read it: which providers take a response_format.
        self.catalogue: Catalogue | None = None
        # One client serves every lens: model and provider travel with each request, not with the client.
        if name == "endpoint":
            self._client = InferenceClient(base_url=base_url, api_key=api_key or NO_KEY, timeout=self.timeout)
        elif self.server == HF_ROUTER:
            self._client = InferenceClient(provider="auto", api_key=api_key, timeout=self.timeout,
                                           bill_to=settings.bill_to or None)
        else:  # a router behind a proxy (VERDICTS_ROUTER_URL): the token goes to that address and nowhere else
            self._client = InferenceClient(base_url=f"{self.server}/v1", api_key=api_key, timeout=self.timeout,
                                           bill_to=settings.bill_to or None)

    def describe(self) -> str:
        if self.name == "endpoint":
            return f"endpoint {public_url(self.base_url)}"
        return "Hugging Face Inference Providers"

    def routed_model(self, target: Target) -> str:
        """The router reads a provider or policy (fastest, cheapest) from a ``model:suffix``."""
        if self.name == "hf" and target.provider not in ("", "auto"):
            return target.label
        return target.model

    def structured_for(self, target: Target) -> bool:
        """Whether ``target`` is sent the reply schema as ``response_format``: when asked for, and through Inference
        Providers only where the router says the chosen provider supports structured output."""
        return structured_for(target, self.catalogue if self.name == "hf" else None)

    def complete(self, target: Target, messages: list[Message]) -> Completion:
        extra: dict[str, Any] = {}
        if self.structured_for(target):
            extra["response_format"] = {"type": "json_schema",
                                        "json_schema": {"name": "review", "schema": REPLY_SCHEMA, "strict": True}}

        def call() -> Any:
            return self._client.chat_completion(
                list[dict | ChatCompletionInputMessage](messages),
                model=self.routed_model(target),
                temperature=target.temperature,
                max_tokens=target.max_tokens,
                **extra,
            )

        try:
            output = within_deadline(call, self.timeout, self.server)
        except InferenceTimeoutError:  # a single read took the whole timeout: the same failure, the same words
            raise RequestDeadline(self.server, self.timeout) from None
        except json.JSONDecodeError as exc:
            raise MalformedBody(f"the server answered with a body that is not JSON ({exc.msg})") from None
        except HfHubHTTPError as exc:  # the router's own errors, in its words: credit, a model no one serves
            said: VerdictsError | None = router_error(exc, target) if self.name == "hf" else None
            if said is not None:
                raise said from None
            raise
        return read_completion(output)


class MalformedBody(ValueError):
    """A 200 answer that is not a chat-completions body."""


def _count(value: object) -> int:
    """A token count as reported, or 0 (not reported) for anything that is not a count: None, a string, a negative."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def read_completion(output: Any) -> Completion:
    """Take what we need from a chat-completions answer, whatever shape the server gave it."""
    choices = getattr(output, "choices", None)
    if choices is not None and not isinstance(choices, list):
        raise MalformedBody("the server's answer has no list of choices")
    first = choices[0] if choices else None
    message = getattr(first, "message", None)
    content = getattr(message, "content", None)
    usage = getattr(output, "usage", None)
    return Completion(
        text=content if isinstance(content, str) else None if content is None else json.dumps(content),
        finish_reason=getattr(first, "finish_reason", None),
        prompt_tokens=_count(getattr(usage, "prompt_tokens", 0)),
        completion_tokens=_count(getattr(usage, "completion_tokens", 0)),
    )


def _source(env: Mapping[str, str], variable: str, setting: str) -> str:
    """Where a setting came from, for an error: the environment variable when it is set there."""
    return f"environment variable {variable}" if env.get(variable) else f"setting {setting}"


def select_backend(settings: Settings, env: Mapping[str, str] | None = None) -> Backend:
    """The backend to send reviews to. A backend that is misconfigured is bad input (exit 2), found before any
    request."""
    env = os.environ if env is None else env
    choice = choose_backend(settings, env)
    if choice == "endpoint":
        if not settings.base_url:
            raise InputError(_source(env, "VERDICTS_BACKEND", "backend"), "backend",
                             "is endpoint but VERDICTS_BASE_URL is not set",
                             hint="Set VERDICTS_BASE_URL to an OpenAI-compatible server, "
                             "e.g. http://127.0.0.1:8080/v1 for llama.cpp's server.")
        if not settings.base_url.startswith(("http://", "https://")):
            raise InputError(_source(env, "VERDICTS_BASE_URL", "base_url"), "base_url",
                             f"must start with http:// or https://, not {public_url(settings.base_url)!r}",
                             hint="e.g. VERDICTS_BASE_URL=http://127.0.0.1:8080/v1")
        return ChatBackend("endpoint", settings, base_url=settings.base_url,
                           api_key=env.get("VERDICTS_API_KEY", ""))
    if choice == "hf":
        token = env.get("HF_TOKEN", "")
        if not token:
            raise InputError(_source(env, "VERDICTS_BACKEND", "backend"), "backend",
                             "is hf but HF_TOKEN is not set",
                             hint="Create a token with the 'Inference Providers' permission and export HF_TOKEN.")
        if not settings.router_url.startswith(("http://", "https://")):
            raise InputError(_source(env, "VERDICTS_ROUTER_URL", "router_url"), "router_url",
                             f"must start with http:// or https://, not {public_url(settings.router_url)!r}",
                             hint=f"Unset it to use {HF_ROUTER}, or give the proxy's address.")
        return ChatBackend("hf", settings, api_key=token)
    from .local import LocalBackend

    return LocalBackend(settings)
