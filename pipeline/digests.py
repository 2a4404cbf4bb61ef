"""The staleness rule's answers, remembered between runs on this machine, so that a catalogue of 10,000 unchanged
drafts is checked without reading 10,000 drafts and sidecars again.

``stale.check`` is the one rule. Its answer for a draft is kept under a key that covers every input the rule
reads (``Key``): what the draft and its sidecar hold, the fact sheets, personas, templates and settings, the
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
import hashlib
import json
import os
import sys
import time
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import jinja2
import pydantic

from .errors import InputError, parse_json
from .library import Library
from .project import Project
from .provenance import DraftFile, Record, fingerprint, recorded_environment, sidecar_path, votes_file
from .review import is_card, section_id
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


def plan_of(record: Record | None) -> dict[str, Any] | None:
    """What the rule plans from a sidecar: the two tools, and the environment each quote was generated in."""
    if record is None:
        return None
    environments: list[dict[str, Any]] = []
    quotes = {}
    for name, section in record.sections.items():
        if not is_card(name):
            environment = recorded_environment(section)
            if environment not in environments:  # a handful at most: one per backend or server used
                environments.append(environment)
            quotes[name] = environments.index(environment)
    return {"tools": list(record.tools), "environments": environments, "quotes": quotes}


@cache
def code_version() -> str:
    """The pipeline's own code and the libraries that lay a page out: a change there may change any answer."""
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256(f"{sys.version}\0{jinja2.__version__}\0{pydantic.VERSION}".encode())
    for path in sorted(package.rglob("*.py")):
        digest.update(f"\0{path.relative_to(package)}\0".encode() + path.read_bytes())
    return digest.hexdigest()


class Key:
    """The key a rule's answer is remembered under: every input ``check`` reads for a draft. The parts shared by
    many drafts (the code, the personas, the templates, a tool's fact sheet, the reviews planned for a tool) are
    worked out once per run."""

    def __init__(self, project: Project, library: Library) -> None:
        self.project, self.library = project, library
        self._sheets: dict[str, str] = {}
        self._quotes: dict[tuple[int, str], dict[str, tuple[str, str]]] = {}
        self._names = project.output_names  # a votes file that is not there needs no look

    @cached_property
    def _everything(self) -> str:
        """What every draft's answer depends on: the code, the settings, the personas and every template file."""
        project = self.project
        prompts = project.root / "prompts"
        templates = {str(path.relative_to(prompts)): hashlib.sha256(path.read_bytes()).hexdigest()
                     for path in sorted(prompts.rglob("*")) if path.is_file()} if prompts.is_dir() else {}
        return fingerprint([code_version(), project.repository_settings.model_dump(mode="json"), project.options,
                            project.backend, [(p.lens, fingerprint(p.model_dump())) for p in project.personas],
                            templates])

    def _sheet(self, slug: str) -> str:
        if slug not in self._sheets:
            project = self.project
            self._sheets[slug] = fingerprint(project.tool(slug).model_dump()) \
                if project.tool_path(slug).is_file() else "gone"
        return self._sheets[slug]

    def _planned(self, variant: Project, slug: str) -> dict[str, tuple[str, str]]:
        """The cache key of each lens's review of ``slug`` planned as recorded, and its model settings."""
        memo = (id(variant), slug)  # variants live as long as the project, so an id is never reused
        if memo not in self._quotes:
            found = {}
            for persona in self.project.personas:
                job = variant.job(persona.lens, slug)
                found[job.section] = (job.key, fingerprint(job.target.settings()))
            self._quotes[memo] = found
        return self._quotes[memo]

    def of(self, identity: str, plan: Any) -> str | None:
        """The key for a draft whose files hold ``identity``, planned as ``plan``; None when only the rule can
        tell (a fact sheet or votes file that does not load: the rule says what is wrong)."""
        parts = [self._everything, identity]
        try:
            if plan is not None:
                slug_a, slug_b = plan["tools"]
                parts += [self._sheet(slug_a), self._sheet(slug_b)]
                if "gone" not in parts:
                    parts += self._inputs(slug_a, slug_b, plan)
        except (InputError, KeyError, IndexError, TypeError, ValueError, AttributeError):
            return None
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def _inputs(self, slug_a: str, slug_b: str, plan: dict[str, Any]) -> list[str]:
        project = self.project
        votes = votes_file(slug_a, slug_b)
        community = project.community(slug_a, slug_b) if Path(votes).name in self._names else {}
        variants = [project.as_recorded(environment) for environment in plan["environments"]]
        chosen: dict[str, int] = plan["quotes"]
        parts, keys = [json.dumps(community, sort_keys=True)], {}
        for persona in project.personas:
            for slug in (slug_a, slug_b):
                name = section_id(persona.lens, slug)
                if name not in chosen:
                    parts.append("-")
                    continue
                keys[name], settings = self._planned(variants[chosen[name]], slug)[name]
                parts.append(f"{keys[name]} {settings}")
        if self.library.edited:  # the approved texts the drafts lend to this one's reviews (an edit elsewhere: none)
            lent = [(name, texts) for name, key in sorted(keys.items()) if (texts := self.library.approvals(name, key))]
            parts += [json.dumps(lent, sort_keys=True)] if lent else []
        return parts
