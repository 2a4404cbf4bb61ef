"""Provenance: what each section of a draft was made from, kept in a sidecar beside the draft.

``outputs/<a>-vs-<b>.md`` is the editor's; ``outputs/<a>-vs-<b>.provenance.json`` is the pipeline's. The sidecar
holds the page as last generated (the base of refresh's three-way merge), the lines of each section in it, and
per section the fingerprints of the inputs it was made from. Fingerprints are taken of parsed data, not of
files, so a comment or whitespace in a TOML file or a template comment changes none of them.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .assemble import Page
from .errors import InputError, explain
from .facts import unsupported_claims
from .load import SLUG, FactSheet, Persona
from .render import template_fingerprint
from .review import FRAME, Job, Review, card_id, is_card, parse_section
from .sameness import page_flags
from .validate import length_note, normalise_quote
from .write import Seen, write_atomic

if TYPE_CHECKING:
    from .merge import Unresolved

# Line spans and the two slugs on one line each. Keyed on the names: a string value cannot hold `"lines": [`
# unescaped, so text inside quotes or pages is never touched.
_SHORT_LIST = re.compile(r'("(?:lines|tools)": )\[\s*([^\]"]*?|"[a-z0-9-]+",\s*"[a-z0-9-]+")\s*\]')
CARD_FIELDS = ("name", "category", "tagline", "entry", "description")


class Section(BaseModel):
    # Mutable defaults from factories: a default value would be deep-copied for every section of every sidecar.
    model_config = ConfigDict(extra="forbid")

    lines: tuple[int, int]
    inputs: dict[str, str]
    # Quotes only: the review the section shows, and the cache key and model settings it came from.
    key: str = ""
    verdict: str = ""
    quote: str = ""
    model: str = ""  # the model that wrote the quote; with ``fallback``, not the lens's own (see ``settings``)
    provider: str = ""
    fallback: bool = False
    # The provider that served the reply, as the router named it (x-inference-provider); "" when it named none (an
    # endpoint, the local model, a review cached before it was recorded): shown as unknown. Left out when "", so a
    # sidecar written before it is unchanged.
    served_by: str = ""
    settings: dict[str, Any] = Field(default_factory=dict)
    # What the environment and command line chose when the quote was generated (backend, server, overridden
    # settings): ``stale`` plans with these, so its answer does not depend on the shell it runs in.
    environment: dict[str, Any] = Field(default_factory=dict)
    # The quote's checkable claims the fact sheet does not support, for the editor.
    flags: list[str] = Field(default_factory=list)
    # For the editor too, never re-asked: the earlier quotes on the page this one makes the same point as
    # ("<section>: “<its sentence>”", sameness.py), and a length a few words outside the lens's range (validate.py).
    sameness: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    # The approved text the page was made with instead of ``quote`` (an editor's version of this review in
    # another draft), and that draft.
    approved: str = ""
    approved_from: str = ""
    missing: str = ""  # the review the model never got right: why (the quote is a placeholder)
    kept: str = ""  # where its last reply is kept, for ``accept``
    accepted: bool = False  # an editor accepted the reply as it is: ``check`` does not hold it to the rules

    def review(self, name: str) -> Review:
        lens, slug = parse_section(name)
        return Review(lens, slug, self.verdict, self.approved or self.quote, self.model, self.provider, self.fallback,
                      self.missing, self.kept, self.accepted, self.served_by)


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal[1] = 1
    tools: tuple[str, str]
    pinned: list[str] = Field(default_factory=list)
    frame: dict[str, str]
    sections: dict[str, Section]
    generated: list[str]

    @field_validator("tools")
    @classmethod
    def _two_tools(cls, tools: tuple[str, str]) -> tuple[str, str]:
        if tools[0] == tools[1] or not all(SLUG.fullmatch(slug) for slug in tools):
            raise ValueError("must be two different tool slugs")
        return tools

    @model_validator(mode="after")
    def _spans_in_the_page(self) -> Record:
        """A hand-edited span outside the page, or two sections sharing lines, would make refresh copy the page
        into itself: refuse it."""
        spans = sorted((section.lines, name) for name, section in self.sections.items())
        for (start, end), name in spans:
            if not 0 <= start < end <= len(self.generated):
                raise ValueError(f"section {name}: lines {start}-{end} are outside the page's "
                                 f"{len(self.generated)} lines")
        for ((_, end), one), ((start, _), two) in zip(spans, spans[1:], strict=False):
            if start < end:
                raise ValueError(f"sections {one} and {two} share lines")
        return self

    @property
    def page(self) -> Page:
        return Page("\n".join(self.generated), {name: s.lines for name, s in self.sections.items()})


def recorded_environment(section: Section) -> dict[str, Any]:
    """What the environment chose when the quote was generated; a sidecar from before it was recorded names its
    backend only."""
    return section.environment or {"backend": section.settings.get("backend", "local")}


def votes_file(slug_a: str, slug_b: str) -> str:
    """How a reason names a comparison's votes file (``Project.votes_path`` is where it is)."""
    return f"outputs/{slug_a}-vs-{slug_b}.votes.toml"


def sidecar_path(draft: Path) -> Path:
    return draft.with_name(draft.name.removesuffix(".md") + ".provenance.json")


def fingerprint(value: Any) -> str:
    blob = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class Inputs:
    """Input fingerprints of one project state, each worked out once (``stale`` may check 1,000 drafts)."""

    def __init__(self, root: Path, personas: list[Persona]) -> None:
        self.root = root
        self.personas = personas
        self._templates: dict[str, str] = {}
        self._data: dict[tuple[str, int], tuple[object, str]] = {}
        self._shares: dict[str, str] = {}

    def template(self, name: str) -> str:
        if name not in self._templates:
            self._templates[name] = template_fingerprint(self.root, name)
        return self._templates[name]

    def _of(self, model: FactSheet | Persona, include: tuple[str, ...] | None = None) -> str:
        memo = (",".join(include or ()), id(model))
        if memo not in self._data:  # the model is kept with its fingerprint, so its id is never reused
            self._data[memo] = (model, fingerprint(model.model_dump(include=set(include) if include else None)))
        return self._data[memo][1]

    def quote(self, persona: Persona, slug: str, sheet: FactSheet, settings: dict[str, Any]) -> dict[str, str]:
        return {f"tools/{slug}.toml": self._of(sheet), f"personas/{persona.lens}.toml": self._of(persona),
                "prompts/system.j2": self.template("system.j2"), "prompts/user.j2": self.template("user.j2"),
                "settings": fingerprint(settings)}

    def job(self, job: Job) -> dict[str, str]:
        return self.quote(job.persona, job.slug, job.sheet, job.target.settings())

    def card(self, slug: str, sheet: FactSheet, community: str, votes: str) -> dict[str, str]:
        """``community``: the tool's vote share as shown; ``votes``: the votes file it came from."""
        if community not in self._shares:
            self._shares[community] = fingerprint(community)
        return {f"tools/{slug}.toml": self._of(sheet, CARD_FIELDS), "prompts/page.md.j2": self.template("page.md.j2"),
                votes: self._shares[community]}

    def frame(self, tools: dict[str, FactSheet]) -> dict[str, str]:
        inputs = {f"tools/{slug}.toml": self._of(sheet, ("name",)) for slug, sheet in tools.items()}
        inputs.update({f"personas/{p.lens}.toml": self._of(p, ("title", "role", "order")) for p in self.personas})
        inputs["prompts/page.md.j2"] = self.template("page.md.j2")
        return inputs


def _value(value: Any) -> str:
    """A setting's value in a reason: an empty or absent one says so, rather than leaving a gap."""
    return "(none)" if value in ("", None) else str(value)


def changes(old: dict[str, str], new: dict[str, str], old_settings: dict[str, Any] | None = None,
            new_settings: dict[str, Any] | None = None) -> list[str]:
    """Why a section is stale, in the editor's words: which inputs changed."""
    reasons = []
    for name in sorted(new.keys() | old.keys()):
        if old.get(name) == new.get(name):
            continue
        if name == "settings":
            diff = [f"{k}: {_value((old_settings or {}).get(k))} → {_value((new_settings or {}).get(k))}"
                    for k in sorted((new_settings or {}).keys() | (old_settings or {}).keys())
                    if (old_settings or {}).get(k) != (new_settings or {}).get(k)]
            reasons.append("model settings changed" + (f" ({', '.join(diff)})" if diff else ""))
        else:
            reasons.append(f"{name} {'added' if name not in old else 'removed' if name not in new else 'changed'}")
    return reasons


def _sidecar_data(path: Path, raw: bytes | None) -> Any:
    """The sidecar's JSON as parsed, unvalidated; None when there is none."""
    if raw is None:
        return None
    hint = "The sidecar is written by the pipeline; restore it from git."
    try:
        return json.loads(_lf(raw.decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, None, f"not valid JSON ({exc})", hint=hint) from None
    except RecursionError:
        raise InputError(path, None, "not valid JSON here: nested too deeply", hint=hint) from None


def _lf(text: str) -> str:
    """Line ends made LF, as ``read_text`` makes them."""
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def validate_record(draft: Path, data: Any) -> Record | None:
    if data is None:
        return None
    try:
        return Record.model_validate(data)
    except ValidationError as exc:
        raise InputError(sidecar_path(draft), *explain(exc),
                         hint="The sidecar is written by the pipeline; restore it from git.") from None


def quotes_shown(record: Record, lines: list[str]) -> dict[str, str]:
    """Each quote as ``lines`` show it, by section: the editor's edits included (and the editor's side of a
    conflict not settled yet), placed with the sidecar's page as generated."""
    from .merge import editor_side, line_owners, unresolved  # not on every command's start-up (merge3)

    lines = editor_side(lines, unresolved(lines))
    found: dict[str, list[str]] = {}
    for owner, line in zip(line_owners(record.page, lines), lines, strict=True):
        if owner != FRAME and not is_card(owner) and line.startswith(">"):
            found.setdefault(owner, []).append(line[1:].strip())
    return {name: normalise_quote("\n".join(parts)) for name, parts in found.items()}


class DraftFile:
    """A draft as a whole: the editor's page (its text and lines), its sidecar's record, its conflict blocks and its
    placeholders. Every command reads a draft here, so a draft that cannot be read gets the same one error, naming
    it, from each. Each part is read (or worked out) once, when it is first asked for: ``stale`` may look at 10,000
    drafts and need little of most of them."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> DraftFile:
        """The page and its sidecar, read now: a command that changes a draft reads it whole before anything."""
        self.lines  # noqa: B018
        self.record  # noqa: B018
        return self

    def release(self) -> None:
        """Forget what was read and worked out (it is read again if asked for): ``stale`` over 10,000 drafts need
        not hold every page and record it has finished with."""
        for name in ("_page", "text", "lines", "_sidecar", "data", "record", "identity", "as_generated", "conflicts",
                     "quotes", "placeholders"):
            self.__dict__.pop(name, None)

    @cached_property
    def _page(self) -> tuple[Seen, bytes]:
        try:
            return Seen.read(self.path)
        except FileNotFoundError:
            raise InputError(self.path, None, "no such draft") from None
        except IsADirectoryError:
            raise InputError(self.path, None, "is a directory, not a draft") from None
        except OSError as exc:
            raise InputError(self.path, None, f"cannot be read ({exc.strerror or exc})") from None

    @property
    def seen(self) -> Seen:
        """The page as it was when read: a later look that differs means an editor saved it since."""
        return self._page[0]

    @cached_property
    def text(self) -> str:
        """The page, with LF line ends whatever it was saved with."""
        try:
            return _lf(self._page[1].decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise InputError(self.path, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})",
                             hint="Save the draft as UTF-8 (your editor's encoding setting), then run again.") from None

    @cached_property
    def lines(self) -> list[str]:
        return self.text.split("\n")

    @property
    def crlf(self) -> bool:
        """Saved with CRLF line ends (most of its lines: a few CRLF lines in an LF file do not make it CRLF)."""
        raw = self._page[1]
        return raw.count(b"\r\n") * 2 > raw.count(b"\n")

    @cached_property
    def _sidecar(self) -> bytes | None:
        path = sidecar_path(self.path)
        try:
            with open(path, "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            raise InputError(path, None, "is a directory, not the sidecar file",
                             hint="The sidecar is written by the pipeline; remove the directory and restore it from "
                             "git.") from None
        except OSError as exc:
            raise InputError(path, None, f"cannot be read ({exc.strerror or exc})") from None

    @cached_property
    def data(self) -> Any:
        """The sidecar's JSON as parsed, unvalidated; None when there is none."""
        return _sidecar_data(sidecar_path(self.path), self._sidecar)

    @cached_property
    def record(self) -> Record | None:
        """The sidecar, validated; None when the draft has none."""
        return validate_record(self.path, self.data)

    @cached_property
    def identity(self) -> str:
        """What the page and its sidecar hold, as one digest: the same bytes give the same answer."""
        sidecar = self._sidecar
        return hashlib.sha256(self.seen.digest.encode() + b"\0" + (b"-" if sidecar is None else
                                                                     b"+" + sidecar)).hexdigest()

    @cached_property
    def as_generated(self) -> bool:
        """The draft on disk is the page as last generated (no hand edit), by its sidecar's own account."""
        data = self.data
        generated = data.get("generated") if isinstance(data, dict) else None
        try:
            return isinstance(generated, list) and "\n".join(generated) == self.text
        except TypeError:  # a line that is not a string: the record says what is wrong
            return False

    @cached_property
    def conflicts(self) -> list[Unresolved]:
        """The conflict blocks an editor has not settled yet, in page order."""
        if "<<<<<<<" not in self.text and "<!--" not in self.text:
            return []
        from .merge import unresolved  # not on every command's start-up (merge3)

        return unresolved(self.lines)

    @cached_property
    def quotes(self) -> dict[str, str]:
        """Each quote as the page shows it now, by section (see ``quotes_shown``); none without a sidecar."""
        record = self.record
        return {} if record is None else quotes_shown(record, self.lines)

    @cached_property
    def placeholders(self) -> dict[str, str]:
        """The quotes the model never got right that the page still shows as their placeholder: why, by section."""
        record = self.record
        if record is None or not any(section.missing for section in record.sections.values()):
            return {}
        generated = quotes_shown(record, record.page.lines)
        return {name: section.missing for name, section in record.sections.items()
                if section.missing and self.quotes.get(name, section.quote) == generated.get(name)}


def write_record(draft: Path, record: Record) -> None:
    data = {"format": record.format, **record.model_dump(mode="json", exclude_defaults=True)}
    text = json.dumps(data, indent=1, ensure_ascii=False) + "\n"
    text = _SHORT_LIST.sub(lambda m: m.group(1) + "[" + ", ".join(p.strip() for p in m.group(2).split(",")) + "]", text)
    write_atomic(sidecar_path(draft), text)


def build_record(inputs: Inputs, tools: dict[str, FactSheet], community: dict[str, str], page: Page, jobs: list[Job],
                 reviews: dict[str, Review], environment: dict[str, Any], keep: dict[str, Section] | None = None,
                 pinned: list[str] | None = None, approved: dict[str, tuple[str, str]] | None = None) -> Record:
    """The sidecar for a page just generated. Quote sections in ``keep`` (pinned, or not regenerated by a
    refresh) keep their old record with their new lines; the others are recorded from their job and review."""
    keep = keep or {}
    sections: dict[str, Section] = {}
    slug_a, slug_b = tools
    for slug, sheet in tools.items():
        name = card_id(slug)
        sections[name] = Section(lines=page.spans[name], inputs=inputs.card(slug, sheet, community.get(slug, ""),
                                                                            votes_file(slug_a, slug_b)))
    for job in jobs:
        name = job.section
        if name in keep:
            sections[name] = keep[name].model_copy(update={"lines": page.spans[name]})
            continue
        review = reviews[name]
        sections[name] = Section(lines=page.spans[name], inputs=inputs.job(job), key=job.key, verdict=review.verdict,
                                 quote=review.quote, model=review.model, provider=review.provider,
                                 fallback=review.fallback, served_by=review.served_by,
                                 settings=job.target.settings(), environment=environment,
                                 missing=review.missing, kept=review.kept, accepted=review.accepted,
                                 flags=[] if review.missing else unsupported_claims(review.quote, job.sheet),
                                 notes=[note] if not review.missing and (note := length_note(job.persona, review.quote))
                                 else [])
        if name in (approved or {}):
            text, source = (approved or {})[name]
            sections[name] = sections[name].model_copy(update={
                "approved": text, "approved_from": source, "flags": unsupported_claims(text, job.sheet)})
    for name, old in keep.items():  # a pinned card
        if name in sections and not old.key:
            sections[name] = old.model_copy(update={"lines": page.spans[name]})
    personas = sorted({job.persona.lens: job.persona for job in jobs}.values(), key=lambda p: p.order)
    repeated = page_flags(personas, tools, {name: s.approved or s.quote for name, s in sections.items()
                                            if s.key and not s.missing})
    for name, section in sections.items():
        if section.key and section.sameness != repeated.get(name, []):
            sections[name] = section.model_copy(update={"sameness": repeated.get(name, [])})
    return Record(tools=(slug_a, slug_b), pinned=sorted(pinned or []), frame=inputs.frame(tools), sections=sections,
                  generated=page.lines)
