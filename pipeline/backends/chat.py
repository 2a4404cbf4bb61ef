"""Choose the backend and talk to it. Every backend is a ``huggingface_hub.InferenceClient``.

Order: ``VERDICTS_BACKEND`` if set; else ``VERDICTS_BASE_URL`` (an OpenAI-compatible endpoint); else
``HF_TOKEN`` (Hugging Face Inference Providers); else the embedded local model.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from huggingface_hub import ChatCompletionInputMessage, ChatCompletionOutput, InferenceClient
from huggingface_hub.errors import HfHubHTTPError, InferenceTimeoutError
from huggingface_hub.utils import get_session

from ..capped import MAX_REPLY, capped, install_hooks
from ..errors import InputError, VerdictsError, plural
from ..retry import RequestDeadline, request_timeout, router_error, within_deadline
from ..review import Backend, Completion, Message, Target
from ..serving import named_provider
from ..settings import HF_ROUTER, Settings, choose_backend, public_url, server_of
from ..startup import warm_http_session
from .dialects import DETECT_TIMEOUT, Dialect, StructuredOutput, detect, refuses_response_format, response_format
from .router import Catalogue, structured_for

if TYPE_CHECKING:
    import httpx2

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
        # The chat-completions base URL the client posts to, when it is given one (not the default router).
        self.url = base_url if name == "endpoint" else "" if self.server == HF_ROUTER else f"{self.server}/v1"
        # The router's catalogue, once the session has read it: which providers take a response_format.
        self.catalogue: Catalogue | None = None
        # Endpoints: the reply schema goes in the dialect the server understands (pipeline/dialects.py), set or
        # detected on the first request.
        self._structured_lock = threading.Lock()
        self._structured: StructuredOutput | None = None
        # One client serves every lens: model and provider travel with each request, not with the client.
        if name == "endpoint":
            self._client = InferenceClient(base_url=base_url, api_key=api_key or NO_KEY, timeout=self.timeout)
        elif self.server == HF_ROUTER:
            self._client = InferenceClient(provider="auto", api_key=api_key, timeout=self.timeout,
                                           bill_to=settings.bill_to or None)
        else:  # a router behind a proxy (VERDICTS_ROUTER_URL): the token goes to that address and nowhere else
            self._client = InferenceClient(base_url=self.url, api_key=api_key, timeout=self.timeout,
                                           bill_to=settings.bill_to or None)
        # The client's HTTP session is built on the first request, and most of that is loading the TLS certificates
        # (about 25 ms, outside the GIL): built now, in the background, it is ready by the time the prompts are.
        warm_http_session()

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
        if self.name == "endpoint":
            return self._complete_at_endpoint(target, messages)
        dialect: Dialect = "json_schema" if self.structured_for(target) else "none"
        # The default router goes through huggingface_hub's own conversational auto-router, which sends OpenAI's
        # shape as written; a router behind a proxy is a base URL, where _chat keeps the shape from being rewritten.
        try:
            output, provider = self._deadline(partial(
                naming_provider, partial(self._chat, target, messages, dialect, self.routed_model(target))))
        except HfHubHTTPError as exc:  # the router's own errors, in its words: credit, a model no one serves
            said: VerdictsError | None = router_error(exc, target, self.settings.bill_to)
            if said is not None:
                raise said from None
            raise
        return replace(read_completion(output), served_by=provider, schema_sent=dialect != "none")

    @property
    def structured_output(self) -> StructuredOutput:
        """This endpoint's dialect, set or detected on first use, for the whole run."""
        with self._structured_lock:
            if self._structured is None:
                self._structured = StructuredOutput(
                    self.settings.structured_dialect,
                    lambda: detect(self.base_url, self._client.token or NO_KEY, min(self.timeout, DETECT_TIMEOUT)))
            return self._structured

    def describe_structured(self) -> dict[str, str]:
        """Server -> the dialect its reviews were asked in and why, for the run report; empty until one was sent."""
        said = self._structured.describe() if self._structured is not None else ""
        return {self.server: said} if said else {}

    def _complete_at_endpoint(self, target: Target, messages: list[Message]) -> Completion:
        """One reply from the endpoint. A response_format the server refuses is not a transient failure: the same
        request goes again at once in the next dialect, down to none, and the run keeps to the one that worked."""
        structured = self.structured_output if target.structured else None
        while True:
            dialect: Dialect = structured.current() if structured is not None else "none"
            try:
                output = self._deadline(partial(self._chat, target, messages, dialect))
            except HfHubHTTPError as exc:
                if structured is None or dialect == "none" or not refuses_response_format(exc):
                    raise
                structured.refused(dialect, exc.response.status_code if exc.response is not None else None)
                continue
            return read_completion(output)

    def _deadline(self, call: Callable[[], Any]) -> Any:
        """``call()`` within the timeout, reading at most MAX_REPLY bytes of the answer. A body that goes on past
        it (AnswerTooLarge) fails like one that is not JSON: not retried, as the same request would be answered
        the same way and each attempt may be billed; the review moves on to a fallback, else the run stops."""
        try:
            return within_deadline(partial(capped, call, MAX_REPLY), self.timeout, self.server)
        except InferenceTimeoutError:  # a single read took the whole timeout: the same failure, the same words
            raise RequestDeadline(self.server, self.timeout) from None
        except json.JSONDecodeError as exc:
            raise MalformedBody(f"{self.server} answered with a body that is not JSON ({exc.msg})") from None
        except RecursionError:  # JSON nested deeper than the parser goes: no chat answer is
            raise MalformedBody(f"{self.server} answered with a body nested too deeply to read") from None

    def _chat(self, target: Target, messages: list[Message], dialect: Dialect, model: str = "") -> Any:
        """A chat completion with ``dialect``'s response_format, exactly as given.

        For a URL, huggingface_hub rewrites OpenAI's ``json_schema`` shape into TGI's, whether it comes as
        ``response_format`` or in ``extra_body`` (HFInferenceConversational._prepare_payload_as_dict), and
        llama-cpp-python then ignores the schema. Every other shape passes through ``chat_completion`` untouched.
        For ``json_schema`` the request is built by the client's own provider helper, as ``chat_completion`` builds
        it (URL, headers, our key), and the shape is put back before it is posted through the client: no library
        code is changed, and the reply is parsed by the same class. tests/test_dialect.py checks the bytes sent.
        """
        shape = response_format(dialect)
        model = model or target.model
        if dialect != "json_schema" or not self.url:
            extra: dict[str, Any] = {"response_format": shape} if shape is not None else {}
            return self._client.chat_completion(list[dict | ChatCompletionInputMessage](messages), model=model,
                                                temperature=target.temperature, max_tokens=target.max_tokens, **extra)
        from huggingface_hub.inference._providers import get_provider_helper

        helper = get_provider_helper("hf-inference", task="conversational", model=self.url)
        request = helper.prepare_request(
            inputs=messages, parameters={"model": model, "temperature": target.temperature,
                                         "max_tokens": target.max_tokens, "response_format": shape},
            headers=self._client.headers, model=self.url, api_key=self._client.token or NO_KEY)
        if not isinstance(request.json, dict):
            raise MalformedBody("huggingface_hub built a chat request without a JSON body")
        request.json["response_format"] = shape
        return ChatCompletionOutput.parse_obj_as_instance(self._client._inner_post(request))


# The provider the router named on the answer to the request this thread is sending (see naming_provider).
_named: ContextVar[list[str] | None] = ContextVar("named_provider", default=None)


def _note_provider(response: httpx2.Response) -> None:
    named = _named.get()
    if named is not None:
        named.append(named_provider(response.headers))


def naming_provider(call: Callable[[], Any]) -> tuple[Any, str]:
    """``call()``, and the provider the router named on its answer (x-inference-provider; "" when none).

    huggingface_hub's ``_inner_post`` reads the answer's body and drops the response, so its headers never reach us.
    Rather than post the request ourselves (copying the client's error handling and its auto-router's request
    building), a response hook on the client's shared HTTP session reads the one header as the answer arrives: sync
    hooks run in the thread that sends, and ``call`` runs in this thread, so the ContextVar says which request it
    was. Only the header's value is kept, and only when it is a provider's name (serving.named_provider).
    tests/test_serving.py checks it through the real client against the fake router."""
    install_hooks(get_session(), None, _note_provider)
    named: list[str] = []
    token = _named.set(named)
    try:
        result = call()
    finally:
        _named.reset(token)
    return result, named[-1] if named else ""


def _check_certificates() -> None:
    """The HTTP client loads the certificates that ``SSL_CERT_FILE`` or ``SSL_CERT_DIR`` name (from the process's
    environment) whatever the URL's scheme; one that is missing failed every request with "No such file or
    directory" and no name. Said before anything is sent, naming the variable."""
    for name, exists, kind in (("SSL_CERT_FILE", os.path.isfile, "file"), ("SSL_CERT_DIR", os.path.isdir,
                                                                          "directory")):
        value = os.environ.get(name)
        if value:
            if not exists(value):
                raise InputError(name, None, f"names {value!r}, which is not a {kind}: the HTTP client reads its "
                                 "TLS certificates there", hint=f"Point {name} at a CA bundle, or unset it.")
            return  # the first one set is the one the client reads


def refuse_offline(backend: Backend, pending: Callable[[], int]) -> None:
    """huggingface_hub's offline mode (``HF_HUB_OFFLINE``, or ``TRANSFORMERS_OFFLINE``) refuses every request its
    client makes, to a server on localhost too: said once, before anything is sent, instead of as a connection
    that fails on every retry. Reviews already cached need no request, so a run that sends nothing goes ahead."""
    from huggingface_hub import constants

    if not (isinstance(backend, ChatBackend) and constants.is_offline_mode()) or not (count := pending()):
        return
    variable = "HF_HUB_OFFLINE" if os.environ.get("HF_HUB_OFFLINE") else "TRANSFORMERS_OFFLINE"
    raise InputError(f"environment variable {variable}", None,
                     f"huggingface_hub's offline mode is on: it refuses every request, to a server on localhost too, "
                     f"so {plural(count, 'review')} not cached cannot be asked of {backend.describe()}; nothing was "
                     "sent", hint=f"Unset {variable} (or set it to 0), or draft with the embedded model "
                     "(VERDICTS_BACKEND=local), which needs no network.")


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
    if choice != "local":
        _check_certificates()
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
