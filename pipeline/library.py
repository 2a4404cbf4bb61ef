"""The drafts as a review library: which text each page shows for each review, and which texts editors approved.

A quote section of a draft shows a review (its cache key in the sidecar). The page as generated showed either
the model's reply or an approved text carried from another draft; an editor may since have changed it by hand.
A hand-changed quote is that editor's approved text for the review, for as long as the review is current (its
key is what the project would plan now). One approved text is carried into every other page that shows the same
review; two different ones are a dispute for an editor to settle, never a silent pick.

Pinned sections keep their text on their own page: they neither lend nor receive an approved text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError
from .merge import BASE, END, MIDDLE, START, as_edited
from .project import Project
from .review import describe_section, is_card


def draft_lines(path: Path) -> list[str]:
    """The editor's draft as lines, whatever its line ends."""
    try:
        return path.read_text(encoding="utf-8").replace("\r\n", "\n").split("\n")
    except UnicodeDecodeError as exc:
        raise InputError(path, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})",
                         hint="Save the draft as UTF-8 (your editor's encoding setting), then run again.") from None


def shown_quote(lines: list[str]) -> str:
    """The quote a section shows: its blockquote lines, without the quotation marks the page adds. A section
    holding conflict markers shows no settled quote."""
    if any(line.startswith((START, BASE, END)) or line == MIDDLE for line in lines):
        return ""
    text = " ".join(line.lstrip(">").strip() for line in lines if line.startswith(">"))
    return text.strip().removeprefix("“").removesuffix("”").strip()


@dataclass(frozen=True)
class Shown:
    """One page's showing of one review."""

    page: str  # the draft, as the project shows its path
    key: str  # the review's cache key
    text: str  # what the draft shows now ("" when the editor deleted the quote or left a conflict in it)
    generated: str  # what the page showed as generated: the reply, or the approved text carried into it
    source: str = ""  # where the generated text was carried from, when it was
    pinned: bool = False

    @property
    def edited(self) -> bool:
        return self.text != self.generated

    @property
    def state(self) -> str:
        if self.edited:
            return "edited"
        return "carried" if self.source else "raw"


@dataclass(frozen=True)
class Dispute:
    """Two or more different approved texts for one review."""

    section: str
    texts: dict[str, list[str]]  # approved text -> the pages where an editor wrote it

    def __str__(self) -> str:
        both = "; ".join(f"“{text}” in {', '.join(pages)}" for text, pages in self.texts.items())
        return (f"{describe_section(self.section)}: editors approved {len(self.texts)} different texts: {both}. "
                "Keep one and make the other pages say the same (or pin a page that must differ)")


@dataclass
class Library:
    shown: dict[str, list[Shown]] = field(default_factory=dict)  # section id -> its showings across the drafts

    @classmethod
    def of(cls, project: Project) -> Library:
        library = cls()
        for path, record in project.recorded:
            try:
                lines = draft_lines(path)
            except InputError:  # stale and refresh report it; it lends nothing
                continue
            base = record.page
            edited = base if lines == base.lines else as_edited(base, lines)
            page = project.shown(path)
            for name, section in record.sections.items():
                if is_card(name) or not section.key or section.missing or name not in base.spans:
                    continue
                text = shown_quote(edited.section(name).split("\n")) if name in edited.spans else ""
                library.shown.setdefault(name, []).append(Shown(
                    page, section.key, text, shown_quote(base.section(name).split("\n")), section.approved_from,
                    name in record.pinned))
        return library

    def on(self, name: str, page: str) -> Shown | None:
        return next((s for s in self.shown.get(name, []) if s.page == page), None)

    def approvals(self, name: str, key: str, skip: str = "") -> dict[str, list[str]]:
        """The texts editors wrote by hand for this review, with their pages (``skip`` aside)."""
        found: dict[str, list[str]] = {}
        for shown in self.shown.get(name, []):
            if shown.key == key and shown.edited and shown.text and not shown.pinned and shown.page != skip:
                found.setdefault(shown.text, []).append(shown.page)
        return found

    def approved(self, name: str, key: str, skip: str = "") -> tuple[str, str] | Dispute | None:
        """The one approved text for this review and the page it was approved in; a dispute when editors
        approved different texts; None when no editor changed it."""
        texts = self.approvals(name, key, skip)
        if len(texts) > 1:
            return Dispute(name, texts)
        return next(((text, pages[0]) for text, pages in texts.items()), None)
