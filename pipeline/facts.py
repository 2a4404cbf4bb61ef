"""Checkable claims in a quote, compared with the tool's fact sheet: what an editor should verify.

A quote's checkable claims are its numbers with units, parameter counts, prices, percentages, past years,
licence names and the products it names. A claim the fact sheet supports passes silently; the others are
listed for the editor. They never cause a re-ask: opinions and market knowledge are the reviewer's to give and
the editor's to check.
"""

from __future__ import annotations

import re
from datetime import date

from .load import FactSheet
from .validate import product_mentions

_SCALE = {"k": 1e3, "thousand": 1e3, "m": 1e6, "million": 1e6, "b": 1e9, "billion": 1e9, "t": 1e12,
          "trillion": 1e12}
# Each kind of claim, with the pattern that finds it. Order matters: a parameter count is not also a number.
CLAIMS = [
    ("parameters", re.compile(r"\b\d+(?:\.\d+)?\s?(?:-\s?)?"
                              r"(?:[BMT]\b|(?:billion|million|trillion)(?:[- ]parameters?)?\b)", re.IGNORECASE)),
    ("price", re.compile(r"(?:US)?\$\s?\d[\d,]*(?:\.\d+)?(?:\s?(?:[kKmM]\b|per\b[^.,;]{0,24}|/\s?[\w ]{1,16}))?")),
    ("percentage", re.compile(r"\b\d+(?:\.\d+)?\s?(?:%|per ?cent\b)", re.IGNORECASE)),
    ("number", re.compile(r"\b\d+(?:\.\d+)?\s?(?:[KkMG]B|TB|GiB|GB|MB|ms|tokens?|tok/s|bits?|-bit|GPUs?|cores?|"
                          r"x\b|times\b|k\b|K\b|hours?|seconds?|minutes?)", re.IGNORECASE)),
    ("licence", re.compile(r"\b(?:Apache(?:[- ]2(?:\.0)?)?|MIT|GPL(?:-?v?\d)?|AGPL(?:-?v?\d)?|LGPL|BSD(?:-\d-Clause)?|"
                           r"MPL(?:-2\.0)?|CC[- ]BY(?:[- ][A-Z]{2})*(?:[- ]\d\.\d)?|Llama \d(?:\.\d)? (?:Community )?"
                           r"Licen[cs]e|Gemma (?:Terms|Licen[cs]e)|OpenRAIL\S*)(?![\w-])")),
    ("year", re.compile(r"\b(?:19|20)\d\d\b")),
]


def _normal(text: str) -> str:
    """Lower case, without spaces, hyphens or thousands separators: ``Apache-2.0`` and ``Apache 2.0`` meet."""
    return re.sub(r"[\s,_-]", "", text.lower())


def _quantities(text: str) -> set[float]:
    """Every quantity the text states with a scale word or letter: ``24B``, ``24 billion``, ``4,000``."""
    found = set()
    for number, scale in re.findall(r"(\d+(?:[.,]\d+)*)\s?-?\s?(billion|million|thousand|trillion|[bmkt])?(?![a-z])",
                                    text.lower()):
        value = float(number.replace(",", ""))
        found.add(value * _SCALE.get(scale, 1.0))
    return found


def sheet_text(sheet: FactSheet) -> str:
    values = sheet.model_dump(exclude_none=True)
    parts: list[str] = []
    for value in values.values():
        parts += value if isinstance(value, list) else [str(value)]
    return "\n".join(parts)


def supported(kind: str, claim: str, sheet: FactSheet, text: str) -> bool:
    """Whether the fact sheet says what the claim says."""
    if _normal(claim) in _normal(text):
        return True
    if kind in ("parameters", "number", "price", "percentage"):
        wanted = _quantities(claim)
        return bool(wanted) and wanted <= _quantities(text)
    if kind == "licence":
        licence = _normal(sheet.license or "")
        return bool(licence) and (licence.startswith(_normal(claim)) or _normal(claim).startswith(licence))
    return False


def unsupported_claims(quote: str, sheet: FactSheet, year: int | None = None) -> list[str]:
    """The quote's checkable claims that the fact sheet does not support, in the order they appear.

    A year from this one on is a prediction, not a fact, and passes; so do the tool's own name and products the
    sheet names (its competitors, or any product in its text).
    """
    year = year or date.today().year
    text = sheet_text(sheet)
    found: list[tuple[int, str]] = []
    taken: list[tuple[int, int]] = []
    for kind, pattern in CLAIMS:
        for match in pattern.finditer(quote):
            span = match.span()
            if any(start < span[1] and span[0] < end for start, end in taken):
                continue
            claim = match.group(0).strip(" .,;:")
            taken.append(span)
            if kind == "year" and int(claim) >= year:
                continue
            if not supported(kind, claim, sheet, text):
                found.append((span[0], claim))
    lowered = _normal(text)
    for key, name in product_mentions(quote, sheet).items():
        if _normal(key) not in lowered and _normal(name) not in lowered:
            position = quote.find(name)
            found.append((position if position >= 0 else len(quote), name))
    return list(dict.fromkeys(claim for _, claim in sorted(found)))
