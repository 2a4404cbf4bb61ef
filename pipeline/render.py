"""Render every template: prompts and the page go through ``render``, with StrictUndefined."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from .errors import InputError
from .load import FactSheet, Persona
from .review import Message

TAG_START = re.compile(r"<(?=[A-Za-z/!?])")
# Control characters (C0, DEL, C1) and invisible ones that make a line read one way in a pull request's diff and
# another on the page: bidi embeddings, overrides and isolates, zero-width spaces and joiners, the byte order mark.
CONTROL = re.compile("[\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f\\u200b-\\u200d\\u2060\\ufeff\\u202a-\\u202e\\u2066-\\u2069]")


def md(text: object) -> str:
    """One line of Markdown text: whitespace folded, no control or invisible character, no '<' that could open an
    HTML tag."""
    return _md(str(text))


@lru_cache(maxsize=4096)  # a page shows the same names and taglines as many others: ``stale`` renders thousands
def _md(text: str) -> str:
    return TAG_START.sub("&lt;", " ".join(CONTROL.sub("", text).split()))


def cell(text: str) -> str:
    """Text for a Markdown table cell."""
    return md(text).replace("|", "\\|")


NUMBER_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def counted(count: int, noun: str) -> str:
    """``five reviewers``, ``one reviewer``: a count in words for prose (digits above ten), with its noun."""
    word = NUMBER_WORDS[count] if 0 <= count < len(NUMBER_WORDS) else str(count)
    return f"{word} {noun if count == 1 else noun + 's'}"


@lru_cache(maxsize=8)
def _environment(prompts: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(prompts),
        undefined=jinja2.StrictUndefined,
        # Prompts and Markdown are not HTML (the md filter neutralises tags there); the preview page is.
        autoescape=lambda name: bool(name and name.endswith(".html.j2")),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(md=md, cell=cell, counted=counted)
    return env


def render(root: Path, name: str, **context: Any) -> str:
    """Render ``prompts/<name>``; any template fault becomes an InputError naming the file."""
    path = root / "prompts" / name
    try:
        return _environment(root / "prompts").get_template(name).render(**context)
    except jinja2.TemplateNotFound:
        raise InputError(path, None, "template not found") from None
    except jinja2.TemplateSyntaxError as exc:
        raise InputError(exc.filename or path, f"line {exc.lineno}", exc.message or "syntax error") from None
    except jinja2.UndefinedError as exc:
        raise InputError(path, None, f"template error: {exc.message}",
                         hint="Use only the variables the pipeline passes; see README.md, 'Templates'.") from None
    except jinja2.TemplateError as exc:
        raise InputError(path, None, f"template error: {exc}") from None


def sheet_json(sheet: FactSheet) -> str:
    return json.dumps(sheet.model_dump(exclude_none=True), indent=2, ensure_ascii=False)


def fence_for(text: str) -> str:
    """A fence line the fenced text cannot contain, stable for the same text (so the cache key is stable)."""
    digest = hashlib.sha256(text.encode()).hexdigest()
    return f"=====FACT-SHEET-{digest[:16]}====="


def review_messages(root: Path, persona: Persona, sheet: FactSheet, panel: Sequence[Persona],
                    year: int | None = None) -> list[Message]:
    """The review's prompt. ``panel``: every persona in panel order, so the prompt says how many reviewers sit
    on it (the persona files decide, not the template). ``year``: the year the prompt says it is (a time frame
    such as "within 12 months" needs a today); only the year, so every review goes stale once a year, not daily."""
    data = sheet_json(sheet)
    year = year or date.today().year
    return [
        {"role": "system", "content": render(root, "system.j2", persona=persona, panel=list(panel), year=year)},
        {"role": "user", "content": render(root, "user.j2", persona=persona, sheet=sheet,
                                           sheet_json=data, fence=fence_for(data))},
    ]


def reask_message(root: Path, persona: Persona, problems: list[str]) -> Message:
    return {"role": "user", "content": render(root, "reask.j2", persona=persona, problems=problems)}


def distinct_message(root: Path, persona: Persona, other: Persona, mine: str, theirs: str,
                     stock: Sequence[str] = ()) -> Message:
    """The re-ask for a review that makes another lens's point on the same tool (``mine`` repeats ``theirs``)."""
    return {"role": "user", "content": render(root, "reask-distinct.j2", persona=persona, other=other, mine=mine,
                                              theirs=theirs, stock=list(stock))}


def template_fingerprint(root: Path, name: str) -> str:
    """A template's tokens without comments or whitespace inside tags: what can change what it renders."""
    path = root / "prompts" / name
    try:
        source = path.read_text(encoding="utf-8")
        tokens = [(kind, value) for _, kind, value in _environment(root / "prompts").lex(source, name)
                  if kind not in ("comment_begin", "comment", "comment_end", "whitespace")]
    except FileNotFoundError:
        raise InputError(path, None, "template not found") from None
    except jinja2.TemplateSyntaxError as exc:
        raise InputError(path, f"line {exc.lineno}", exc.message or "syntax error") from None
    return hashlib.sha256(json.dumps(tokens, ensure_ascii=False).encode()).hexdigest()[:16]
