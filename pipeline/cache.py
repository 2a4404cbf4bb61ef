"""The response cache: valid replies only, keyed on everything that can change a reply and nothing else."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import diskcache

from .review import REPLY_FORMAT_VERSION, Message, Target


def review_key(target: Target, messages: list[Message]) -> str:
    """Everything about the target (backend, model, provider, sampling settings), the rendered messages and the
    reply-format version.

    Not the endpoint's URL, the timeout or the concurrency: they do not change what the model says, and a tool's
    reviews must be shared by every comparison that contains it.
    """
    material = {"format": REPLY_FORMAT_VERSION, **target.settings(), "messages": messages}
    blob = json.dumps(material, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


class ReviewCache:
    def __init__(self, directory: Path) -> None:
        self._cache = diskcache.Cache(str(directory / "responses"))

    def get(self, key: str) -> dict[str, Any] | None:
        value = self._cache.get(key)
        return value if isinstance(value, dict) else None

    def set(self, key: str, value: dict[str, Any]) -> None:
        self._cache.set(key, value)

    def delete(self, key: str) -> bool:
        """Drop an entry; True when there was one."""
        return bool(self._cache.delete(key))

    def close(self) -> None:
        self._cache.close()
