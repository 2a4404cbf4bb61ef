"""The embedded backend: a GGUF model run in-process by llama.cpp (llama-cpp-python), loaded once per process.

Replies are constrained to the reply schema by llama.cpp's JSON-schema grammar, then validated like any other.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import BackendError
from ..review import REPLY_SCHEMA, Completion, Message, Target
from ..settings import Settings

HOW_TO_GET_A_MODEL = (
    "Point VERDICTS_LOCAL_MODEL at a .gguf file, or fetch the default once while online with "
    "`hf download {repo} {file}`; or pick another backend: VERDICTS_BASE_URL (Ollama, llama.cpp server) "
    "or HF_TOKEN (Inference Providers)."
)


def split_hub_reference(reference: str) -> tuple[str, str] | None:
    """``org/repo/file.gguf`` -> (``org/repo``, ``file.gguf``); None when it is not a Hub reference."""
    parts = reference.split("/")
    if len(parts) < 3 or not reference.endswith(".gguf") or reference.startswith(("/", ".", "~")):
        return None
    return "/".join(parts[:2]), "/".join(parts[2:])


def hub_reachable(timeout: float = 3.0) -> bool:
    """One quick connection attempt, because huggingface_hub retries an unreachable Hub for half a minute."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    url = urlsplit(constants.ENDPOINT)
    try:
        with socket.create_connection((url.hostname or "", url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def resolve_model(reference: str) -> Path:
    """A local path, or a Hub reference fetched once through huggingface_hub's cache and reused offline."""
    path = Path(reference).expanduser()
    if path.is_file():
        return path
    hub = split_hub_reference(reference)
    if hub is None:
        raise BackendError(f"VERDICTS_LOCAL_MODEL: no model file at {reference}",
                           hint="Give the path of a .gguf file, or a Hub reference <org>/<repo>/<file>.gguf.")
    repo, filename = hub
    hint = HOW_TO_GET_A_MODEL.format(repo=repo, file=filename)
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(repo, filename, local_files_only=True))
    except Exception:  # not in the download cache: try the Hub once, briefly
        pass
    if not hub_reachable():
        raise BackendError(f"local model {reference} is not downloaded, and the Hugging Face Hub cannot be "
                           "reached to fetch it", hint=hint)
    try:
        return Path(hf_hub_download(repo, filename, etag_timeout=5))
    except Exception as exc:
        raise BackendError(f"local model {reference} is not downloaded and could not be fetched "
                           f"({type(exc).__name__})", hint=hint) from None


class LocalBackend:
    name = "local"
    concurrency = 1  # reviews run one after another: parallel decoding on a laptop's cores only thrashes

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.path = resolve_model(settings.local_model)
        self._llama: Any = None
        self._lock = threading.Lock()

    def describe(self) -> str:
        return f"the local model {self.path.name}"

    def _load(self) -> Any:
        if self._llama is None:
            try:
                from llama_cpp import Llama
            except ImportError:
                raise BackendError("llama-cpp-python is not installed",
                                   hint="Run `make install` (it compiles llama.cpp once, about 5 minutes).") from None
            try:
                self._llama = Llama(model_path=str(self.path), n_ctx=self.settings.local_context,
                                    n_threads=self.settings.local_threads or os.cpu_count(), verbose=False,
                                    seed=0)
            except (ValueError, RuntimeError) as exc:
                raise BackendError(f"could not load the local model {self.path}: {exc}") from None
        return self._llama

    def complete(self, target: Target, messages: list[Message]) -> Completion:
        with self._lock:
            llama = self._load()
            extra: dict[str, Any] = {}
            if target.structured:
                extra["response_format"] = {"type": "json_object", "schema": REPLY_SCHEMA}
            output = llama.create_chat_completion(messages=messages, temperature=target.temperature,
                                                  max_tokens=target.max_tokens, **extra)
        choice = output["choices"][0]
        usage = output.get("usage") or {}
        return Completion(text=choice["message"].get("content"), finish_reason=choice.get("finish_reason"),
                          prompt_tokens=int(usage.get("prompt_tokens", 0)),
                          completion_tokens=int(usage.get("completion_tokens", 0)))
