"""A cap on how much of a server's answer is read.

huggingface_hub reads a whole answer into memory before it parses it, and the timeout only ends the wait for it:
a server that streams a body without end (about 100 MB a second on a local network) would fill memory until then,
and the abandoned read would go on filling it after. Under ``capped``, reading stops once the answer, as decoded,
passes the cap. A chat reply is a few KB (``max_tokens`` is at most 8,192 tokens, about 32 KB of text), so
MAX_REPLY leaves room for any real one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import TypeVar

import httpx2

from .settings import public_url

T = TypeVar("T")
Hook = Callable[..., None]
MAX_REPLY = 512 * 1024  # bytes of a chat-completions answer
MAX_LIST = 16 * 1024 * 1024  # bytes of a model list: the router's lists every model with its providers

_limit: ContextVar[int | None] = ContextVar("answer_limit", default=None)
_install_lock = threading.Lock()


class AnswerTooLarge(ValueError):
    """The answer went on past the cap: not a reply, and not read further."""

    def __init__(self, url: str, limit: int) -> None:
        super().__init__(f"the answer from {url} went on past {limit // 1024:,} KB, far longer than any reply: "
                         "stopped reading there")
        self.url, self.limit = url, limit


class _Capped(httpx2.SyncByteStream):
    """A response's body, decoded (gzip from a server that compresses anyway), that raises AnswerTooLarge past
    ``limit`` bytes. The response it replaces then gets the body as is, so it decodes nothing twice."""

    def __init__(self, response: httpx2.Response, raw: httpx2.SyncByteStream, limit: int) -> None:
        self._raw = raw
        self._decoded = httpx2.Response(response.status_code, headers=response.headers, stream=response.stream)
        self._url = public_url(str(response.request.url))
        self._limit = limit

    def __iter__(self) -> Iterator[bytes]:
        size = 0
        for piece in self._decoded.iter_bytes():  # httpx2 decodes in pieces of at most 1 MiB
            size += len(piece)
            if size > self._limit:
                raise AnswerTooLarge(self._url, self._limit)
            yield piece

    def close(self) -> None:
        self._raw.close()


def _ask_plain(request: httpx2.Request) -> None:
    if _limit.get() is not None:  # nothing to gain from compressing a few KB, and the cap is on what is read
        request.headers["Accept-Encoding"] = "identity"


def _cap(response: httpx2.Response) -> None:
    limit, raw = _limit.get(), response.stream
    if limit is None or not isinstance(raw, httpx2.SyncByteStream):
        return
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:  # said up front: not a byte of it is read
        raise AnswerTooLarge(public_url(str(response.request.url)), limit)
    response.stream = _Capped(response, raw, limit)
    for name in ("content-encoding", "content-length"):  # the body is now the decoded one
        response.headers.pop(name, None)


def install_hooks(client: httpx2.Client, on_request: Hook | None, on_response: Hook) -> None:
    """Add event hooks to huggingface_hub's shared HTTP client, once. Every module that hooks it comes here, so two
    installing at once cannot drop each other's; each call checks again, since the client may have been rebuilt
    (``set_client_factory``). Hooks run in the thread that sends the request: a ContextVar says whose it is."""
    with _install_lock:
        hooks = client.event_hooks
        if on_response not in hooks["response"]:
            client.event_hooks = {"request": [*hooks["request"], *([on_request] if on_request else [])],
                                  "response": [*hooks["response"], on_response]}


def capped(call: Callable[[], T], limit: int) -> T:
    """``call()``, whose requests on huggingface_hub's shared HTTP client read at most ``limit`` bytes of each
    answer (AnswerTooLarge past it). Only requests made in this thread while it runs are capped: a model
    download on the same client is not."""
    from huggingface_hub.utils import get_session  # only once a request is made, not on every command's start

    install_hooks(get_session(), _ask_plain, _cap)
    token = _limit.set(limit)
    try:
        return call()
    finally:
        _limit.reset(token)
