"""The project on disk and the one planner: where its files are, and which reviews a set of tools needs.

``draft``, ``prompts``, ``stale`` and ``refresh`` all plan through ``Project.job``, so the cache key that
``stale`` compares is made by the same code that made it at draft time.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any

from filelock import FileLock

from .assemble import vote_shares
from .cache import review_key
from .errors import InputError, clip
from .load import FactSheet, Persona, load_personas, load_tool, name_max, read_toml
from .provenance import DraftFile, Inputs, Record, votes_file
from .render import review_messages
from .review import Job, Target, section_id
from .settings import Settings, choose_backend, environment_choices, load_settings, server_of
from .write import clean_temporaries


def targets_for(backend: str, settings: Settings, persona: Persona) -> tuple[Target, ...]:
    """The lens's target, then its fallbacks in order, without repeats. The local backend has one model only."""
    temperature = settings.temperature if persona.temperature is None else persona.temperature
    server = server_of(settings, backend)
    if backend == "local":
        # The file name, whether local_model is a path or <org>/<repo>/<file>.gguf: the same file either way.
        model = PurePosixPath(settings.local_model).name
        return (Target("local", model, "", temperature, settings.max_tokens, settings.structured, server),)
    provider = "" if backend == "endpoint" else (persona.provider or settings.provider)
    first = Target(backend, persona.model or settings.model, provider, temperature, settings.max_tokens,
                   settings.structured, server)
    chain = [first]
    for fallback in persona.fallbacks:
        provider = "" if backend == "endpoint" else (fallback.provider or first.provider)
        target = Target(backend, fallback.model or first.model, provider, temperature, settings.max_tokens,
                        settings.structured, server)
        if target not in chain:
            chain.append(target)
    return tuple(chain)


def shown(path: Path, root: Path) -> str:
    """A path as the editor would type it: relative to the project when it is inside it."""
    # What Path.relative_to says, by string (stale names 10,000 drafts): both are the same parts joined by "/".
    text, prefix = str(path), str(root).rstrip("/") + "/"
    return text[len(prefix):] if text.startswith(prefix) else str(path.relative_to(root)) if path == root else text


CACHE_DIR = "{cache_dir}"  # how a page and its sidecar name the cache directory when it is outside the project


def kept_name(path: Path, root: Path, cache_dir: Path) -> str:
    """A kept reply as a page and its sidecar name it (both are committed): relative to the project when the cache
    is inside it, else relative to the cache directory (``{cache_dir}/failed/<tool>--<lens>.json``), never by the
    machine's absolute path."""
    name = shown(path, root)
    if not Path(name).is_absolute():
        return name
    return f"{CACHE_DIR}/{path.relative_to(cache_dir).as_posix()}" if path.is_relative_to(cache_dir) else path.name


def kept_path(name: str, root: Path, cache_dir: Path) -> Path:
    """Where a kept reply named by ``kept_name`` is (a sidecar written before it may hold an absolute path)."""
    return cache_dir / name.removeprefix(f"{CACHE_DIR}/") if name.startswith(f"{CACHE_DIR}/") else root / name


def canonical(draft: Path) -> Path:
    """One name per draft, however it was given (``./outputs/x.md``, an absolute path): its folder resolved, its own
    name kept. A draft that is a symbolic link stays the link: its sidecar is beside the link, where the project
    keeps it, while its text is read and written where the link leads."""
    return draft.parent.resolve() / draft.name


def _memo(environment: dict[str, Any]) -> object:
    """What tells one recorded environment from another, cheaply (stale asks once per draft): its items with their
    types (1 and 1.0 may plan differently); JSON for one whose values cannot be hashed."""
    try:
        memo = tuple(sorted((name, type(value), value) for name, value in environment.items()))
        hash(memo)
        return memo
    except TypeError:
        return json.dumps(environment, sort_keys=True, default=str)


class Project:
    """The project's layout and current inputs, each loaded once however many drafts are planned or checked.

    ``environment``: what the environment and command line chose beyond ``pyproject.toml`` (the backend, the
    server, overridden model settings), recorded with every review so that ``stale`` can plan as the draft was
    planned, whatever the shell it runs in.
    """

    def __init__(self, root: Path, settings: Settings, env: Mapping[str, str] | None = None,
                 options: dict[str, Any] | None = None) -> None:
        self.root = root
        self.settings = settings
        self.backend = choose_backend(settings, env)
        self.repository_settings = load_settings(root, env={})  # pyproject.toml and defaults, nothing else
        self.environment = environment_choices(self.repository_settings, settings, self.backend)
        self.options = options or {}  # command-line choices that override a recorded environment
        self._tools: dict[str, FactSheet] = {}
        self._jobs: dict[str, Job] = {}
        self._variants: dict[object, Project] = {}
        self._drafts: dict[Path, DraftFile] = {}

    def as_recorded(self, environment: dict[str, Any]) -> Project:
        """This project planned as a review was: the repository's settings as they are now, with the environment
        the review recorded (and this command's options) on top. The current shell's environment plays no part.

        The variant shares the loaded fact sheets, personas and fingerprints; it has its own jobs.
        """
        environment = {**environment, **self.options}
        memo = _memo(environment)
        if memo not in self._variants:
            self.inputs  # noqa: B018 (loaded once here, so every variant shares the personas and fingerprints)
            variant = copy.copy(self)
            variant.settings = self.repository_settings.model_copy(update=environment)
            variant.backend = environment.get("backend", self.backend)
            variant.environment = dict(environment)
            variant._jobs, variant._variants, variant._drafts = {}, {}, self._drafts
            self._variants[memo] = variant
        return self._variants[memo]

    @cached_property
    def personas(self) -> list[Persona]:
        """Every persona, in panel order."""
        return load_personas(self.root)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Only one process at a time refreshes, pins or writes a draft of this project: a second refresh waits,
        then finds nothing stale instead of paying again and taking the first one's text for hand edits."""
        path = self.root / ".cache" / "verdicts.lock"  # .cache/ is git-ignored; the lock is the project's
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(path):
            clean_temporaries(self.outputs)  # what a killed write left: no write of ours is under way there now
            yield

    @cached_property
    def inputs(self) -> Inputs:
        """Fingerprints of the current inputs, for provenance records and staleness."""
        return Inputs(self.root, self.personas)

    @property
    def outputs(self) -> Path:
        return self.root / "outputs"

    def tool_path(self, slug: str) -> Path:
        return self.root / "tools" / f"{slug}.toml"

    def draft_path(self, slug_a: str, slug_b: str) -> Path:
        return self.outputs / f"{slug_a}-vs-{slug_b}.md"

    def votes_path(self, slug_a: str, slug_b: str) -> Path:
        """Community votes for a comparison, written by whatever exports the poll: ``<slug> = <count>``."""
        return self.root / votes_file(slug_a, slug_b)

    def community(self, slug_a: str, slug_b: str) -> dict[str, str]:
        """Each tool's share of the comparison's community votes; empty when there is no vote yet."""
        path = self.votes_path(slug_a, slug_b)
        if not path.is_file():
            return {}
        counts = {slug_a: 0, slug_b: 0}
        for key, value in read_toml(path).items():
            if key not in counts:
                raise InputError(path, key, f"unknown key; the votes file takes {slug_a} and {slug_b}")
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InputError(path, key, "must be a whole number of votes, 0 or more")
            counts[key] = value
        return vote_shares(counts)

    def all_drafts(self) -> list[Path]:
        """Every ``outputs/*-vs-*.md``, in name order (what sorted(glob) gave, at a fraction of its cost)."""
        outputs = self.outputs
        return [outputs / name for name in sorted(fnmatch.filter(self.output_names, "*-vs-*.md"))]

    @property
    def output_names(self) -> set[str]:
        """The names of the files in outputs/ (listed afresh at each call)."""
        try:
            with os.scandir(self.outputs) as entries:
                return {entry.name for entry in entries}
        except (FileNotFoundError, NotADirectoryError):
            return set()

    @cached_property
    def recorded(self) -> list[tuple[Path, Record]]:
        """Every draft under outputs/ with its sidecar, read once for everything that borrows from the drafts
        (reviews to reuse, approved texts). A draft without a sidecar, or with a damaged one, lends nothing:
        ``stale`` and ``refresh`` are the ones to report it."""
        found = []
        for path in self.all_drafts():
            try:
                record = self.draft_file(path).record
            except InputError:
                continue
            if record is not None:
                found.append((path, record))
        return found

    def draft_file(self, path: Path) -> DraftFile:
        """A draft and its sidecar, read from disk once in this command."""
        if path not in self._drafts:
            self._drafts[path] = DraftFile(path)
        return self._drafts[path]

    def find_draft(self, given: str) -> Path:
        """A draft named on the command line: a path relative to the project root (never to the current
        directory, which may hold another checkout), an absolute path, or ``<a>-vs-<b>``."""
        name = given if given.endswith(".md") else given + ".md"
        for candidate in (self.root / name, self.outputs / Path(name).name):
            if candidate.is_file():
                return canonical(candidate)
        raise InputError(given, None, "no such draft", hint=f"Drafts are {self.outputs}/<a>-vs-<b>.md.")

    def shown(self, path: Path) -> str:
        return shown(path, self.root)

    def tool(self, slug: str, what: str = "tool") -> FactSheet:
        if slug not in self._tools:
            self._tools[slug] = load_tool(self.root, slug, what)
        return self._tools[slug]

    def pair(self, slug_a: str, slug_b: str) -> dict[str, FactSheet]:
        """The two tools of a comparison, A then B."""
        tools = {slug_a: self.tool(slug_a, "TOOL_A"), slug_b: self.tool(slug_b, "TOOL_B")}
        if slug_a == slug_b:
            raise InputError("command line", "TOOL_B", f"is the same tool as TOOL_A ({slug_a!r}); pick two tools")
        self.check_names(slug_a, slug_b)
        return tools

    def check_names(self, slug_a: str, slug_b: str) -> None:
        """Every file a comparison writes must have a name the file system takes, checked before any request: the
        draft, its sidecar and votes file, the preview, and the temporary file an atomic write makes beside each
        (``.<name>.XXXXXXXX.tmp``)."""
        stem = f"{slug_a}-vs-{slug_b}"
        longest = f".{stem}.provenance.json.XXXXXXXX.tmp"
        limit = name_max(self.outputs)
        if len(longest.encode()) > limit:
            room = limit - (len(longest.encode()) - len(stem.encode()))
            raise InputError("command line", "TOOL_A, TOOL_B",
                             f"the slugs are too long together: outputs/{clip(stem)}.md and the files beside it "
                             f"would have names over the file system's limit of {limit} bytes",
                             hint=f"'<A>-vs-<B>' may have at most {room} characters; rename the fact sheets.")

    def persona(self, lens: str) -> Persona:
        return next(p for p in self.personas if p.lens == lens)

    def job(self, lens: str, slug: str) -> Job:
        """The review of ``slug`` by ``lens``: its prompt rendered, its targets chosen, its cache key made."""
        name = section_id(lens, slug)
        if name not in self._jobs:
            persona = self.persona(lens)
            targets = targets_for(self.backend, self.settings, persona)
            messages = review_messages(self.root, persona, self.tool(slug), self.personas)
            self._jobs[name] = Job(persona, slug, self.tool(slug), targets[0], messages,
                                   review_key(targets[0], messages), targets[1:])
        return self._jobs[name]

    def plan(self, slugs: list[str] | dict[str, FactSheet]) -> list[Job]:
        """Every review a page of these tools needs, rendered up front: a template error stops before any
        request."""
        return [self.job(p.lens, slug) for p in self.personas for slug in slugs]
