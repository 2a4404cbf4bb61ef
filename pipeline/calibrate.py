"""The ``calibrate`` command: how the lens checks judge a labelled corpus of quotes.

The corpus (``calibration/``) holds quotes that stand-in models wrote for our rendered prompts
(``corpus/*.jsonl``: tool, lens, verdict, quote), fluent paragraphs that make no lens's points (``junk`` in a
file's name), and the fact sheets of the tools they review (``tools/``). From them come the labels:

- on-beat: a quote checked as the lens it was written for; should be accepted;
- off-lens: a quote checked as each other lens; should be refused;
- junk: a paragraph that makes no lens's points, checked as every lens; should be refused;
- too long: an on-beat quote with another quote's sentences added past the word limit; should be refused;
- two paragraphs: an on-beat quote split by a blank line; should be refused;
- published: the reference pages' quotes, when ``../shared/reference`` is there; should be accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError, parse_json
from .load import FactSheet, Persona, load_tool
from .validate import quote_problems

# What each label should get from the checks, and the share of the corpus that must get it.
EXPECTED = {"on-beat": True, "off-lens": False, "junk": False, "too long": False, "two paragraphs": False,
            "published": True}
TARGET = {"on-beat": 0.95, "off-lens": 0.95, "junk": 0.95, "too long": 1.0, "two paragraphs": 1.0, "published": 1.0}


@dataclass(frozen=True)
class Sample:
    label: str
    lens: str  # the lens it is checked as
    tool: str
    quote: str
    source: str  # which file (and line) it came from


@dataclass
class Result:
    """Per lens and label: how many samples got what their label expects, and the ones that did not."""

    counts: dict[tuple[str, str], list[int]] = field(default_factory=dict)  # (lens, label) -> [right, total]
    misses: list[tuple[Sample, list[str]]] = field(default_factory=list)

    def add(self, sample: Sample, problems: list[str]) -> None:
        right = (not problems) == EXPECTED[sample.label]
        tally = self.counts.setdefault((sample.lens, sample.label), [0, 0])
        tally[0] += right
        tally[1] += 1
        if not right:
            self.misses.append((sample, problems))

    def uncalibrated(self) -> list[str]:
        """Lenses the corpus has no on-beat quote for (a lens just added): nothing to hold them to yet."""
        return sorted({lens for lens, _ in self.counts} - {lens for lens, label in self.counts if label == "on-beat"})

    def failing(self) -> list[str]:
        """Each (lens, label) below its target, in words; a lens with no quotes written for it is not judged."""
        new = set(self.uncalibrated())
        return [f"{lens} {label}: {right}/{total} below {TARGET[label]:.0%}"
                for (lens, label), (right, total) in sorted(self.counts.items())
                if lens not in new and right < TARGET[label] * total]

    def table(self, lenses: list[str]) -> list[str]:
        labels = [label for label in EXPECTED if any(key[1] == label for key in self.counts)]
        verb = {True: "accepted", False: "refused"}
        header = ["lens", *(f"{label} {verb[EXPECTED[label]]}" for label in labels)]
        rows = [[lens, *(_cell(self.counts.get((lens, label))) for label in labels)] for lens in lenses]
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                for row in [header, *rows]]


def _cell(tally: list[int] | None) -> str:
    if not tally:
        return "-"
    right, total = tally
    return f"{right}/{total} ({100 * right / total:.0f}%)"


def read_corpus(directory: Path) -> list[tuple[str, str, str, str]]:
    """(file and line, tool, lens, quote) for every line of every corpus file; junk files' names start so."""
    rows = []
    files = sorted((directory / "corpus").glob("*.jsonl"))
    if not files:
        raise InputError(directory / "corpus", None, "no corpus files (*.jsonl)")
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                entry = parse_json(line)
                rows.append((f"{path.name} line {number}", str(entry["tool"]), str(entry["lens"]), str(entry["quote"])))
            except (ValueError, KeyError, TypeError) as exc:
                raise InputError(path, f"line {number}", f"not a corpus entry ({exc})") from None
    return rows


def samples(directory: Path, personas: list[Persona], published: dict[tuple[str, str], str] | None = None,
            names: dict[str, str] | None = None) -> list[Sample]:
    """Every labelled sample the corpus gives. ``published``: (lens, tool name) -> quote; ``names``: tool name ->
    slug, to find a published quote's fact sheet."""
    lenses = {p.lens: p for p in personas}
    out: list[Sample] = []
    on_beat: list[tuple[str, str, str, str]] = []
    for source, tool, lens, quote in read_corpus(directory):
        if source.startswith("junk"):  # it makes no lens's points: every lens must refuse it
            out += [Sample("junk", other, tool, quote, source) for other in lenses]
        elif lens in lenses:
            on_beat.append((source, tool, lens, quote))
    for index, (source, tool, lens, quote) in enumerate(on_beat):
        out.append(Sample("on-beat", lens, tool, quote, source))
        out += [Sample("off-lens", other, tool, quote, source) for other in lenses if other != lens]
        limit = lenses[lens].max_words
        filler = on_beat[(index + 1) % len(on_beat)][3].split()
        words = quote.split()
        out.append(Sample("too long", lens, tool, " ".join(words + filler)[: 20 * limit]
                          if len(words) + len(filler) > limit else " ".join(words + filler * 3), source))
        sentences = re.split(r"(?<=[.!?]) ", quote, maxsplit=1)
        if len(sentences) == 2:
            out.append(Sample("two paragraphs", lens, tool, "\n\n".join(sentences), source))
    for (lens, name), quote in sorted((published or {}).items()):
        if lens in lenses:
            out.append(Sample("published", lens, (names or {}).get(name, ""), quote, "reference pages"))
    return out


def run(directory: Path, personas: list[Persona], published: dict[tuple[str, str], str] | None = None) -> Result:
    sheets = sheets_of(directory)
    names = {sheet.name: slug for slug, sheet in sheets.items()}
    lenses = {p.lens: p for p in personas}
    result = Result()
    for sample in samples(directory, personas, published, names):
        result.add(sample, quote_problems(lenses[sample.lens], sample.quote, sheets.get(sample.tool)))
    return result


def report(result: Result, personas: list[Persona], misses: int = 10) -> list[str]:
    lines = result.table([p.lens for p in personas])
    failing = result.failing()
    lines.append("calibration holds" if not failing else "calibration FAILS: " + "; ".join(failing))
    if result.uncalibrated():
        lines.append(f"not calibrated, no quotes in the corpus were written for: {', '.join(result.uncalibrated())} "
                     "(add some to calibration/corpus/)")
    for sample, problems in result.misses[:misses]:
        got = "accepted" if not problems else "refused: " + "; ".join(problems)
        lines.append(f"  {sample.label} as {sample.lens}, {sample.tool} ({sample.source}): {got}")
    if len(result.misses) > misses:
        lines.append(f"  ... and {len(result.misses) - misses} more")
    return lines


def reference_quotes(root: Path, personas: list[Persona]) -> dict[tuple[str, str], str]:
    """(lens, tool name) -> quote from the published pages beside the project, when they are there. A page shows
    its panel's quotes row by row, A then B, in panel order: the persona files say which lens each row is, and a
    page with another number of rows than the panel has is not read."""
    directory = root.parent / "shared" / "reference"
    quotes: dict[tuple[str, str], str] = {}
    if not directory.is_dir():
        return quotes
    order = [persona.lens for persona in personas for _ in range(2)]
    for page in sorted(directory.glob("*.txt")):
        lines = page.read_text(encoding="utf-8").splitlines()
        title = lines[1] if len(lines) > 1 else ""
        names = title.split(" vs ")
        published = [line.strip()[1:-1] for line in lines if line.startswith("“")]
        if len(names) != 2 or len(published) != len(order):
            continue
        for index, (lens, quote) in enumerate(zip(order, published, strict=True)):
            quotes[(lens, names[index % 2])] = quote
    return quotes


def sheets_of(directory: Path) -> dict[str, FactSheet]:
    return {path.stem: load_tool(directory, path.stem) for path in sorted((directory / "tools").glob("*.toml"))}
