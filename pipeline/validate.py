"""Turn a model's raw reply into a Review, or into the list of problems the re-ask sends back."""

from __future__ import annotations

import json
import re

from pydantic import ValidationError

from .load import Persona
from .review import Reply

FENCE = re.compile(r"^```[a-zA-Z0-9_-]*\s*\n(?P<body>.*?)\n?```$", re.DOTALL)
HEADING = re.compile(r"(^|\n)\s*#{1,6}\s")
LIST_ITEM = re.compile(r"(^|\n)\s*([-*+•]|\d+[.)])\s")
QUOTE_MARKS = "\"'“”‘’«»"


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
                problems.append(f'"verdict" must be "ship" or "skip", not {error.get("input")!r}'[:200])
            else:
                problems.append(f'"{field}": {error["msg"]}')
        raise NeedsReask(problems) from None


def normalise_quote(quote: str) -> str:
    """Strip quotation marks around the whole quote and fold single line breaks into spaces."""
    text = quote.strip()
    if len(text) >= 2 and text[0] in QUOTE_MARKS and text[-1] in QUOTE_MARKS:
        text = text[1:-1].strip()
    paragraphs = re.split(r"\n\s*\n", text)
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)


def quote_problems(persona: Persona, quote: str) -> list[str]:
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
    words = len(quote.split())
    if not persona.min_words <= words <= persona.max_words:
        problems.append(f"the quote has {words} words; it must have {persona.min_words} to {persona.max_words}")
    hit = [any(re.search(p, quote, re.IGNORECASE) for p in beat.patterns) for beat in persona.beats]
    for beat, ok in zip(persona.beats, hit, strict=True):
        if beat.required and not ok:
            problems.append(f"the quote misses the {beat.name} beat: {beat.ask}")
    if sum(hit) < persona.min_beats:
        missing = ", ".join(b.name for b, ok in zip(persona.beats, hit, strict=True) if not ok)
        problems.append(f"the quote hits {sum(hit)} of the {persona.lens} beats and needs {persona.min_beats}; "
                        f"missing: {missing}")
    return problems


def validate_reply(persona: Persona, text: str | None) -> Reply:
    reply = parse_reply(text)
    quote = normalise_quote(reply.quote)
    problems = quote_problems(persona, quote)
    if problems:
        raise NeedsReask(problems)
    return Reply(verdict=reply.verdict, quote=quote)
