"""What ``stale`` needs from each draft and sidecar, remembered between runs on this machine, so that a catalogue of
10,000 unchanged drafts is checked without parsing 10,000 sidecars again.

A digest is the sidecar's data without the texts (quotes, the page as generated), and whether the draft on disk is
that page. It is only a shortcut for reading the two files: every run still compares it with the inputs as they
are now, so the answer is the one the files give. It is kept under the cache directory (``stale-digests.json``),
keyed by each file's path and its stat identity (size, inode, modification and change times): a file written
in any way has a new change time, which no tool can set back. A file changed in the last few seconds is not
remembered (its change time may not have moved yet on a coarse clock), like git's index does.
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
VERSION = 3  # bump whenever what a digest holds, or how it is hashed (provenance._digest), changes
SETTLED = 2_000_000_000  # nanoseconds: a file untouched this long before it was looked at may be remembered


def _stamp(path: Path) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns]


class Digests:
    def __init__(self, cache_dir: Path) -> None:
        self.path = cache_dir / NAME
        self._known: dict[str, Any] = {}
        self._drafts: list[tuple[DraftFile, list[list[int] | None]]] = []
        self._now = time.time_ns()
        try:
            data = parse_json(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if isinstance(data, dict) and data.get("version") == VERSION and isinstance(data.get("drafts"), dict):
            self._known = data["drafts"]

    def attach(self, drafts: list[DraftFile]) -> None:
        """Give each draft its remembered digest, if both its files are as they were then."""
        for draft in drafts:
            stamps = [_stamp(draft.path), _stamp(sidecar_path(draft.path))]
            if stamps[0] is None or stamps[1] is None:
                continue
            self._drafts.append((draft, stamps))
            entry = self._known.get(str(draft.path))
            if isinstance(entry, dict) and entry.get("stamps") == stamps and isinstance(entry.get("digest"), dict):
                draft.digest = entry["digest"]

    def save(self) -> None:
        """Remember the digests worked out in this run (best effort: a cache directory we cannot write is no
        error)."""
        drafts, changed = dict(self._known), False
        for draft, stamps in self._drafts:
            digest, name = draft.digest, str(draft.path)
            settled = all(s is not None and max(s[2], s[3]) < self._now - SETTLED for s in stamps)
            entry = {"stamps": stamps, "digest": digest} if digest is not None and settled else None
            if drafts.get(name) != entry:
                changed = True
                if entry is None:
                    drafts.pop(name, None)
                else:
                    drafts[name] = entry
        if changed:
            with contextlib.suppress(OSError):
                write_atomic(self.path, json.dumps({"version": VERSION, "drafts": drafts}, ensure_ascii=False,
                                                   separators=(",", ":")))
