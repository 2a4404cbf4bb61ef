"""Atomic writes: a reader sees the old file or the new one, never half of either; and an editor's save that lands
while we write is never overwritten.

Temporary files are named ``.<name>.<random>.verdicts-tmp`` beside their target: ``.gitignore`` ignores them, so a
process killed mid-write (``kill -9``) leaves nothing that ``git add outputs`` would commit, and the next run that
holds the project's lock removes the ones it finds (``clean_temporaries``).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from .errors import InputError

TEMPORARY = ".verdicts-tmp"
STALE_TEMPORARY = 60.0  # seconds: a temporary this old belongs to no write still under way


class Seen(NamedTuple):
    """A file as it was read: a later look that differs means someone wrote it since."""

    size: int
    mtime_ns: int
    digest: str

    @classmethod
    def read(cls, path: Path) -> tuple[Seen, bytes]:
        """The file's bytes, and how it was when they were read."""
        with path.open("rb") as handle:
            data = handle.read()
            stat = os.fstat(handle.fileno())
        return cls(stat.st_size, stat.st_mtime_ns, hashlib.sha256(data).hexdigest()), data

    @classmethod
    def now(cls, path: Path) -> Seen | None:
        try:
            return cls.read(path)[0]
        except FileNotFoundError:
            return None


class ChangedSinceRead(Exception):
    """The file changed between our read and our replace: someone saved it meanwhile."""


def writable(path: Path) -> bool:
    """Whether we may replace ``path``: the process may write it and its folder, and its owner has not made it
    read-only (root may write anything, but a file marked read-only is an editor saying no)."""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK) and bool(path.stat().st_mode & 0o200)


def can_write(path: Path, what: str) -> None:
    """Before anything is paid for: ``path`` (a file this run will create or replace) can be written, or one
    error naming it. A folder on the way that is a file, a read-only folder or file, and a directory where the file
    should be are refused; folders that do not exist yet are made by the write."""
    if path.is_dir():
        raise InputError(path, None, f"is a directory, so {what} cannot be written there",
                         hint="Move it away, or write elsewhere: nothing was sent.")
    if path.exists() and not writable(path):
        raise InputError(path, None, f"read-only: {what} could not be written", hint="Make it writable: nothing "
                         "was sent.")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise InputError(folder, None, f"is a file, not a folder, so {what} cannot be written under it",
                         hint="Move the file away: nothing was sent.")
    if not (os.access(folder, os.W_OK | os.X_OK) and folder.stat().st_mode & 0o200):
        raise InputError(folder, None, f"read-only folder: {what} could not be written in it",
                         hint="Make the folder writable: nothing was sent.")


# The editors' files, the project's settings, and the calibration corpus that `check` holds the personas to.
EDITORIAL = ("tools", "personas", "prompts", "pyproject.toml", "calibration")
DRAFT_FILES = (".md", ".provenance.json", ".votes.toml")  # under outputs/: a draft, its sidecar, its votes


def not_editorial(root: Path, path: Path, flag: str) -> Path:
    """``path`` resolved, when an output flag may write there: never over a fact sheet, a persona, a template, the
    settings, a draft or its sidecar (an HTML preview or a pull request body in their place loses an editor's
    work). One error naming the flag, before anything is sent."""
    resolved, root = path.resolve(), root.resolve()
    inside = resolved.relative_to(root).parts if resolved.is_relative_to(root) else ()
    if (inside and inside[0] in EDITORIAL) or (inside[:1] == ("outputs",) and resolved.name.endswith(DRAFT_FILES)):
        raise InputError("command line", flag, f"{path} is an editorial file ({'/'.join(inside)}); it is never "
                         "written over", hint="Write it elsewhere, e.g. under .cache/ or your temporary directory.")
    return resolved


def write_atomic(path: Path, text: str, unchanged: Seen | None = None) -> None:
    """Replace ``path`` with ``text`` at once. With ``unchanged`` (the file as it was read), the file is looked at
    again just before the replace, and ChangedSinceRead is raised, the file untouched, when it differs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMPORARY, dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file owner-only; a page is an ordinary file
        if unchanged is not None and Seen.now(path) != unchanged:
            raise ChangedSinceRead(path)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def clean_temporaries(folder: Path, older_than: float = STALE_TEMPORARY) -> list[Path]:
    """Remove temporaries a killed process left in ``folder``; the ones removed."""
    removed, now = [], time.time()
    try:
        found = list(folder.glob(f".*{TEMPORARY}"))
    except OSError:
        return []
    for path in found:
        try:
            if path.is_file() and not path.is_symlink() and now - path.stat().st_mtime > older_than:
                path.unlink()
                removed.append(path)
        except OSError:
            continue
    return removed
