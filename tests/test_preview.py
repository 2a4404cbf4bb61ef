"""The HTML preview of a hand-edited draft: laid out from the sidecar's sections, every edit in place, conflicts as
callouts, verdicts coloured, nothing loaded from elsewhere."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pipeline.assemble import Page
from pipeline.merge import line_owners
from pipeline.preview import find_conflicts
from pipeline.provenance import DraftFile
from tests.fakeserver import FakeChatServer, attentive

A, B = "hf-inference-providers", "mistral-3-small"
A_NAME, B_NAME = "Hugging Face Inference Providers Marketplace", "Mistral 3 Small (24B)"
EDITOR_NOTE = "Editor's note: the panel met twice this week, and the buyer changed her mind once."
SKEPTIC_ADDED = "Editor's addition: the skeptic checked the licence twice."
BUYER_ASIDE = "Editor's aside, below the buyer's quote on Hugging Face: procurement likes a single invoice."
MINE = "> “The editor's own builder take on Hugging Face: one client, many providers, one invoice.”"
NEW = "> “A newer generation of the builder quote, which the refresh would like to write.”"


# --- a small DOM, from the standard library's parser --------------------------------------------------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Node:
    def __init__(self, tag: str, attrs: dict[str, str], parent: Node | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Node | str] = []

    @property
    def classes(self) -> list[str]:
        return self.attrs.get("class", "").split()

    def all(self, tag: str | None = None, cls: str | None = None) -> list[Node]:
        found = []
        for child in self.children:
            if isinstance(child, Node):
                if (tag is None or child.tag == tag) and (cls is None or cls in child.classes):
                    found.append(child)
                found += child.all(tag, cls)
        return found

    def text(self, skip: str | None = None) -> str:
        """The text inside, leaving out elements with class ``skip``."""
        return "".join(child if isinstance(child, str) else "" if skip in child.classes else child.text(skip)
                       for child in self.children)

    def inside(self, cls: str) -> bool:
        node = self.parent
        while node is not None:
            if cls in node.classes:
                return True
            node = node.parent
        return False


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = self.current = Node("#document", {}, None)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {name: value or "" for name, value in attrs}, self.current)
        self.current.children.append(node)
        if tag not in VOID:
            self.current = node

    def handle_endtag(self, tag: str) -> None:
        node: Node | None = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data: str) -> None:
        self.current.children.append(data)


def dom_of(html: str) -> Node:
    builder = _Builder()
    builder.feed(html)
    return builder.root


def rows(dom: Node) -> dict[str, tuple[Node, Node]]:
    """Each lens row's (left, right) columns, by the lens heading's first word."""
    found = {}
    for row in dom.all("section", "lens"):
        heading = row.all("h3")[0].text().split()[0]
        pair = [child for child in row.all("div", "pair")[0].children if isinstance(child, Node)]
        columns = [node for node in pair if "column" in node.classes]
        assert len(columns) == 2, heading
        found[heading] = (columns[0], columns[1])
    return found


# --- driving the pipeline and the browser -------------------------------------------------------------------------


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "headless Chromium is missing: `make browser` installs Debian's chromium (make test does)"
    return found


def browser(*args: str) -> subprocess.CompletedProcess[str]:
    command = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def preview_of(cli, project: Path, out: Path) -> str:
    run = cli("preview", f"outputs/{A}-vs-{B}.md", "--out", str(out))
    assert run.code == 0, run.err
    return out.read_text()


def the_quote_line(text: str, name: str, lens_title: str) -> str:
    """The quote line on ``name`` in the lens's row of the scorecard."""
    row = text.split(f"### {lens_title}", 1)[1]
    return row.split(f"**{name}**:", 1)[1].split("\n> ", 1)[1].split("\n", 1)[0]


def diff3(ours: list[str], base: list[str], theirs: list[str], why: str) -> list[str]:
    """A conflict as a refresh writes it: each marker line alone, between blank lines."""
    return ["<<<<<<< your edit", "", *ours, "", "||||||| generated last time", "", *base, "", "=======", "",
            *theirs, "", f">>>>>>> generated now: {why}"]


def hand_edit(draft: Path) -> None:
    """A paragraph after the scorecard heading, a sentence in B's skeptic quote, a paragraph after A's buyer
    quote (apart from it, so in the frame), and a conflict on A's builder quote."""
    text = draft.read_text()
    buyer = the_quote_line(text, A_NAME, "Buyer")
    text = text.replace(buyer + "\n", f"{buyer}\n\n{BUYER_ASIDE}\n")
    skeptic = the_quote_line(text, B_NAME, "Skeptic")
    assert skeptic.endswith("”")
    text = text.replace(skeptic, skeptic[:-1] + " " + SKEPTIC_ADDED + "”")
    text = text.replace("## Reviewer scorecard\n", f"## Reviewer scorecard\n\n{EDITOR_NOTE}\n")
    lines = text.split("\n")
    start = lines.index(f"**{A_NAME}**: Ship", lines.index("### Builder · developer-experience engineer"))
    assert lines[start + 1] == "" and lines[start + 2].startswith("> “The core primitive")
    generated = lines[start:start + 3]
    lines[start:start + 3] = diff3([f"**{A_NAME}**: Skip", "", MINE], generated,
                                   [f"**{A_NAME}**: Ship", "", NEW], "personas/builder.toml changed")
    draft.write_text("\n".join(lines))


@pytest.mark.chromium
def test_a_hand_edited_draft_with_a_conflict_previews_in_place_in_chromium(fake: FakeChatServer, cli,
                                                                           project: Path, tmp_path: Path) -> None:
    assert cli("draft", A, B).code == 0
    draft = project / "outputs" / f"{A}-vs-{B}.md"
    hand_edit(draft)
    out = tmp_path / "preview.html"
    html = preview_of(cli, project, out)
    assert "<script" not in html and "http" not in html.split("<body>", 1)[1]

    dump = browser("--window-size=1280,3000", "--dump-dom", out.as_uri())
    assert dump.returncode == 0 and "</html>" in dump.stdout, dump.stderr[-2000:]
    dom = dom_of(dump.stdout)
    whole = dom.text()

    assert whole.count(EDITOR_NOTE) == 1, "the editor's paragraph after the scorecard heading is shown, once"
    note = next(p for p in dom.all("p") if p.text() == EDITOR_NOTE)
    assert not note.inside("lens") and not note.inside("cards") and note.inside("frame")
    assert whole.index("Reviewer scorecard") < whole.index(EDITOR_NOTE) < whole.index("Builder · developer")

    cards = dom.all("section", "cards")[0].all("article", "card")
    assert len(cards) == 2
    assert [card.all("h2")[0].text() for card in cards] == [A_NAME, B_NAME], "A's card left, B's right"
    for card in cards:
        stats = {s.all("span")[0].text(): s.all("b")[0].text() for s in card.all("div", "stat")}
        assert stats == {"Panel ship": "75%", "Community": "—", "Entry": "Free"}

    table = rows(dom)
    assert list(table) == ["Builder", "Skeptic", "Buyer", "Futurist"]
    left, right = table["Skeptic"]
    assert SKEPTIC_ADDED in right.text() and SKEPTIC_ADDED not in left.text()
    assert right.attrs["data-section"] == f"skeptic:{B}" and left.attrs["data-section"] == f"skeptic:{A}"
    assert right.all("blockquote")[0].text().strip().endswith(SKEPTIC_ADDED + "”"), "inside the quote, not after it"
    assert whole.count(SKEPTIC_ADDED) == 1

    left, right = table["Buyer"]
    aside = left.all("div", "after")
    assert len(aside) == 1 and aside[0].text().strip() == BUYER_ASIDE and BUYER_ASIDE not in right.text()
    assert whole.count(BUYER_ASIDE) == 1 and BUYER_ASIDE not in left.all("div", "quote")[0].text()

    left, right = table["Builder"]
    callouts = left.all("aside", "conflict")
    assert len(callouts) == 1 and not right.all("aside") and len(dom.all("aside")) == 1
    callout = callouts[0]
    assert "Unresolved conflict: pick one and delete the markers" in callout.text()
    parts = callout.all("div", "conflict-part")
    labels = [part.all("p", "conflict-label")[0].text() for part in parts]
    assert [label.split(" (")[0] for label in labels] == ["Your edit", "Generated last time", "Generated now"]
    assert "personas/builder.toml changed" in labels[2]
    assert "editor's own builder take" in parts[0].text() and "core primitive" not in parts[0].text()
    assert "The core primitive of Hugging Face" in parts[1].text() and "newer generation" in parts[2].text()
    assert all(len(part.all("blockquote")) == 1 for part in parts), "each part's Markdown is rendered"
    assert "newer generation" not in right.text() and "editor's own builder take" not in right.text()

    for lens, (left, right) in table.items():
        for column, name in ((left, A_NAME), (right, B_NAME)):
            verdicts = column.all("span", "verdict")
            assert verdicts, f"{lens} on {name}: no coloured verdict"
            for verdict in verdicts:
                assert verdict.classes[1:] == [verdict.text().lower()] and verdict.text() in ("Ship", "Skip")
    assert [v.text() for v in table["Builder"][0].all("span", "verdict")] == ["Skip", "Ship", "Ship"]
    assert [v.text() for v in table["Skeptic"][1].all("span", "verdict")] == ["Skip"]

    outside = dom.text(skip="conflict")
    for marker in ("<<<<<<<", ">>>>>>>", "|||||||", "=======", "<!--"):
        assert marker not in outside and marker not in whole, marker
    assert not any(q.all("blockquote") for q in dom.all("blockquote")), "no marker parsed as nested blockquotes"

    shot = tmp_path / "preview.png"
    browser("--window-size=1280,3000", f"--screenshot={shot}", out.as_uri())
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
    keep = Path(__file__).parent.parent / ".cache" / "preview-conflict.png"  # for a person to look at
    keep.parent.mkdir(exist_ok=True)
    shutil.copy(shot, keep)


def test_lines_an_editor_inserts_belong_to_the_section_they_are_in() -> None:
    base = Page("\n".join(["# Title", "", "*Category*", "", "## Tool A", "", "Description of A.", "",
                           "### Lens", "", "**Tool B**: Ship", "", "> “B's quote.”", "", "Footer."]),
                {"card:a": (2, 7), "lens:b": (10, 13)})

    def owners(lines: list[str]) -> dict[str, str]:
        return dict(zip(lines, line_owners(base, lines, find_conflicts(lines)), strict=True))

    inside = base.lines[:5] + ["", "Added inside A's card."] + base.lines[5:]
    assert owners(inside)["Added inside A's card."] == "card:a"
    between = base.lines[:8] + ["Added between the sections.", ""] + base.lines[8:]
    assert owners(between)["Added between the sections."] == "frame"
    before_b = base.lines[:10] + ["Added just above B's quote, apart from it.", ""] + base.lines[10:]
    assert owners(before_b)["Added just above B's quote, apart from it."] == "frame"
    continued = base.lines[:13] + ["> Added to B's quote, on its own line."] + base.lines[13:]
    assert owners(continued)["> Added to B's quote, on its own line."] == "lens:b"
    edited = [line.replace("B's quote.", "B's quote, rewritten.") for line in base.lines]
    assert owners(edited)["> “B's quote, rewritten.”"] == "lens:b"
    assert owners(edited)["### Lens"] == owners(edited)["Footer."] == "frame"

    conflict = diff3(["**Tool B**: Skip", "", "> “Mine.”"], base.lines[10:13], ["**Tool B**: Ship", "",
                     "> “New.”"], "why")
    replaced = base.lines[:10] + conflict + base.lines[13:]
    regions = find_conflicts(replaced)
    assert [(r.start, r.end) for r in regions] == [(10, 10 + len(conflict))]
    assert set(line_owners(base, replaced, regions)[10:10 + len(conflict)]) == {"lens:b"}, \
        "a conflict is one piece, in the section it replaced"
    old_form = base.lines[:13] + ["", "<!-- verdicts refresh: conflict in lens quote on b. Your text above is kept;",
                                  "> “New.”", "-->"] + base.lines[13:]
    regions = find_conflicts(old_form)
    assert [(r.start, r.end) for r in regions] == [(14, 17)]
    assert set(line_owners(base, old_form, regions)[14:17]) == {"lens:b"}, "the older note is about the text above"


def test_an_image_or_a_link_in_a_quote_loads_nothing(fake: FakeChatServer, cli, project: Path,
                                                     tmp_path: Path) -> None:
    """A model's link or image is re-asked (tests/test_hostile_output.py); an editor may still type one."""
    assert cli("draft", A, B).code == 0
    draft = project / "outputs" / f"{A}-vs-{B}.md"
    text = draft.read_text().replace("and that is the point.",
                                     "and that is the point ![x](http://example.invalid/a.png).", 1)
    text = text.replace("neither ahead of demand", "neither [ahead](https://example.invalid/l) of demand")
    draft.write_text(text)
    html = preview_of(cli, project, tmp_path / "preview.html")
    body = html.split("<body>", 1)[1]
    assert "<img" not in html and "http" not in body and "example.invalid" not in body
    left, _ = rows(dom_of(html))["Builder"]
    assert "and that is the point x." in left.text(), "the image shows as its alt text"
    assert "neither ahead of demand" in dom_of(html).text(), "the link shows as its text"


def test_a_refresh_conflict_previews_as_a_callout_in_its_column(fake: FakeChatServer, cli, project: Path,
                                                                tmp_path: Path) -> None:
    """Whatever form the refresh writes its conflicts in: the editor's text and the new generation, in B's column."""
    fake.responder = attentive
    assert cli("draft", A, B).code == 0
    draft = project / "outputs" / f"{A}-vs-{B}.md"
    builder = the_quote_line(draft.read_text(), B_NAME, "Builder")
    draft.write_text(draft.read_text().replace(builder, "> “The editor's own verdict on this model.”"))
    tool = project / "tools" / f"{B}.toml"
    tool.write_text(tool.read_text().replace('entry = "Free"', 'entry = "$0.10 / M tokens"'))
    assert cli("refresh").code == 5

    dom = dom_of(preview_of(cli, project, tmp_path / "preview.html"))
    left, right = rows(dom)["Builder"]
    assert "The editor's own verdict on this model." in right.text()
    callout = right.all("aside", "conflict")
    assert len(callout) == 1 and not left.all("aside")
    assert "Entry is $0.10 / M tokens, which sets the bar." in callout[0].text()
    assert "Generated now" in callout[0].text() and "Your edit" in callout[0].text()
    assert "verdicts refresh: conflict" not in dom.text(skip="conflict")
    cards = dom.all("article", "card")
    assert [c.all("h2")[0].text() for c in cards] == [A_NAME, B_NAME]
    assert {s.all("span")[0].text(): s.all("b")[0].text() for s in cards[1].all("div", "stat")}["Entry"] \
        == "$0.10 / M tokens"


def test_without_a_sidecar_the_preview_follows_headings_and_says_so(fake: FakeChatServer, cli, project: Path,
                                                                    tmp_path: Path) -> None:
    assert cli("draft", A, B).code == 0
    draft = project / "outputs" / f"{A}-vs-{B}.md"
    hand_edit(draft)
    draft.with_name(f"{A}-vs-{B}.provenance.json").unlink()
    assert DraftFile(draft).record is None
    dom = dom_of(preview_of(cli, project, tmp_path / "preview.html"))
    assert "no sidecar" in dom.all("p", "notice")[0].text()
    assert dom.text().count(EDITOR_NOTE) == 1
    assert [c.all("h2")[0].text() for c in dom.all("article", "card")] == [A_NAME, B_NAME]
    table = rows(dom)
    assert list(table) == ["Builder", "Skeptic", "Buyer", "Futurist"]
    assert len(table["Builder"][0].all("aside", "conflict")) == 1 and not table["Builder"][1].all("aside")
    assert SKEPTIC_ADDED in table["Skeptic"][1].text() and BUYER_ASIDE in table["Buyer"][0].text()
    assert "<<<<<<<" not in dom.text(skip="conflict")


def test_conflict_blocks_are_read_alike_with_labels_or_without_nested_or_unclosed() -> None:
    """The one reader of conflict blocks (``stale``, ``check``, ``refresh`` and the preview use it): bare marks are
    a block; a block inside another's part is part of it; a <<<<<<< that nothing closes is reported on its own line
    and does not hide the block after it; a block without ======= is still a block."""
    from pipeline.merge import MISSING_END, UNLABELLED, unresolved

    bare = ["<<<<<<<", "mine", "|||||||", "before", "=======", "theirs", ">>>>>>>"]
    nested = ["<<<<<<< your edit: builder quote on b", *bare, "=======", "new", ">>>>>>> generated now"]
    lines = ["# Title", *bare, "", *nested, "", "<<<<<<< your edit: x", "text", "",
             "<<<<<<<", "only mine", ">>>>>>>   trailing words "]
    blocks = unresolved(lines)
    assert [(b.start, b.end, b.what, b.complete) for b in blocks] == [
        (1, 8, UNLABELLED, True), (9, 20, "builder quote on b", True), (21, 22, MISSING_END, False),
        (24, 27, UNLABELLED, True)]
    assert (blocks[0].editor, blocks[0].base, blocks[0].generated) == (("mine",), ("before",), ("theirs",))
    assert blocks[1].editor == tuple(bare) and blocks[1].generated == ("new",)
    assert blocks[3].generated is None and blocks[3].labels[2] == "trailing words"
    assert [(r.start, r.end) for r in find_conflicts(lines)] == [(1, 8), (9, 20), (24, 27)], \
        "the preview shows the same blocks; the unclosed marker line is shown as it is"
    assert unresolved(["<<<<<<<<", "========", ">>>>>>>>"]) == [], "eight marks are no marker"
