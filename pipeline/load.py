"""Load and validate the editor's data files: fact sheets (tools/) and personas (personas/)."""

from __future__ import annotations

import os
import re
import stat
import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import InputError, clip, explain_all
from .secret import secret_in

SLUG = re.compile(r"[a-z0-9][a-z0-9-]*")


def _fold(value: Any) -> Any:
    """Runs of whitespace become one space: re-wrapping a TOML string changes no prompt, so no draft goes stale."""
    return " ".join(value.split()) if isinstance(value, str) else value


Text = Annotated[str, BeforeValidator(_fold), StringConstraints(min_length=1, max_length=4000)]
Line = Annotated[str, BeforeValidator(_fold), StringConstraints(min_length=1, max_length=300)]
Pattern = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]


class FactSheet(BaseModel):
    """``tools/<slug>.toml``: what the editor knows about one tool. The model never writes these fields."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    name: Line
    category: Line
    tagline: Line
    entry: Line
    description: Text
    facts: list[Line] = Field(default_factory=list, max_length=50)
    competitors: list[Line] = Field(default_factory=list, max_length=50)
    url: Line | None = None
    hub_id: Line | None = None
    license: Line | None = None


def _compiled(patterns: list[str]) -> list[str]:
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"pattern {pattern!r} is not a valid regular expression: {exc}") from None
    return patterns


class Beat(BaseModel):
    """One beat a quote must hit: what the prompt asks for, the house signpost that opens it, and the evidence
    that shows it was hit, whether or not the writer used the signpost.

    Evidence, any of which hits the beat: one of ``patterns`` matches; every group of ``together`` has a match
    (a date and a prediction, say); or the quote names at least ``products`` products besides the tool (the fact
    sheet's competitors, or other product names) and one of ``placing`` matches.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    name: Line
    ask: Text
    signpost: Line | None = None  # how the house style opens this point, e.g. "The moat is ..."
    patterns: list[Pattern] = Field(min_length=1)
    together: list[list[Pattern]] = Field(default_factory=list, max_length=5)
    products: int = Field(0, ge=0, le=10)
    placing: list[Pattern] = Field(default_factory=list)
    required: bool = False

    @field_validator("patterns", "placing")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        return _compiled(patterns)

    @field_validator("together")
    @classmethod
    def _groups_compile(cls, groups: list[list[str]]) -> list[list[str]]:
        for group in groups:
            if not group:
                raise ValueError("each group of together needs at least one pattern")
            _compiled(group)
        return groups


class Fallback(BaseModel):
    """Where a lens's reviews go when its model or provider keeps failing: another model, provider, or both."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    model: Line | None = None
    provider: Line | None = None

    @model_validator(mode="after")
    def _something(self) -> Fallback:
        if self.model is None and self.provider is None:
            raise ValueError("a fallback needs a model, a provider, or both")
        return self


class Persona(BaseModel):
    """``personas/<lens>.toml``: one reviewer of the panel."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    lens: str = ""  # set from the file name
    order: int = Field(ge=1)
    title: Line
    role: Line
    voice: Text
    beats: list[Beat] = Field(min_length=1)
    min_beats: int = Field(ge=1)
    min_words: int = Field(90, ge=1)
    max_words: int = Field(170, ge=1)
    # One quote in this lens's voice, for a tool on no page: the model sees the voice, the signposts and the length.
    example: Text | None = None
    example_tool: Line | None = None
    # Per-lens overrides of the settings, for the Inference Providers backend and endpoints alike.
    model: Line | None = None
    provider: Line | None = None
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    # Tried in order when the lens's model or provider still fails after every transport retry.
    fallbacks: list[Fallback] = Field(default_factory=list, max_length=5)

    @field_validator("min_beats")
    @classmethod
    def _reachable(cls, value: int, info: Any) -> int:
        beats = info.data.get("beats") or []
        if beats and value > len(beats):
            raise ValueError(f"is {value} but the persona has only {len(beats)} beats")
        return value


CURLY_QUOTES = "“”‘’"
STRAIGHT_STRING = re.compile(r'"(?:[^"\\]|\\.)*"' + r"|'[^']*'")  # a TOML string on one line, closed
PERSONA_KEYS = [name for name in Persona.model_fields if name != "lens"]  # the lens is the file's name


MAX_BYTES = 1_000_000  # a fact sheet is a page of text; a bigger file is a mistake, or /dev/zero


def read_text(path: Path, what: str = "file") -> str:
    """A small UTF-8 text file, or one InputError naming it: missing, a directory or device, over MAX_BYTES, not
    UTF-8. Never reads more than MAX_BYTES (a symlink to /dev/zero is refused, not read forever). A UTF-8 byte order
    mark, as some Windows editors write, is dropped."""
    try:
        # O_NONBLOCK: opening a named pipe does not wait for a writer (it has no effect on a regular file)
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            if stat.S_ISDIR(mode):
                raise InputError(path, None, f"is a directory; a {what} is a text file")
            if not stat.S_ISREG(mode):
                raise InputError(path, None, f"not a regular file (a device or a pipe); a {what} is a text file")
            data = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise InputError(path, None, "file not found") from None
    except IsADirectoryError:
        raise InputError(path, None, f"is a directory; a {what} is a text file") from None
    except OSError as exc:
        raise InputError(path, None, f"cannot be read ({exc.strerror or exc})") from None
    if len(data) > MAX_BYTES:
        raise InputError(path, None, f"is larger than 1 MB; a {what} is a page of text at most")
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise InputError(path, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def read_toml(path: Path, what: str = "TOML file") -> dict[str, Any]:
    text = read_text(path, what)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(path, None, f"not valid TOML: {exc}{_curly_quotes(text, str(exc))}") from None
    except RecursionError:
        raise InputError(path, None, "not valid TOML: arrays or tables are nested too deeply") from None


def _curly_quotes(text: str, error: str) -> str:
    """Word processors turn " into “ ”, which TOML does not read as quotes. Look on the line the parser stopped on
    (Python 3.11's TOMLDecodeError has the position only in its message), outside well-quoted strings and
    comments: ``tagline = "it’s"`` is fine."""
    lines = text.splitlines() or [""]
    at = re.search(r"\(at line (\d+), column \d+\)", error)
    line = lines[min(int(at.group(1)), len(lines)) - 1] if at else lines[-1]  # else "at end of document"
    bare = STRAIGHT_STRING.sub("", line).split("#", 1)[0]
    if any(quote in bare for quote in CURLY_QUOTES):
        return " (the line has curly quotes: use straight quotes, \" or ', around TOML strings)"
    return ""


def _validated(model: type[BaseModel], path: Path, data: dict[str, Any],
               problems: list[tuple[str | None, str]] | None = None, allowed: list[str] | None = None) -> Any:
    """``data`` as ``model``, or one InputError with every problem of the file: pydantic's, then ``problems``,
    then each field holding a secret (it would reach the prompt, the page and the sidecar)."""
    problems = list(problems or []) + _secrets(data)
    try:
        valid = model.model_validate(data)
    except ValidationError as exc:
        problems = explain_all(exc, allowed=allowed, model=model) + problems
    if problems:
        raise InputError.every(path, problems)
    return valid


def _secrets(value: Any, field: str = "") -> list[tuple[str | None, str]]:
    """(field, problem) for every string in ``value`` (a TOML table, at any depth) that holds a secret."""
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in _secrets(item, f"{field}.{key}" if field else key)]
    if isinstance(value, list):
        return [found for index, item in enumerate(value) for found in _secrets(item, f"{field}.{index}")]
    what = secret_in(value) if isinstance(value, str) else None
    return [(field or None, f"holds {what}; remove it: this text goes into the prompt, the page and its sidecar")] \
        if what else []


def name_max(directory: Path) -> int:
    """The longest file name, in bytes, that the file system holding ``directory`` takes (255 almost everywhere)."""
    for place in (directory, *directory.parents):
        try:
            return os.pathconf(place, "PC_NAME_MAX")
        except (OSError, ValueError):
            continue
    return 255


def check_slug(slug: str, what: str) -> str:
    if not SLUG.fullmatch(slug):
        raise InputError(
            "command line", what, f"{clip(repr(slug))} is not a tool slug",
            hint="A slug names tools/<slug>.toml: lowercase letters, digits and '-', starting with a letter or digit.",
        )
    return slug


def load_tool(root: Path, slug: str, what: str = "tool") -> FactSheet:
    check_slug(slug, what)
    path = root / "tools" / f"{slug}.toml"
    if len(path.name.encode()) > name_max(path.parent):
        raise InputError("command line", what, f"{clip(repr(slug))} is too long for a file name "
                         f"({len(slug)} characters)", hint="Pick a shorter slug for tools/<slug>.toml.")
    if not path.exists():  # a directory or a device is there, and read_toml says what is wrong with it
        known = ", ".join(sorted(p.stem for p in (root / "tools").glob("*.toml"))) or "none"
        raise InputError(path, None, f"no fact sheet for {what} {slug!r} (known: {known})",
                         hint="Write tools/<slug>.toml with name, category, tagline, entry and description.")
    sheet: FactSheet = _validated(FactSheet, path, read_toml(path, "fact sheet"))
    return sheet


def persona_paths(root: Path) -> list[Path]:
    """The persona files: every one is a lens of the panel."""
    return sorted((root / "personas").glob("*.toml"))


def load_persona(path: Path) -> Persona:
    """One persona file; its lens is the file's name."""
    if not SLUG.fullmatch(path.stem):
        raise InputError(path, None, "persona file names must be lowercase letters, digits and '-'")
    data = read_toml(path, "persona")
    problems: list[tuple[str | None, str]] = []
    if "lens" in data:
        problems.append(("lens", "is taken from the file name; remove the key"))
        data = {key: value for key, value in data.items() if key != "lens"}
    smallest, largest = (data.get(key, Persona.model_fields[key].default) for key in ("min_words", "max_words"))
    if type(smallest) is int and type(largest) is int and smallest > largest:
        problems.append(("min_words", "is larger than max_words"))
    persona: Persona = _validated(Persona, path, data, problems, allowed=PERSONA_KEYS)
    return persona.model_copy(update={"lens": path.stem})


def load_personas(root: Path) -> list[Persona]:
    """Every persona under personas/, in panel order."""
    paths = persona_paths(root)
    if not paths:
        raise InputError(root / "personas", None, "no persona files found")
    personas = sorted((load_persona(path) for path in paths), key=lambda p: p.order)
    for before, after in zip(personas, personas[1:], strict=False):
        if before.order == after.order:
            raise InputError(root / "personas" / f"{after.lens}.toml", "order",
                             f"{after.order} is also the order of {before.lens}; each lens needs its own place")
    return personas
