"""The drafts as a review library: which text each page shows for each review, and which texts editors approved.

A quote section of a draft shows a review (its cache key in the sidecar). The page as generated showed either
the model's reply or an approved text carried from another draft; an editor may since have changed it by hand.
A hand-changed quote is that editor's approved text for the review, for as long as the review is current (its
key is what the project would plan now). One approved text is carried into every other page that shows the same
review; two different ones are a dispute for an editor to settle, never a silent pick.

Pinned sections keep their text on their own page: they neither lend nor receive an approved text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError
from .merge import as_edited, marker
from .project import Project
from .provenance import DraftFile
from .review import describe_section, is_card


def shown_quote(lines: list[str]) -> str:
    """The quote a section shows: its blockquote lines, without the quotation marks the page adds. A section
    holding a conflict marker line (labelled or not) shows no settled quote."""
    if any(marker(line) for line in lines):
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
    section: str = ""  # the section id
    served_by: str = ""  # the provider that served the review, as the router named it; "" when unknown

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


def showings(draft: DraftFile, page: str) -> list[Shown]:
    """Every quote section of one draft as it shows a review; none when it has no sidecar. InputError when the
    draft or its sidecar cannot be read."""
    lines, record = draft.lines, draft.record
    if record is None:
        return []
    base = record.page
    edited = base if lines == base.lines else as_edited(base, lines)
    found = []
    for name, section in record.sections.items():
        if is_card(name) or not section.key or section.missing or name not in base.spans:
            continue
        text = shown_quote(edited.section(name).split("\n")) if name in edited.spans else ""
        found.append(Shown(page, section.key, text, shown_quote(base.section(name).split("\n")), section.approved_from,
                           name in record.pinned, name, section.served_by))
    return found


class Library:
    """Which text each draft shows for each review. A draft that is still the page as generated approves
    nothing, so it is read in full only when asked about (``on``, ``shown``): at 10,000 drafts, most are."""

    def __init__(self) -> None:
        self._pages: dict[str, tuple[DraftFile, list[Shown] | None]] = {}  # page -> the draft, its showings
        self._edits: dict[tuple[str, str], list[Shown]] = {}  # (section, key) -> hand-edited showings
        # Drafts that could not be read, or whose sidecar could not: they lend nothing (``stale`` and ``refresh``
        # report them), and ``quotes`` reports them too.
        self.unreadable: dict[str, InputError] = {}

    @classmethod
    def of(cls, project: Project, drafts: list[Path] | None = None,
           as_generated: Callable[[DraftFile], bool] | None = None) -> Library:
        """``drafts``: every draft under outputs/, when the caller has listed them already; ``as_generated``: whether
        a draft is still the page as generated, when the caller remembers it (``stale``'s digests)."""
        library = cls()
        for path in project.all_drafts() if drafts is None else drafts:
            draft = project.draft_file(path)
            page = project.shown(path)
            try:
                lazy = as_generated(draft) if as_generated else draft.as_generated
            except InputError:
                lazy = False
            library._pages[page] = (draft, None)
            found = None if lazy else library._on_page(page)
            for shown in found or []:
                if shown.edited and shown.text and not shown.pinned:
                    library._edits.setdefault((shown.section, shown.key), []).append(shown)
        return library

    def _on_page(self, page: str) -> list[Shown]:
        draft, found = self._pages[page]
        if found is None:
            try:
                found = showings(draft, page)
            except InputError as error:
                found, self.unreadable[page] = [], error
            self._pages[page] = (draft, found)
        return found

    @property
    def shown(self) -> dict[str, list[Shown]]:
        """Section id -> its showings across the drafts, in the drafts' order."""
        every: dict[str, list[Shown]] = {}
        for page in self._pages:
            for shown in self._on_page(page):
                every.setdefault(shown.section, []).append(shown)
        return every

    def on(self, name: str, page: str) -> Shown | None:
        if page not in self._pages:
            return None
        return next((s for s in self._on_page(page) if s.section == name), None)

    @property
    def edited(self) -> bool:
        """Whether any draft shows a review as an editor changed it (then there may be texts to carry)."""
        return bool(self._edits)

    def approvals(self, name: str, key: str, skip: str = "") -> dict[str, list[str]]:
        """The texts editors wrote by hand for this review, with their pages (``skip`` aside)."""
        found: dict[str, list[str]] = {}
        for shown in self._edits.get((name, key), []):
            if shown.page != skip:
                found.setdefault(shown.text, []).append(shown.page)
        return found

    def approved(self, name: str, key: str, skip: str = "") -> tuple[str, str] | Dispute | None:
        """The one approved text for this review and the page it was approved in; a dispute when editors
        approved different texts; None when no editor changed it."""
        texts = self.approvals(name, key, skip)
        if len(texts) > 1:
            return Dispute(name, texts)
        return next(((text, pages[0]) for text, pages in texts.items()), None)


def approved_texts(project: Project, keys: dict[str, str], skip: Path) -> tuple[dict[str, tuple[str, str]], list[str]]:
    """For the sections in ``keys`` (section id -> the review's current cache key), the text an editor approved
    in another draft for the same review: (text, page) by section. Two different approved texts for one review
    are not chosen between: they come back as problems, for an editor."""
    library, chosen, problems = Library.of(project), {}, []
    for name, key in keys.items():
        approved = library.approved(name, key, skip=project.shown(skip))
        if isinstance(approved, Dispute):
            problems.append(f"{approved}; this page shows the model's reply until then")
        elif approved:
            chosen[name] = approved
    return chosen, problems
