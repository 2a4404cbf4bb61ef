"""Distinct voices: do two quotes make the same point, and which phrases recur across the catalogue?

Two checks, both deterministic and both blind to the house signposts (every builder writes "The moment of truth
is", and that is the house voice, not a repetition):

- ``overlap``: two quotes on one page, the four lenses on one tool or one lens on the two tools. They make the
  same point when their content words overlap by a fifth or more, when a sentence of one and a sentence of the
  other are near-duplicates, or when they share a run of words outside the signposts holding three content
  words. The tool's name and entry price are placeholders: mentioning the same fact is not the same point, and a
  paragraph written for one tool and reused for another with the name swapped is the same paragraph. The
  thresholds are calibrated on hand labels (``calibration/sameness``, ``python -m pipeline calibrate``).
- ``stock_phrases``: phrases of four words or more, outside the signposts, that recur in more than one quote in
  eight of a lens across a set of quotes (every draft's, or a corpus).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher

from .load import FactSheet, Persona
from .review import describe_section, section_id

# Two quotes make the same point when their content words (not function words, signposts or the tool's name)
# overlap by QUOTE_DICE or more (Dice: twice the shared words over the words of both); or when two of their
# sentences are near-duplicates (SENTENCE_DICE, sharing SENTENCE_WORDS content words at least); or when they share
# a run of words, outside the signposts, holding RUN_WORDS content words. Set where 9 in 10 pairs that editors
# labelled distinct pass (a false flag costs a paid re-ask and an editor's time): calibration/README.md.
QUOTE_DICE = 0.2
SENTENCE_DICE = 0.5
SENTENCE_WORDS = 5
RUN_WORDS = 3
# A stock phrase: at least STOCK_WORDS words, in more than one quote in STOCK_SHARE of a lens (and in two at least).
STOCK_WORDS = 4
STOCK_SHARE = 8

WORD = re.compile(r"[a-z0-9]+(?:['’.-][a-z0-9]+)*")
CLAUSE = re.compile(r"[a-z0-9]+(?:['’.-][a-z0-9]+)*|[:;()—–]| - ")  # words, and the marks that end a clause
SENTENCE_END = re.compile(r"(?<=[.!?])[\"”’)]*\s+(?=[\"“(`'A-Z0-9])")
TOOL = "<tool>"  # the reviewed tool's name, whatever it is
ENTRY = "<entry>"  # its entry price, as the fact sheet gives it
PLACEHOLDERS = (TOOL, ENTRY)
# Function words: they carry no point of their own, so sentence overlap is counted on the other words.
STOPWORDS = frozenset([
    "a", "about", "above", "after", "again", "against", "all", "also", "am", "an", "and", "any", "are", "as",
    "at", "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could",
    "did", "do", "does", "doing", "down", "during", "each", "either", "even", "ever", "every", "few", "for",
    "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers", "him", "his", "how",
    "however", "i", "if", "in", "into", "is", "it", "its", "itself", "just", "least", "less", "like", "may", "me",
    "might", "more", "most", "much", "must", "my", "neither", "no", "nor", "not", "now", "of", "off", "on",
    "once", "one", "only", "or", "other", "our", "ours", "out", "over", "own", "per", "quite", "rather", "same",
    "shall", "she", "should", "since", "so", "some", "still", "such", "than", "that", "the", "their", "theirs",
    "them", "then", "there", "these", "they", "this", "those", "though", "through", "thus", "to", "too", "under",
    "until", "up", "upon", "us", "very", "was", "we", "were", "what", "when", "where", "whether", "which",
    "while", "who", "whom", "whose", "why", "will", "with", "within", "without", "would", "yet", "you", "your",
    "yours", "it's", "that's", "there's", "what's", "i'm", "i'd", "i'll", "isn't", "doesn't", "don't", "won't",
    "can't",
])


def words(text: str) -> list[str]:
    return WORD.findall(text.lower().replace("’", "'"))


def sentences(text: str) -> list[str]:
    return [part.strip() for part in SENTENCE_END.split(text.strip()) if part.strip()]


def stem(word: str) -> str:
    """A word folded enough that "competitors" meets "competitor", "routing" meets "routes" and "team's" meets
    "team": a plural or a common suffix taken off (both sides of a comparison are folded alike)."""
    word = word.removesuffix("'s")
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("ing", "ed", "es", "ly", "er", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def house_phrases(personas: Iterable[Persona]) -> list[tuple[str, ...]]:
    """The signposts' fixed words, as word sequences: "The category is ..., and the direct competitors are ..."
    gives ("the", "category", "is") and ("and", "the", "direct", "competitors", "are"); a parenthesis (the
    signpost's alternatives) is left out. Longest first, so the longest match is masked."""
    found: set[tuple[str, ...]] = set()
    for persona in personas:
        for beat in persona.beats:
            for piece in re.sub(r"\([^)]*\)", " ", beat.signpost or "").split("..."):
                phrase = tuple(words(piece))
                if len(phrase) >= 2:
                    found.add(phrase)
    return sorted(found, key=lambda p: (-len(p), p))


@dataclass(frozen=True)
class Terms:
    """What a tool's fact sheet puts into any quote on it, read as placeholders: the words of its name (TOOL) and
    its entry price (ENTRY). Mentioning the same fact is not making the same point, and a paragraph reused for
    another tool with the name and price swapped is the same paragraph."""

    names: frozenset[str] = frozenset()
    entry: tuple[str, ...] = ()


def tool_terms(sheet: FactSheet | None, slug: str = "") -> Terms:
    names = set(words(sheet.name) if sheet else []) | set(words(slug.replace("-", " ")))
    return Terms(frozenset(word for word in names if word not in STOPWORDS and not word.isdigit()),
                 tuple(words(sheet.entry)) if sheet else ())


@dataclass(frozen=True)
class Prepared:
    """A quote cut into sentences, each as its words, the signposts masked (None), the tool's name and price as
    placeholders."""

    sentences: tuple[str, ...]
    tokens: tuple[tuple[str | None, ...], ...]

    def content(self, index: int) -> frozenset[str]:
        return frozenset(stem(w) for w in self.tokens[index]
                         if w is not None and w not in STOPWORDS and w not in PLACEHOLDERS)


def prepare(quote: str, house: Sequence[tuple[str, ...]] = (), terms: Terms = Terms()) -> Prepared:
    cut = sentences(quote)
    tokens = []
    for sentence in cut:
        found: list[str | None] = []
        for w in CLAUSE.findall(sentence.lower().replace("’", "'")):
            token = None if not w[0].isalnum() else TOOL if w in terms.names else w
            if not (token == TOOL and found and found[-1] == TOOL):  # "Hugging Face Inference Providers": one
                found.append(token)
        size = len(terms.entry)
        for index in range(len(found) - size, -1, -1) if size else ():
            if tuple(found[index:index + size]) == terms.entry:
                found[index:index + size] = [ENTRY]
        index = 0
        while index < len(found):
            for phrase in house:
                if tuple(found[index:index + len(phrase)]) == phrase:
                    found[index:index + len(phrase)] = [None] * len(phrase)
                    index += len(phrase) - 1
                    break
            index += 1
        tokens.append(tuple(found))
    return Prepared(tuple(cut), tuple(tokens))


@dataclass(frozen=True)
class Overlap:
    """How much two quotes say alike: their content words as a whole, the closest pair of sentences, and the
    longest run of words they share."""

    quote_dice: float  # content-word overlap of the two quotes: twice the shared words over the words of both
    dice: float  # the same, for the closest pair of sentences
    shared_words: int  # content words those two sentences share
    run: int  # content words in the longest run of words (outside signposts) both quotes have
    sentence: str  # the later quote's sentence that repeats the earlier one
    earlier: str  # the earlier quote's sentence it repeats
    phrase: str  # that run, as words

    @property
    def same(self) -> bool:
        return (self.quote_dice >= QUOTE_DICE or (self.dice >= SENTENCE_DICE and self.shared_words >= SENTENCE_WORDS)
                or self.run >= RUN_WORDS)


def _dice(one: frozenset[str], two: frozenset[str]) -> float:
    return 2 * len(one & two) / (len(one) + len(two)) if one and two else 0.0


def _run(a: Sequence[str | None], b: Sequence[str | None]) -> tuple[int, str]:
    """The run of words both have with the most content words in it, and how many; masked words never match."""
    left = [w if w is not None else f"\0a{i}" for i, w in enumerate(a)]
    right = [w if w is not None else f"\0b{i}" for i, w in enumerate(b)]
    best, phrase = 0, ""
    for block in SequenceMatcher(None, left, right, autojunk=False).get_matching_blocks():
        run = left[block.a:block.a + block.size]
        content = sum(w not in STOPWORDS and w not in PLACEHOLDERS for w in run)
        if content > best:
            best, phrase = content, " ".join(run)
    return best, phrase


def overlap(earlier: Prepared, later: Prepared) -> Overlap:
    if not later.sentences or not earlier.sentences:
        return Overlap(0.0, 0.0, 0, 0, "", "", "")
    best = (0.0, 0, 0, 0)  # dice, shared, later sentence, earlier sentence
    run, phrase, run_at = 0, "", (0, 0)
    for j, _ in enumerate(later.sentences):
        mine = later.content(j)
        for i, _ in enumerate(earlier.sentences):
            theirs = earlier.content(i)
            dice = _dice(mine, theirs)
            if (dice, len(mine & theirs)) > best[:2]:
                best = (dice, len(mine & theirs), j, i)
            size, words_ = _run(earlier.tokens[i], later.tokens[j])
            if size > run:
                run, phrase, run_at = size, words_, (j, i)
    whole = _dice(frozenset().union(*map(later.content, range(len(later.sentences)))),
                  frozenset().union(*map(earlier.content, range(len(earlier.sentences)))))
    dice, shared, j, i = best
    if run >= RUN_WORDS and not (dice >= SENTENCE_DICE and shared >= SENTENCE_WORDS):
        j, i = run_at  # the shared run is what is over the line: name its sentences
    return Overlap(round(whole, 3), round(dice, 3), shared, run, later.sentences[j], earlier.sentences[i], phrase)


def clip_sentence(sentence: str, limit: int = 160) -> str:
    return sentence if len(sentence) <= limit else sentence[: limit - 1].rsplit(" ", 1)[0] + " …"


# --- stock phrases across the catalogue ---------------------------------------------------------------------


@dataclass
class Stock:
    """A phrase that recurs under one lens: the quotes (by a label each, e.g. the pages) that use it."""

    lens: str
    phrase: str
    where: list[str] = field(default_factory=list)


def _grams(prepared: Prepared, smallest: int) -> set[tuple[str, ...]]:
    found: set[tuple[str, ...]] = set()
    for tokens in prepared.tokens:
        run: list[str] = []
        for token in [*tokens, None]:
            if token is None:
                for n in range(smallest, len(run) + 1):
                    for start in range(len(run) - n + 1):
                        gram = tuple(run[start:start + n])
                        if any(w not in STOPWORDS for w in gram) and not any(w in PLACEHOLDERS for w in gram):
                            found.add(gram)
                run = []
            else:
                run.append(token)
    return found


def stock_phrases(quotes: Iterable[tuple[str, str, str, Terms]], house: Sequence[tuple[str, ...]],
                  products: frozenset[str] = frozenset(), smallest: int = STOCK_WORDS,
                  share: int = STOCK_SHARE) -> dict[str, list[Stock]]:
    """Per lens, the phrases of ``smallest`` words or more (outside the signposts, without the tool's name) that
    more than one quote in ``share`` of that lens uses, and at least two. ``quotes``: (lens, where, quote, the
    reviewed tool's terms) with ``where`` naming the quote (its pages); a quote is counted once,
    however many pages show it. A phrase inside a longer one used by the same quotes is not listed again, nor a
    tool's name (``products``: the words of every fact sheet's name): naming a rival is a fact, not a stock
    phrase. Most used first, then alphabetical."""
    by_lens: dict[str, dict[tuple[str, Terms], list[str]]] = {}
    for lens, page, quote, terms in quotes:
        by_lens.setdefault(lens, {}).setdefault((quote, terms), []).append(page)
    report: dict[str, list[Stock]] = {}
    for lens, texts in sorted(by_lens.items()):
        users: dict[tuple[str, ...], list[str]] = {}
        for (quote, terms), pages in texts.items():
            for gram in _grams(prepare(quote, house, terms), smallest):
                users.setdefault(gram, []).append(", ".join(sorted(set(pages))))  # one quote, its pages
        floor = max(2, len(texts) // share + 1)  # more than one in `share`
        common = {gram: sorted(where) for gram, where in users.items()
                  if len(where) >= floor and not all(w in products or w in STOPWORDS for w in gram)}
        kept = [gram for gram, where in common.items()
                if not any(len(other) > len(gram) and common[other] == where and _inside(gram, other)
                           for other in common)]
        kept.sort(key=lambda gram: (-len(common[gram]), " ".join(gram)))
        report[lens] = [Stock(lens, " ".join(gram), common[gram]) for gram in kept]
    return report


def _inside(small: tuple[str, ...], big: tuple[str, ...]) -> bool:
    return any(big[i:i + len(small)] == small for i in range(len(big) - len(small) + 1))


def stock_report(report: dict[str, list[Stock]], counts: dict[str, int], pages: bool = True,
                 limit: int = 0) -> list[str]:
    """The stock-phrase report as lines: per lens, each phrase with how many quotes use it (and where)."""
    lines = []
    for lens, found in report.items():
        lines.append(f"{lens}: {len(found)} stock phrase{'s' if len(found) != 1 else ''} "
                     f"(in more than 1 quote in {STOCK_SHARE} of {counts.get(lens, 0)})")
        for stock in found[: limit or None]:
            lines.append(f"  {len(stock.where)}x \"{stock.phrase}\"")
            if pages:
                lines += [f"      {where}" for where in stock.where]
        if limit and len(found) > limit:
            lines.append(f"  ... and {len(found) - limit} more")
    return lines


# --- a page's flags -------------------------------------------------------------------------------------------


def page_flags(personas: Sequence[Persona], tools: dict[str, FactSheet],
               quotes: dict[str, str]) -> dict[str, list[str]]:
    """Per quote section of a page, the earlier quotes on the page it makes the same point as, each with the
    sentence that repeats it: the four lenses on each tool (the later lens in panel order is flagged) and each lens
    on the two tools (the second tool's quote is flagged). ``quotes``: section id -> the text the page shows."""
    house = house_phrases(personas)
    order = sorted(personas, key=lambda p: p.order)
    prepared = {section_id(p.lens, slug): prepare(quotes[section_id(p.lens, slug)], house, tool_terms(sheet, slug))
                for p in order for slug, sheet in tools.items() if quotes.get(section_id(p.lens, slug))}
    slugs = list(tools)
    pairs = [(section_id(one.lens, slug), section_id(two.lens, slug))
             for slug in slugs for i, one in enumerate(order) for two in order[i + 1:]]
    pairs += [(section_id(p.lens, slugs[0]), section_id(p.lens, slug)) for p in order for slug in slugs[1:]]
    flags: dict[str, list[str]] = {}
    for earlier, later in pairs:
        if earlier in prepared and later in prepared:
            found = overlap(prepared[earlier], prepared[later])
            if found.same:
                flags.setdefault(later, []).append(f"{describe_section(earlier)}: “{clip_sentence(found.sentence)}”")
    return flags
