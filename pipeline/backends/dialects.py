"""Structured output on OpenAI-compatible servers: which ``response_format`` shape ("dialect") a server understands.

Every server asks for the reply schema its own way, and one that does not know a shape either refuses it (an HTTP
error naming ``response_format``) or, worse, accepts it and ignores the schema:

- ``json_schema``: OpenAI's ``{"type": "json_schema", "json_schema": {"name", "schema", "strict"}}``. vLLM, Ollama,
  LM Studio, llama-server and Inference Providers take it; llama-cpp-python's server answers 500.
- ``json_object_schema``: ``{"type": "json_object", "schema": ...}``. llama-cpp-python's server, llama-server.
- ``tgi``: ``{"type": "json_object", "value": ...}``, what huggingface_hub turns OpenAI's shape into for a URL. TGI;
  llama-cpp-python takes it and ignores the schema (any JSON object comes back).
- ``none``: no ``response_format``; every server takes it, and the reply is only validated.

The dialect is chosen once per server and process: the ``structured_dialect`` setting when it names one, else from
``GET <base_url>/models``, which every one of these servers answers in milliseconds and where each signs its list
(``owned_by``) in its own way. A probe request would cost a generation, and could not tell an ignored schema from a
model that happened to follow it. It is not remembered across runs: another server may be listening on that port
tomorrow, and asking again costs one small request. A server we do not recognise gets OpenAI's shape, the standard.

When the server refuses the shape (a 4xx or 5xx whose body names response_format, json_schema, grammar ...), that is
not a transient failure to retry: the same request goes out at once with the next dialect in ``ORDER``, down to
``none``, and the rest of the run uses what worked. The run report says which dialect each server got, and why.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any, Literal, get_args

from huggingface_hub.errors import HfHubHTTPError

from ..errors import clip
from ..retry import get_within, server_said, status_of
from ..review import REPLY_SCHEMA
from ..settings import StructuredDialect

Dialect = Literal["json_schema", "json_object_schema", "tgi", "none"]
assert set(get_args(StructuredDialect)) == {"auto", *get_args(Dialect)}
SET: dict[StructuredDialect, Dialect] = {name: name for name in get_args(Dialect)}  # a setting that names a dialect
# From the most to the least expressive: a refused dialect falls back to the next one.
ORDER: tuple[Dialect, ...] = get_args(Dialect)
DETECT_TIMEOUT = 5.0  # seconds for GET /models; a server that takes longer is asked in OpenAI's shape

# /v1/models signatures: what each server writes in ``owned_by``, and the dialect that constrains its output.
OWNERS: dict[str, tuple[str, Dialect]] = {
    "me": ("llama-cpp-python", "json_object_schema"),
    "llamacpp": ("llama.cpp server", "json_object_schema"),
    "vllm": ("vLLM", "json_schema"),
    "library": ("Ollama", "json_schema"),
    "ollama": ("Ollama", "json_schema"),
    "organization_owner": ("LM Studio", "json_schema"),
}
# Words in an error body that say the server did not take our response_format (rather than failing for a reason
# that another try might not meet).
REFUSAL = re.compile(r"response.?format|json.?schema|json_object|grammar|guided|structured", re.IGNORECASE)


def response_format(dialect: Dialect) -> dict[str, Any] | None:
    """The ``response_format`` that asks for the reply schema in ``dialect``; None for ``none``."""
    if dialect == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": "review", "schema": REPLY_SCHEMA, "strict": True}}
    if dialect == "json_object_schema":
        return {"type": "json_object", "schema": REPLY_SCHEMA}
    if dialect == "tgi":
        return {"type": "json_object", "value": REPLY_SCHEMA}
    return None


def refuses_response_format(exc: BaseException) -> bool:
    """The server refused the request because of its response_format: a 4xx or 5xx that names it. Not 401-404, 408
    or 429: credentials, credits, a missing model and rate limits are never about the shape."""
    status = status_of(exc)
    if status is None or status < 400 or status in (401, 402, 403, 404, 408, 429):
        return False
    assert isinstance(exc, HfHubHTTPError)
    return bool(REFUSAL.search(server_said(exc) or ""))


def detect(base_url: str, api_key: str, timeout: float = DETECT_TIMEOUT) -> tuple[Dialect, str]:
    """The dialect ``base_url``'s server understands, and how we know, from its ``GET /models``.

    TGI names each model as its own owner; the others sign ``owned_by`` as in OWNERS. Anything else, or no answer,
    is an unknown server: OpenAI's shape, with the fallback on refusal. Only ``VERDICTS_API_KEY`` is sent (vLLM with
    ``--api-key`` asks for it), never the Hugging Face token.
    """
    try:
        response = get_within(base_url.rstrip("/") + "/models", {"authorization": f"Bearer {api_key}"}, timeout)
        models = response.json().get("data") if response.status_code == 200 else None
    except Exception:  # no answer, an error, not JSON: the question never fails a run; the chat request says why
        models = None
    if not isinstance(models, list) or not models or not isinstance(models[0], dict):
        return "json_schema", "unrecognised server (no model list): OpenAI's shape"
    first = models[0]
    owner = str(first.get("owned_by", ""))
    if owner in OWNERS:
        server, dialect = OWNERS[owner]
        return dialect, f"detected: {server}"
    if owner and owner == first.get("id"):
        return "tgi", "detected: TGI"
    return "json_schema", f"unrecognised server (owned_by {clip(owner, 40)!r}): OpenAI's shape"


class StructuredOutput:
    """The dialect one server gets in this process: set, or detected on first use; lowered when refused."""

    def __init__(self, setting: StructuredDialect, detector: Callable[[], tuple[Dialect, str]]) -> None:
        self._setting = setting
        self._detector = detector
        self._lock = threading.Lock()
        self._dialect: Dialect | None = None
        self._why = ""
        self._refused: list[str] = []

    def current(self) -> Dialect:
        """The dialect to send now. The first caller detects it; callers at the same time wait for that."""
        with self._lock:
            if self._dialect is None:
                if self._setting != "auto":
                    self._dialect, self._why = SET[self._setting], "set by structured_dialect"
                else:
                    self._dialect, self._why = self._detector()
            return self._dialect

    def refused(self, dialect: Dialect, status: int | None) -> None:
        """``dialect`` was refused: the next one in ORDER from now on (unless another request lowered it already)."""
        with self._lock:
            if self._dialect == dialect and dialect != "none":
                self._refused.append(f"{dialect} refused (HTTP {status})")
                self._dialect = ORDER[ORDER.index(dialect) + 1]

    def describe(self) -> str:
        """``json_object_schema (detected: llama-cpp-python)``; with the refusals that led there, if any."""
        with self._lock:
            if self._dialect is None:
                return ""
            notes = [self._why, *self._refused]
            return f"{self._dialect} ({'; '.join(notes)})"
