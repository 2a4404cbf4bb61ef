"""The run log: every request and reply, appended as JSON lines to ``<cache_dir>/runs.jsonl``.

``python -m pipeline log`` reads it back. Nothing secret is in a request body; every line still goes through
``redact`` on its way to disk. The log is kept bounded: a run that finds it past its size limit first cuts it back
to the newest whole runs (``trim``).
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from filelock import FileLock

from .errors import printable
from .secret import redact
from .write import write_atomic

_RUNS_IN_PROCESS = itertools.count(1)  # a second run in one process (tests, a library user) gets its own id


def log_path(cache_dir: Path) -> Path:
    return cache_dir / "runs.jsonl"


class RunLog:
    """One run's lines. ``max_mb``: past this size, the log is cut back to its newest runs before this one starts."""

    def __init__(self, cache_dir: Path, command: str, drafts: list[str], backend: str, max_mb: float) -> None:
        self.path = log_path(cache_dir)
        n = next(_RUNS_IN_PROCESS)
        self.run = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}" + (f"-{n}" if n > 1 else "")
        self._lock = threading.Lock()
        locks = cache_dir / "locks"  # beside the reviews' locks (cache.py)
        locks.mkdir(parents=True, exist_ok=True)
        # Every process appending to the log holds this lock for each line, so a trim never loses a line
        # written while it was reading.
        self._disk_lock = FileLock(locks / f"{self.path.name}.lock")
        with self._disk_lock:
            trim(self.path, int(max_mb * 1_000_000))
        self.write(type="run", command=command, drafts=drafts, backend=backend)

    def write(self, **entry: Any) -> None:
        line = redact(json.dumps({"run": self.run, "at": time.strftime("%Y-%m-%dT%H:%M:%S"), **entry},
                                 ensure_ascii=False)) + "\n"
        with self._lock, self._disk_lock, self.path.open("a", encoding="utf-8") as handle:
            handle.write(line)  # one write per line: O_APPEND keeps lines whole, even from a process without the lock


def trim(path: Path, limit: int) -> None:
    """Past ``limit`` bytes, keep only the newest whole runs that fit in half of it (at least the newest run, whatever
    its size), so the next cut is many runs away. A run goes with all its lines: ``log`` never shows one without its
    head. The caller holds the log's lock."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    if size <= limit:
        return
    lines = _tail(path, size - limit)
    if not any(entry.get("type") == "run" for _, entry in lines):  # one run longer than the limit: keep it whole
        lines = _tail(path, 0)
    sizes: dict[str, int] = {}
    for raw, entry in lines:
        sizes[entry["run"]] = sizes.get(entry["run"], 0) + len(raw)
    kept: set[str] = set()
    total = 0
    for run in reversed([entry["run"] for _, entry in lines if entry.get("type") == "run"]):
        if kept and total + sizes[run] > limit // 2:
            break
        kept.add(run)
        total += sizes[run]
    write_atomic(path, "".join(raw.decode("utf-8").rstrip("\r\n") + "\n" for raw, entry in lines
                               if entry["run"] in kept))


def _tail(path: Path, start: int) -> list[tuple[bytes, dict[str, Any]]]:
    """The log's lines from byte ``start`` on (the first may be cut there: it fails to parse and is left out)."""
    with path.open("rb") as handle:
        handle.seek(start)
        raws = handle.read().splitlines(keepends=True)
    return [(raw, entry) for raw, entry in zip(raws, map(_entry, raws), strict=True) if entry is not None]


def _entry(raw: bytes) -> dict[str, Any] | None:
    try:
        entry = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None  # a line cut short by a crash (even inside a character) is skipped, not fatal
    return entry if isinstance(entry, dict) and isinstance(entry.get("run"), str) else None


def read_runs(cache_dir: Path) -> list[dict[str, Any]]:
    path = log_path(cache_dir)
    if not path.is_file():
        return []
    return [entry for entry in map(_entry, path.read_bytes().splitlines()) if entry is not None]


def select(entries: list[dict[str, Any]], run: str = "last", draft: str | None = None,
           failures: bool = False) -> list[dict[str, Any]]:
    """Entries of one run (``last``, an id, or ``all``), of one draft's tools, or only the failed requests."""
    runs = [e for e in entries if e.get("type") == "run"]
    if draft:
        runs = [e for e in runs if isinstance(e.get("drafts"), list) and draft in e["drafts"]]
    if run == "last":
        runs = runs[-1:]
    elif run != "all":
        runs = [e for e in runs if e["run"] == run]
    chosen = {e["run"]: e for e in runs}
    picked = []
    for entry in entries:
        if entry.get("run") not in chosen:
            continue
        if entry.get("type") == "request":
            if draft and not _tool_in(str(entry.get("tool", "")), draft or ""):
                continue
            if failures and entry.get("ok"):
                continue
        elif failures and entry.get("type") == "end" and entry.get("outcome") == "ok":
            continue
        picked.append(entry)
    if failures:  # a run with nothing that failed is not worth a header
        failed_runs = {e["run"] for e in picked if e.get("type") != "run"}
        picked = [e for e in picked if e["run"] in failed_runs]
    return picked


def _tool_in(tool: str, draft: str) -> bool:
    return draft.startswith(f"{tool}-vs-") or draft.endswith(f"-vs-{tool}")


def show(entries: list[dict[str, Any]]) -> str:
    """Readable text: what the model was asked, and what it said. Control characters a reply or a server put in
    (terminal escape sequences, bidi overrides) are shown as escapes, never sent to the terminal."""
    out = []
    for e in entries:
        if e.get("type") == "run":
            drafts = e["drafts"] if isinstance(e.get("drafts"), list) else []
            out.append(f"== run {e.get('run')} ({e.get('at')}): {e.get('command')} {' '.join(map(str, drafts))} "
                       f"through {e.get('backend')}")
        elif e.get("type") == "end":
            out.append(f"== end of run {e.get('run')}: {e.get('outcome')}")
        elif e.get("type") == "request":
            state = "ok" if e.get("ok") else "FAILED"
            # Through Inference Providers, the provider the router named on the answer (unknown when it named none).
            served = f" (served by {e.get('served_by') or 'unknown'})" if e.get("backend") == "hf" else ""
            out.append(f"-- {e.get('lens')} on {e.get('tool')}, request {e.get('attempt')}, {e.get('model')}{served}: "
                       f"{state}")
            messages = e["messages"] if isinstance(e.get("messages"), list) else []
            for message in messages:
                if isinstance(message, dict):
                    out.append(f"   [{message.get('role')}] {message.get('content')}")
            if e.get("error"):
                out.append(f"   error: {e['error']}")
            if e.get("reply") is not None:
                out.append(f"   [reply] {e['reply']}")
            if isinstance(e.get("problems"), list) and e["problems"]:
                out.append("   problems: " + "; ".join(map(str, e["problems"])))
    return printable("\n".join(out))


def draft_name(given: str) -> str:
    """``outputs/a-vs-b.md``, ``a-vs-b.md`` or ``a-vs-b`` -> ``a-vs-b``, as the run log records drafts."""
    return Path(given).name.removesuffix(".md")
