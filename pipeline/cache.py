"""The response cache: valid replies only, keyed on everything that can change a reply and nothing else.

Values are stored as JSON text and read back only as JSON text: whoever can write the cache directory can change
what a draft says, but not run code in the process that holds the tokens.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import diskcache
from diskcache.core import MODE_RAW, MODE_TEXT
from filelock import FileLock

from .errors import CacheUnwritable, InputError, VerdictsError
from .review import REPLY_FORMAT_VERSION, Message, Review, Target

# The previous version kept its entries under ``responses/`` in a format that could carry code: that directory is
# never opened, so an old cache reads as empty.
RESPONSES = "responses-v2"


def review_key(target: Target, messages: list[Message]) -> str:
    """Everything about the target (backend, model, provider, sampling settings), the rendered messages and the
    reply-format version.

    Not the endpoint's URL, the timeout or the concurrency: they do not change what the model says, and a tool's
    reviews must be shared by every comparison that contains it.
    """
    material = {"format": REPLY_FORMAT_VERSION, **target.settings(), "messages": messages}
    blob = json.dumps(material, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


class NotData(OSError):
    """An entry that is not text: the cache treats it as missing (diskcache reads an OSError as a miss)."""


class TextOnlyDisk(diskcache.Disk):
    """diskcache's storage, restricted to text keys and text values; anything else in the database is refused."""

    def put(self, key: Any) -> tuple[Any, bool]:
        if not isinstance(key, str):
            raise TypeError("cache keys are text")
        return super().put(key)

    def get(self, key: Any, raw: bool) -> Any:
        if not raw:
            raise NotData("a cache key that is not text")
        return super().get(key, raw)

    def store(self, value: Any, read: bool, key: Any = diskcache.core.UNKNOWN) -> Any:
        if not isinstance(value, str) or read:
            raise TypeError("cache values are JSON text")
        return super().store(value, read, key)

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
        if read or mode not in (MODE_RAW, MODE_TEXT) or (mode == MODE_RAW and not isinstance(value, str)):
            raise NotData("a cache value that is not text")
        return super().fetch(mode, filename, value, read)


# SQLite's primary result codes that say the file itself is not a sound database: only then is the cache damaged.
# A full disk, a file size limit, a directory we may not write or a read-only file system come back as other codes
# (SQLITE_FULL, SQLITE_IOERR_*, SQLITE_READONLY, SQLITE_CANTOPEN ...), and leave the replies cached there intact.
DAMAGED = frozenset({11, 26})  # SQLITE_CORRUPT, SQLITE_NOTADB
PROBE = 1 << 20  # bytes written once beside the database, to ask the disk itself why it cannot be written
# errno -> what it means for the cache, and what to do
DISK_FULL = "Free some space on that disk"
NO_WRITE = "Make it writable by this user"
DISK_TROUBLE = {errno.ENOSPC: ("the disk it is on is full", DISK_FULL),
                errno.EDQUOT: ("the disk quota is used up", DISK_FULL),
                errno.EFBIG: ("a file there may not grow (a file size limit, ulimit -f)", "Raise the file size limit"),
                errno.EACCES: ("this user may not write there", NO_WRITE),
                errno.EPERM: ("this user may not write there", NO_WRITE),
                errno.EROFS: ("it is on a read-only file system", "Mount that file system read-write")}


def _damaged(directory: Path, exc: sqlite3.Error) -> InputError:
    return InputError(directory, None, f"the response cache is damaged and cannot be read ({exc})",
                      hint=f"Delete {directory} (the replies cached there will be asked for again), or move it aside "
                      "to look at it, then run the command again.")


def _probe(directory: Path) -> OSError | None:
    """What the disk says when PROBE bytes are written beside the database: the error, or None if it takes them."""
    try:
        with tempfile.TemporaryFile(dir=directory if directory.is_dir() else directory.parent) as handle:
            handle.write(b"\0" * PROBE)
            handle.flush()
    except OSError as exc:
        return exc
    return None


def _unusable(directory: Path, exc: sqlite3.Error | OSError) -> VerdictsError:
    """The error for a cache that cannot be opened, read or written: damaged only when SQLite says the database is
    not sound; a full disk, a size limit, no permission or a read-only file system are said as such, and the
    replies cached there are never to be deleted for them."""
    if isinstance(exc, sqlite3.Error) and (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF in DAMAGED:
        return _damaged(directory, exc)
    found = exc if isinstance(exc, OSError) and exc.errno else _probe(directory)
    kept = "this is not damage, and the replies cached there are kept"
    if found is not None and found.errno in DISK_TROUBLE:
        meaning, remedy = DISK_TROUBLE[found.errno]
        return CacheUnwritable(f"{directory}: the response cache cannot be written: {meaning} "
                               f"({os.strerror(found.errno)}); {kept}",
                               hint=f"{remedy}, then run the command again: the replies cached there are reused. "
                               "Or point VERDICTS_CACHE_DIR (cache_dir) at another directory, which starts empty.")
    said = os.strerror(found.errno) if found is not None and found.errno else str(exc)
    return CacheUnwritable(f"{directory}: the response cache could not be read or written ({said}); {kept}",
                           hint="Check the disk it is on (space, permissions, errors in the system log), then run "
                           "the command again: the replies cached there are reused.")


class ReviewCache:
    """Replies by key, as JSON objects; a damaged database is one error naming the directory to delete, a disk that
    cannot be written (full, read-only, not ours) one that says so and deletes nothing.

    ``lock(key)`` is held across processes while a key's request is in flight, so that two drafts that need the
    same review send it once: the second waits, then reads the first one's reply from the cache.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory / RESPONSES
        self._locks = directory / "locks"
        try:
            self._cache = diskcache.Cache(str(self.directory), disk=TextOnlyDisk)
        except (sqlite3.Error, OSError) as exc:
            raise _unusable(self.directory, exc) from None

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            text = self._cache.get(key)
        except sqlite3.Error as exc:
            raise _unusable(self.directory, exc) from None
        if not isinstance(text, str):
            return None
        try:
            value = json.loads(text)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def set(self, key: str, value: dict[str, Any]) -> None:
        try:
            self._cache.set(key, json.dumps(value, ensure_ascii=False))
        except (sqlite3.Error, OSError) as exc:
            raise _unusable(self.directory, exc) from None

    def keep(self, key: str, review: Review) -> None:
        """A valid review under its key, as ``generate.cached_review`` reads it back: who wrote it and who served
        it, and whether an editor accepted it as it is."""
        entry: dict[str, Any] = {"verdict": review.verdict, "quote": review.quote, "model": review.model,
                                 "provider": review.provider, "fallback": review.fallback,
                                 "served_by": review.served_by}
        if review.accepted:
            entry["accepted"] = True
        self.set(key, entry)

    def delete(self, key: str) -> bool:
        """Drop an entry; True when there was one."""
        try:
            return bool(self._cache.delete(key))
        except (sqlite3.Error, OSError) as exc:
            raise _unusable(self.directory, exc) from None

    @contextmanager
    def lock(self, key: str, poll: float = 0.1, stop: Any = None) -> Iterator[bool]:
        """Hold ``key``'s lock, shared by every process on this cache directory. Waits until it is free, or until
        ``stop`` (a threading.Event) is set: then yields False without the lock. The operating system releases the
        lock of a process that dies."""
        self._locks.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self._locks / f"{key}.lock"))
        while True:
            try:
                lock.acquire(timeout=poll)
                break
            except TimeoutError:
                if stop is not None and stop.is_set():
                    yield False
                    return
        try:
            yield True
        finally:
            lock.release()

    def close(self) -> None:
        self._cache.close()
