"""Turn a model's raw reply into a Review, or into the list of problems the re-ask sends back."""

from __future__ import annotations

import json
import math
import re

from pydantic import ValidationError

from .load import Beat, FactSheet, Persona
from .review import Reply

FENCE = re.compile(r"^```[a-zA-Z0-9_-]*\s*\n(?P<body>.*?)\n?```$", re.DOTALL)
HEADING = re.compile(r"(^|\n)\s*#{1,6}\s")
LIST_ITEM = re.compile(r"(^|\n)\s*([-*+•]|\d+[.)])\s")
QUOTE_MARKS = "\"'“”‘’«»"
# A quote is prose: no link or image reaches the page, in any of Markdown's forms. Code spans are left out of the
# search first (`pip install 'litellm[proxy]'`, `base_url="https://openrouter.ai/api/v1"`): code is never linked.
CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", re.DOTALL)
MARKUP = {
    "a Markdown image": re.compile(r"!\["),
    "a Markdown link": re.compile(r"\][(\[]|^\s*\[[^\]]+\]:", re.MULTILINE),  # [t](url), [t][ref], [ref]: url
    "an autolink": re.compile(r"<[A-Za-z][A-Za-z0-9+.-]{1,31}:[^\s<>]*>|<[^\s<>@]+@[^\s<>@]+>"),
    # GitHub-flavoured Markdown links these on its own. A bare domain (huggingface.co) stays text everywhere.
    "a web address": re.compile(r"\b(?:https?|ftp)://|\bwww\.\w", re.IGNORECASE),
}


class NeedsReask(Exception):
    """The model's fault, not ours: the problems go back to the model in a re-ask."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def parse_reply(text: str | None) -> Reply:
    """Parse the JSON object, accepting one Markdown code fence around it."""
    body = (text or "").strip()
    if not body:
        raise NeedsReask(["the reply was empty; send the JSON object"])
    fenced = FENCE.match(body)
    if fenced:
        body = fenced.group("body").strip()
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise NeedsReask([f"the reply is not a JSON object ({exc.msg} at character {exc.pos})"]) from None
    except RecursionError:
        raise NeedsReask(["the reply's JSON is nested too deeply; send one flat object with two strings"]) from None
    if not isinstance(data, dict):
        raise NeedsReask([f"the reply is JSON but a {type(data).__name__}, not an object"])
    try:
        return Reply.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"])
            if error["type"] == "missing":
                problems.append(f'the key "{field}" is missing')
            elif field == "verdict":
                problems.append(f'"verdict" must be "ship" or "skip", not {said(error.get("input"))}')
            else:
                problems.append(f'"{field}": {error["msg"]}')
        raise NeedsReask(problems) from None


def said(value: object) -> str:
    """A model's wrong value, for a problem: a short word as it is, anything else described. The problems are shown
    on the page's placeholder too, where no text of the model's (a link, an image) may reach."""
    if isinstance(value, str):
        return repr(value) if re.fullmatch(r"[a-z][a-z -]{0,19}", value) else f"a string of {len(value)} characters"
    return "null" if value is None else {bool: "true or false", int: "a number", float: "a number",
                                         list: "a list", dict: "an object"}.get(type(value), "another value")


def normalise_quote(quote: str) -> str:
    """Strip quotation marks around the whole quote and fold single line breaks into spaces."""
    text = quote.strip()
    if len(text) >= 2 and text[0] in QUOTE_MARKS and text[-1] in QUOTE_MARKS:
        text = text[1:-1].strip()
    paragraphs = re.split(r"\n\s*\n", text)
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)


# Product names a quote may use without a fact sheet's help: mixed case (vLLM, OpenRouter), a name with a
# version or size (Phi-4, Qwen2.5, GPT-4o), a library file name (llama.cpp), or a capitalised word inside a
# sentence (Groq, Together, Streamlit).
_MIXED = re.compile(r"\b[A-Za-z]*[a-z][A-Z][\w.-]*|\b[A-Z]{2,}[a-z][\w.-]*")
_VERSIONED = re.compile(r"(?<![-/\w.])[A-Za-z][A-Za-z]*-?\d[\w.]*\b")
_FILE_NAME = re.compile(r"\b[a-z]+\.(?:cpp|js|py|ai|rs)\b")
_INNER_CAPITAL = re.compile(r"(?<=[a-z,;] )[A-Z][a-z]{2,}(?: [A-Z][a-z]+)*")
_NOT_PRODUCTS = frozenset({"The", "This", "That", "What", "When", "If", "It", "Its", "And", "But", "For", "Apache",
                           "Enterprise", "Pro", "Team", "Teams", "Cloud", "Free", "Open", "Instruct", "Chat",
                           "Python", "English", "European", "American", "British", "January", "February", "March",
                           "April", "May", "June", "July", "August", "September", "October", "November", "December"})


def product_mentions(quote: str, sheet: FactSheet | None = None) -> dict[str, str]:
    """Products (or makers) a quote names besides the tool itself, the fact sheet's competitors first: each
    by its first word in lower case (one product however it is written), with the name as the quote gives it."""
    own = {word.lower() for word in re.findall(r"[\w.]+", sheet.name)} if sheet else set()
    found: dict[str, str] = {}
    lowered = quote.lower()
    for competitor in sheet.competitors if sheet else []:
        head = re.split(r"\s+(?:and|or)\s+|\s*[(,]", competitor)[0].strip()
        first = head.split()[0] if head else ""
        if head.lower() in lowered or (len(first) >= 3 and re.search(rf"\b{re.escape(first.lower())}\b", lowered)):
            found.setdefault(first.lower(), head)
    for pattern in (_MIXED, _VERSIONED, _FILE_NAME, _INNER_CAPITAL):
        for match in pattern.finditer(quote):
            name = re.sub(r"-(style|compatible|like|based|native|first)$", "", match.group(0).strip(".-"))
            first = name.split()[0]
            if re.fullmatch(r"[A-Z]{2,}s", first):
                continue  # an acronym's plural (APIs, GPUs), not a name
            if first in _NOT_PRODUCTS or first.lower() in own or re.fullmatch(r"\d+[A-Za-z]?", first):
                continue
            if re.fullmatch(r"[A-Za-z]+-?\d+(?:s|st|nd|rd|th|x|[kKmMbB])?", first) and first[0].islower():
                continue  # a quantity such as 24b or 5x, not a name
            found.setdefault(first.lower(), name)
    return found


def named_products(quote: str, sheet: FactSheet | None = None) -> set[str]:
    """How many different products a quote names besides the tool, as their keys."""
    return set(product_mentions(quote, sheet))


def beat_hit(beat: Beat, quote: str, sheet: FactSheet | None = None) -> bool:
    """Whether the quote makes this beat's point: its patterns, its ``together`` groups, or named products."""
    if any(re.search(p, quote, re.IGNORECASE) for p in beat.patterns):
        return True
    if beat.together and all(any(re.search(p, quote, re.IGNORECASE) for p in group) for group in beat.together):
        return True
    return bool(beat.products) and len(named_products(quote, sheet)) >= beat.products and \
        any(re.search(p, quote, re.IGNORECASE) for p in beat.placing or [r"."])


def missing_beat(beat: Beat) -> str:
    """What a quote lacks, said so a model can fix it: the point, and the signpost that opens it."""
    point = beat.ask.rstrip(".")
    point = point[0].lower() + point[1:]
    opener = f'; open a sentence with "{beat.signpost}"' if beat.signpost else ""
    return f"no sentence does this: {point}{opener}"


# A quote a few words outside its lens's range is accepted and flagged for the editor, who trims or extends it by
# hand in seconds; a re-ask for it would cost a full round trip. Only a clear miss, more than this share of the
# bound outside it, is re-asked: 80 to 190 words for the house range of 90 to 170. Calibrated on the corpus (the
# spread of a writer's lengths around the length it aims at; `python -m pipeline calibrate` prints it).
NEAR_MISS = 0.12


def word_band(persona: Persona) -> tuple[int, int]:
    """The fewest and most words a quote of this lens may have and still be accepted (with a flag outside the
    persona's own range)."""
    return (math.ceil(round(persona.min_words * (1 - NEAR_MISS), 6)),
            math.floor(round(persona.max_words * (1 + NEAR_MISS), 6)))


def length_note(persona: Persona, quote: str) -> str:
    """For the editor, when the quote is a near miss on length (accepted, not re-asked); empty otherwise."""
    words = len(quote.split())
    lowest, highest = word_band(persona)
    if persona.max_words < words <= highest:
        return f"{words} words, {words - persona.max_words} over the {persona.max_words} the lens asks for: trim it"
    if lowest <= words < persona.min_words:
        return f"{words} words, {persona.min_words - words} under the {persona.min_words} the lens asks for"
    return ""


def quote_problems(persona: Persona, quote: str, sheet: FactSheet | None = None) -> list[str]:
    """Every rule the quote breaks, in words the model can act on; empty when it passes."""
    problems: list[str] = []
    if not quote:
        return ["the quote is empty"]
    if "\n\n" in quote:
        problems.append("the quote must be one paragraph, without blank lines")
    if HEADING.search(quote):
        problems.append("the quote must not contain Markdown headings")
    if LIST_ITEM.search(quote):
        problems.append("the quote must not contain a bulleted or numbered list")
    prose = CODE_SPAN.sub("", quote)
    markup = next((name for name, pattern in MARKUP.items() if pattern.search(prose)), None)
    if markup:
        problems.append(f"the quote contains {markup}; write plain prose without links or images (name a product "
                        "or its domain, such as huggingface.co, in words)")
    words = len(quote.split())
    lowest, highest = word_band(persona)
    if not lowest <= words <= highest:  # a near miss is the editor's: see length_note
        problems.append(f"the quote has {words} words; it must have {persona.min_words} to {persona.max_words}")
    hit = [beat_hit(beat, quote, sheet) for beat in persona.beats]
    for beat, ok in zip(persona.beats, hit, strict=True):
        if beat.required and not ok:
            problems.append(missing_beat(beat))
    if sum(hit) < persona.min_beats:
        missing = [beat for beat, ok in zip(persona.beats, hit, strict=True) if not ok and not beat.required]
        if missing:
            problems.append(f"the quote makes {sum(hit)} of the {persona.lens}'s points and needs "
                            f"{persona.min_beats}; add " + ("one of these" if len(missing) > 1 else "this") + ": "
                            + "; ".join(missing_beat(beat).removeprefix("no sentence does this: ") for beat in missing))
    return problems


def validate_reply(persona: Persona, text: str | None, sheet: FactSheet | None = None) -> Reply:
    reply = parse_reply(text)
    quote = normalise_quote(reply.quote)
    problems = quote_problems(persona, quote, sheet)
    if problems:
        raise NeedsReask(problems)
    return Reply(verdict=reply.verdict, quote=quote)
