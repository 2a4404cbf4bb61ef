"""The staleness rule's answers, remembered between runs on this machine, so that a catalogue of 10,000 unchanged
drafts is checked without reading 10,000 drafts and sidecars again.

``stale.check`` is the one rule. Its answer for a draft is kept under a key that covers every input the rule
reads (``stale.Key``): what the draft and its sidecar hold, the fact sheets, personas, templates and settings, the
cache keys it plans, the votes, the approved texts other drafts lend, and the pipeline's own code. A run whose key
for a draft is the one remembered takes the remembered answer; any other runs the rule. So the remembered answer
is the one the rule would give: nothing here decides whether a draft is stale.

What the two files hold is known without reading them when neither changed since it was remembered: each file is
identified by its stat identity (size, inode, modification and change times; a file written in any way has a new
change time, which no tool can set back). A file changed in the last few seconds is not identified that way (its
change time may not have moved yet on a coarse clock), like git's index does: it is read, and its answer still
comes from the memo when its bytes are the same. Kept under the cache directory (``stale-digests.json``).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

from .errors import parse_json
from .provenance import DraftFile, sidecar_path
from .write import write_atomic

NAME = "stale-digests.json"
VERSION = 4  # bump whenever what an entry holds changes
SETTLED = 2_000_000_000  # nanoseconds: a file untouched this long before it was looked at may be identified by stat


def _stamp(path: Path) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns]


class Digests:
    """Per draft: the two files' stamps, what they hold (``DraftFile.identity``), whether the draft is the page as
    generated, what the rule planned from its sidecar (``plan``), and the rule's key and answer."""

    def __init__(self, cache_dir: Path) -> None:
        self.path = cache_dir / NAME
        self._known: dict[str, Any] = {}
        self._stamps: dict[Path, list[list[int] | None]] = {}
        self._changed: dict[str, dict[str, Any]] = {}
        self._now = time.time_ns()
        try:
            data = parse_json(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if isinstance(data, dict) and data.get("version") == VERSION and isinstance(data.get("drafts"), dict):
            self._known = data["drafts"]

    def attach(self, drafts: list[DraftFile]) -> None:
        """Look at each draft's two files (their stamps), before anything reads them."""
        for draft in drafts:
            self._stamps[draft.path] = [_stamp(draft.path), _stamp(sidecar_path(draft.path))]

    def identity(self, draft: DraftFile) -> str:
        """What the draft and its sidecar hold: remembered when neither file changed, else read."""
        entry = self._known.get(str(draft.path))
        stamps = self._stamps.get(draft.path)
        if isinstance(entry, dict) and stamps and stamps[0] is not None and entry.get("stamps") == stamps:
            return str(entry.get("identity"))
        return draft.identity

    def entry(self, draft: DraftFile) -> dict[str, Any] | None:
        """What was remembered of the draft as it is now (its files hold the same bytes), or None."""
        entry = self._known.get(str(draft.path))
        if not isinstance(entry, dict) or entry.get("identity") != self.identity(draft):
            return None
        return entry

    def as_generated(self, draft: DraftFile) -> bool:
        entry = self.entry(draft)
        return bool(entry["as_generated"]) if entry is not None else draft.as_generated

    def remember(self, draft: DraftFile, plan: Any, key: str, answer: dict[str, Any]) -> None:
        """The rule's answer for the draft as read in this run, under ``key``."""
        self._keep(draft, {"identity": draft.identity, "as_generated": draft.as_generated, "plan": plan, "key": key,
                           "answer": answer})

    def confirm(self, draft: DraftFile, entry: dict[str, Any]) -> None:
        """A remembered answer taken again: its files may be identified by their stamps from now on."""
        self._keep(draft, {name: value for name, value in entry.items() if name != "stamps"})

    def _keep(self, draft: DraftFile, entry: dict[str, Any]) -> None:
        stamps = self._stamps.get(draft.path)
        settled = bool(stamps) and all(s is not None and max(s[2], s[3]) < self._now - SETTLED for s in stamps or [])
        self._changed[str(draft.path)] = {"stamps": stamps if settled else None, **entry}

    def save(self) -> None:
        """Write what this run learned (best effort: a cache directory we cannot write is no error)."""
        changed = {name: entry for name, entry in self._changed.items() if self._known.get(name) != entry}
        if not changed:
            return
        with contextlib.suppress(OSError):
            write_atomic(self.path, json.dumps({"version": VERSION, "drafts": {**self._known, **changed}},
                                               ensure_ascii=False, separators=(",", ":")))
