"""An editor's ordinary week: the surprises an editor met, each pinned down by a test."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.fakeserver import FakeChatServer, synthetic

A, B = "hf-inference-providers", "mistral-3-small"


def signed(mark: str):
    """A responder whose quotes carry ``mark``: which server wrote a quote shows on the page."""

    def respond(request: dict) -> str:
        reply = json.loads(synthetic(request))
        reply["quote"] = reply["quote"].replace(" and that is the point.", f" and that is the point {mark}.")
        return json.dumps(reply)

    return respond


def test_each_server_gets_its_own_cache_entries(cli, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Item 1: the endpoint's address is part of the cache key and of the sidecar."""
    with FakeChatServer() as first, FakeChatServer() as second:
        first.responder, second.responder = signed("(server one)"), signed("(server two)")
        monkeypatch.setenv("VERDICTS_BASE_URL", first.base_url)
        assert cli("draft", A, B).code == 0
        page = project / "outputs" / f"{A}-vs-{B}.md"
        assert "(server one)" in page.read_text() and len(first.history) == 8

        monkeypatch.setenv("VERDICTS_BASE_URL", second.base_url)
        run = cli("draft", A, B, "--force")  # --force for the page only: the cache needs nothing
        assert run.code == 0, run.err
        assert len(second.history) == 8, "the other server's replies are not reused"
        assert "(server two)" in page.read_text() and "(server one)" not in page.read_text()
        sidecar = json.loads(page.with_name(f"{A}-vs-{B}.provenance.json").read_text())
        assert sidecar["sections"][f"builder:{A}"]["settings"]["server"] == second.base_url.rstrip("/")

        monkeypatch.setenv("VERDICTS_BASE_URL", first.base_url)
        assert cli("draft", A, B, "--force").code == 0
        assert len(first.history) == 8, "back on the first server, its cached replies serve again"
        assert "(server one)" in page.read_text()


def test_no_cache_and_forget_send_again(fake: FakeChatServer, cli, project: Path) -> None:
    """Item 1: --no-cache sends every request and overwrites the entries; forget drops a draft's or a tool's."""
    assert cli("draft", A, B).code == 0 and len(fake.history) == 8
    fake.responder = signed("(second take)")
    run = cli("draft", A, B, "--force", "--no-cache")
    assert run.code == 0 and len(fake.history) == 16 and "8 requests, 0 cache hits" in run.out
    assert cli("draft", A, B, "--force").code == 0 and len(fake.history) == 16, "the overwritten entries serve"
    page = project / "outputs" / f"{A}-vs-{B}.md"
    assert "(second take)" in page.read_text()

    run = cli("forget", B)
    assert run.code == 0 and "Forgot 4 cached reviews" in run.out
    assert cli("draft", A, B, "--force").code == 0 and len(fake.history) == 20, "only the tool's four"
    run = cli("forget", f"outputs/{A}-vs-{B}.md")
    assert run.code == 0 and "Forgot 8 cached reviews" in run.out
    assert cli("forget", "no-such-tool").code == 2


def test_a_draft_path_is_the_projects_not_the_current_directorys(fake: FakeChatServer, cli, project: Path,
                                                                 tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Item 2: with --root, outputs/x.md names the project's draft even when the current directory has one."""
    assert cli("draft", A, B).code == 0
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "outputs").mkdir(parents=True)
    decoy = elsewhere / "outputs" / f"{A}-vs-{B}.md"
    decoy.write_text("an unrelated file that happens to share the name\n")
    monkeypatch.chdir(elsewhere)
    sheet = project / "tools" / f"{B}.toml"
    sheet.write_text(sheet.read_text().replace('entry = "Free"', 'entry = "$0.10 per hour"'))
    for command in (["refresh", f"outputs/{A}-vs-{B}.md"], ["stale", f"outputs/{A}-vs-{B}.md"],
                    ["preview", f"outputs/{A}-vs-{B}.md", "--out", str(tmp_path / "p.html")]):
        cli(*command)
        assert decoy.read_text() == "an unrelated file that happens to share the name\n", command
    assert "$0.10 per hour" in (project / "outputs" / f"{A}-vs-{B}.md").read_text()
    assert os.listdir(elsewhere / "outputs") == [decoy.name]


def page_of(project: Path) -> Path:
    return project / "outputs" / f"{A}-vs-{B}.md"


def test_panel_ship_follows_the_verdicts_on_the_page(fake: FakeChatServer, cli, project: Path) -> None:
    """Item 7: an editor flips a verdict; the card's panel ship follows, with no request."""
    assert cli("draft", A, B).code == 0
    page = page_of(project)
    text = page.read_text()
    a_name = "Hugging Face Inference Providers Marketplace"
    assert text.count("- Panel ship: **75%**") == 2 and f"**{a_name}**: Skip" in text
    page.write_text(text.replace(f"**{a_name}**: Skip", f"**{a_name}**: Ship"))
    run = cli("stale")
    assert run.code == 1 and f"card of {A}: panel ship follows the verdicts on the page" in run.out
    assert f"card of {B}" not in run.out
    sent = len(fake.history)
    assert cli("refresh").code == 0 and len(fake.history) == sent, "re-rendering a card sends nothing"
    text = page.read_text()
    assert text.count("- Panel ship: **100%**") == 1 and text.count("- Panel ship: **75%**") == 1
    assert f"**{a_name}**: Ship" in text and f"**{a_name}**: Skip" not in text, "the editor's verdict stays"
    assert cli("stale").code == 0


def test_a_pinned_card_still_takes_a_new_panel_ship(fake: FakeChatServer, cli, project: Path) -> None:
    """Item 7: pinning a card keeps its text, not a panel ship that no longer matches the panel."""
    assert cli("draft", A, B).code == 0
    page = page_of(project)
    page.write_text(page.read_text().replace("A routing layer from Hugging Face", "Hugging Face's routing layer"))
    assert cli("pin", f"{A}-vs-{B}", f"card:{A}").code == 0
    operator = project / "personas" / "operator.toml"
    operator.write_text((project / "personas" / "builder.toml").read_text().replace("order = 1", "order = 5")
                        .replace('title = "Builder"', 'title = "Operator"'))
    assert cli("refresh").code == 0
    text = page.read_text()
    card_a = text.split("## Mistral 3 Small")[0]
    assert "Hugging Face's routing layer" in card_a, "the pinned card keeps the editor's text"
    assert "- Panel ship: **80%**" in card_a, "four of five reviewers ship"


def test_community_votes_come_from_a_votes_file(fake: FakeChatServer, cli, project: Path) -> None:
    """Item 8: votes per comparison in outputs/<a>-vs-<b>.votes.toml; a new count re-renders only the cards,
    and an editor's edit to one figure never conflicts with a change to another."""
    votes = project / "outputs" / f"{A}-vs-{B}.votes.toml"
    votes.parent.mkdir(parents=True, exist_ok=True)
    votes.write_text(f"# exported by the poll\n{A} = 132\n{B} = 88\n")
    assert cli("draft", A, B).code == 0
    page = page_of(project)
    text = page.read_text()
    assert "- Community: **60%**" in text and "- Community: **40%**" in text
    # The editor annotates the entry figure of B; the poll exports new counts.
    page.write_text(text.replace("- Entry: **Free**\n\nAn open-weight",
                                 "- Entry: **Free** (weights only)\n\nAn open-weight"))
    votes.write_text(f"{A} = 100\n{B} = 300\n")
    run = cli("stale")
    assert run.code == 1 and f"card of {B}: outputs/{A}-vs-{B}.votes.toml changed" in run.out
    assert "quote on" not in run.out, "votes feed no prompt"
    sent = len(fake.history)
    assert cli("refresh").code == 0 and len(fake.history) == sent
    text = page.read_text()
    assert "- Community: **25%**" in text and "- Community: **75%**" in text
    assert "- Entry: **Free** (weights only)" in text and "<<<<<<<" not in text
    votes.write_text(f"{A} = 1\nsomeone-else = 2\n")
    run = cli("stale")
    assert run.code == 2 and f"{A}-vs-{B}.votes.toml: someone-else: unknown key" in run.err


def failing_for(lens: str, tool: str, reply: str):
    """``synthetic``, except that one lens on one tool always answers ``reply``."""
    from tests.fakeserver import lens_and_tool

    def respond(request: dict) -> str:
        return reply if lens_and_tool(request) == (lens, tool) else synthetic(request)

    return respond


B_NAME = "Mistral 3 Small (24B)"


def test_one_invalid_lens_leaves_a_placeholder_and_refresh_asks_only_for_it(fake: FakeChatServer, cli,
                                                                           project: Path) -> None:
    """Item 9: the page is written with a visible placeholder; exit 4; refresh retries only the missing one."""
    fake.responder = failing_for("skeptic", B_NAME, "not json at all")
    run = cli("draft", A, B)
    assert run.code == 4 and f"skeptic review of {B}" in run.err and f"accept {A}-vs-{B} SECTION" in run.err
    assert len(fake.history) == 7 + 3
    text = page_of(project).read_text()
    placeholder = text.split(f"**{B_NAME}**: no verdict yet", 1)[1].split("\n\n")[1]
    assert placeholder.startswith("> **Missing skeptic quote.**") and "not a JSON object" in placeholder
    assert f"failed/{B}--skeptic.json" in placeholder and f"accept {A}-vs-{B} skeptic:{B}" in placeholder
    assert "- Panel ship: **100%**" in text.split("## Reviewer scorecard")[0], "three verdicts, all ship"
    run = cli("stale")
    assert run.code == 1 and f"skeptic quote on {B}: no valid review yet" in run.out

    fake.responder = synthetic
    sent = len(fake.history)
    run = cli("refresh")
    assert run.code == 0, run.out + run.err
    assert len(fake.history) == sent + 1, "only the missing review is asked for"
    text = page_of(project).read_text()
    assert "Missing skeptic quote" not in text and f"**{B_NAME}**: Skip" in text
    assert cli("stale").code == 0


def test_accept_takes_a_kept_reply_as_it_is(fake: FakeChatServer, cli, project: Path) -> None:
    """Item 9: an editor accepts a reply that broke the rules (too short, say) instead of asking again."""
    short = json.dumps({"verdict": "ship", "quote": "Short, but the editor likes it."})
    fake.responder = failing_for("buyer", B_NAME, short)
    assert cli("draft", A, B).code == 4
    sent = len(fake.history)
    assert cli("accept", f"{A}-vs-{B}", f"builder:{B}").code == 2, "that quote is not missing"
    run = cli("accept", f"outputs/{A}-vs-{B}.md", f"buyer:{B}")
    assert run.code == 0, run.out + run.err
    assert len(fake.history) == sent, "accepting sends nothing"
    text = page_of(project).read_text()
    assert "> “Short, but the editor likes it.”" in text and "Missing buyer quote" not in text
    assert cli("stale").code == 0


def test_an_empty_setting_reads_as_none_in_a_reason() -> None:
    """Low: "provider:  → auto" had a gap where the old value was empty."""
    from pipeline.provenance import changes

    reasons = changes({"settings": "old"}, {"settings": "new"}, {"provider": "", "model": "m"},
                      {"provider": "auto", "model": "m"})
    assert reasons == ["model settings changed (provider: (none) → auto)"]


def test_a_forecast_of_one_request_says_request() -> None:
    """Low: "1 requests" in the over-budget message."""
    from pipeline.costs import Forecast, check_budget
    from pipeline.errors import OverBudget
    from pipeline.settings import Settings

    with pytest.raises(OverBudget) as caught:
        check_budget(Settings(max_cost=0.001), Forecast(requests=1, cost=0.5))
    assert "($0.5000 forecast" not in caught.value.message and "(1 request)" in caught.value.message


def test_reviews_in_committed_drafts_are_reused_with_an_empty_cache(fake: FakeChatServer, cli, project: Path) -> None:
    """Issue 15, part 1: a fresh clone (empty cache) drafting a-vs-c pays nothing when a-vs-b and c-vs-d are there."""
    import shutil

    d = "fourth-tool"
    (project / "tools" / f"{d}.toml").write_text((project / "tools" / f"{B}.toml").read_text()
                                                 .replace('name = "Mistral 3 Small (24B)"', 'name = "Fourth Tool"'))
    c = "mistral-4b-edge"
    assert cli("draft", A, B).code == 0 and cli("draft", c, d).code == 0
    shutil.rmtree(os.environ["VERDICTS_CACHE_DIR"])
    sent = len(fake.history)
    run = cli("draft", A, c)
    assert run.code == 0, run.err
    assert len(fake.history) == sent, "every review came from the drafts under outputs/"
    assert "0 requests, 0 cache hits, 8 from outputs/" in run.out
    assert cli("draft", A, c, "--force").code == 0 and len(fake.history) == sent


def test_quotes_shows_each_lens_across_pages_raw_edited_or_divergent(fake: FakeChatServer, cli,
                                                                      project: Path) -> None:
    """Issue 15, part 3: `quotes a` lists each lens's text on every page that carries it."""
    c = "mistral-4b-edge"
    assert cli("draft", A, B).code == 0 and cli("draft", A, c).code == 0
    run = cli("quotes", A)
    assert run.code == 0 and f"{A} / skeptic: raw" in run.out
    assert f"outputs/{A}-vs-{B}.md (raw, served by unknown)" in run.out  # an endpoint names no provider
    assert f"outputs/{A}-vs-{c}.md (raw, served by unknown)" in run.out
    draft = page_of(project)
    text = draft.read_text()
    start = text.index("> “The category is crowded, and Hugging Face")
    draft.write_text(text[:start] + "> “An editor's sharper skeptic quote.”" + text[text.index("\n", start):])
    run = cli("quotes", A, "--json")
    skeptic = next(q for q in json.loads(run.out) if q["lens"] == "skeptic")
    assert skeptic["state"] == "divergent"
    assert {p["page"]: p["state"] for p in skeptic["pages"]} == {f"outputs/{A}-vs-{B}.md": "edited",
                                                                 f"outputs/{A}-vs-{c}.md": "raw"}
    assert cli("quotes", "no-such-tool").code == 2


def test_an_approved_quote_is_carried_into_a_new_page(fake: FakeChatServer, cli, project: Path) -> None:
    """Issue 15, part 2 (new pages): an editor's version of a review is the approved text for the next page."""
    e = "mistral-4b-edge"
    assert cli("draft", A, B).code == 0
    draft = page_of(project)
    text = draft.read_text()
    start = text.index("> “The category is crowded, and Hugging Face")
    approved = "An editor's sharper skeptic quote on the marketplace."
    draft.write_text(text[:start] + f"> “{approved}”" + text[text.index("\n", start):])
    run = cli("draft", A, e)
    assert run.code == 0
    assert f"Approved quotes carried from other drafts: skeptic quote on {A} from outputs/{A}-vs-{B}.md" in run.out
    new = project / "outputs" / f"{A}-vs-{e}.md"
    assert f"> “{approved}”" in new.read_text()
    sidecar = json.loads(new.with_name(f"{A}-vs-{e}.provenance.json").read_text())
    assert sidecar["sections"][f"skeptic:{A}"]["approved_from"] == f"outputs/{A}-vs-{B}.md"
    assert cli("stale").code == 0, "carrying an approved text makes nothing stale"
    quotes = {q["lens"]: q for q in json.loads(cli("quotes", A, "--json").out)}
    assert quotes["skeptic"]["state"] == "approved", "both pages show the approved text"

    new.write_text(new.read_text().replace(approved, "A second, different approval."))
    (project / "tools" / "fifth-tool.toml").write_text((project / "tools" / f"{B}.toml").read_text()
                                                       .replace('name = "Mistral 3 Small (24B)"', 'name = "Fifth"'))
    run = cli("draft", A, "fifth-tool")
    assert run.code == 0 and f"Not carried: skeptic quote on {A}: editors approved 2 different texts" in run.out


def edit_skeptic(page: Path, text: str) -> None:
    """An editor rewrites the skeptic's quote on the marketplace (tool A) in ``page``."""
    lines = page.read_text().split("\n")
    at = next(i for i, line in enumerate(lines) if line.startswith("> “")
              and ("The category is crowded, and Hugging Face" in line or "sharper" in line))
    lines[at] = f"> “{text}”"
    page.write_text("\n".join(lines))


def test_an_approved_quote_reaches_older_pages_through_refresh(fake: FakeChatServer, cli, project: Path) -> None:
    """Issue 15, part 2 and 4: stale names a page showing an older text of an approved quote; refresh carries it
    in without a request, keeping the page's other hand edits, and says so in the pull request; a second,
    different approval is an editor's choice: exit 5 with both texts, nothing carried."""
    c, e = "mistral-4b-edge", "fifth-tool"
    (project / "tools" / f"{e}.toml").write_text((project / "tools" / f"{B}.toml").read_text()
                                                 .replace('name = "Mistral 3 Small (24B)"', 'name = "Fifth"'))
    assert cli("draft", A, B).code == 0 and cli("draft", A, c).code == 0
    older = project / "outputs" / f"{A}-vs-{c}.md"
    other_edit = "An editor's aside on the edge model, kept through every refresh."
    older.write_text(older.read_text().replace("\n## ", f"\n{other_edit}\n\n## ", 1))
    approved = "An editor's sharper skeptic quote on the marketplace."
    edit_skeptic(page_of(project), approved)

    assert cli("draft", A, e).code == 0
    assert f"> “{approved}”" in (project / "outputs" / f"{A}-vs-{e}.md").read_text()
    run = cli("stale")
    assert run.code == 1
    assert (f"outputs/{A}-vs-{c}.md: 1 stale section\n  skeptic quote on {A}: shows an "
            f"older text of this review than the one an editor approved in outputs/{A}-vs-{B}.md") in run.out, run.out
    assert "1 of 3 drafts stale" in run.out

    sent = len(fake.history)
    body = project / "pr-body.md"
    run = cli("refresh", "--pr-body", str(body))
    assert run.code == 0, run.out + run.err
    assert len(fake.history) == sent, "carrying an approved text needs no request"
    assert "no review was needed, nothing was sent or spent" in run.out and "  backend  model" not in run.out
    text = older.read_text()
    assert f"> “{approved}”" in text and other_edit in text and "The category is crowded, and Hugging Face" not in text
    pr = body.read_text()
    assert "Quotes carried over from other pages" in pr and f"approved in `outputs/{A}-vs-{B}.md`" in pr
    assert f"approved text carried from outputs/{A}-vs-{B}.md" in pr
    sidecar = json.loads(older.with_name(f"{A}-vs-{c}.provenance.json").read_text())
    assert sidecar["sections"][f"skeptic:{A}"]["approved_from"] == f"outputs/{A}-vs-{B}.md"
    assert cli("stale").code == 0, "every page now shows the approved text"

    second = "A second editor's different skeptic quote."
    edit_skeptic(older, second)
    run = cli("stale")
    assert run.code == 1 and "1 quote approved differently" in run.out
    before = {p.name: p.read_text() for p in (project / "outputs").glob("*.md")}
    run = cli("refresh")
    assert run.code == 5
    assert f"“{approved}” in outputs/{A}-vs-{B}.md" in run.out and f"“{second}” in outputs/{A}-vs-{c}.md" in run.out
    assert {p.name: p.read_text() for p in (project / "outputs").glob("*.md")} == before, "never a silent pick"
    quotes = {q["lens"]: q for q in json.loads(cli("quotes", A, "--json").out)}
    assert quotes["skeptic"]["state"] == "divergent"
    assert {p["page"]: p["state"] for p in quotes["skeptic"]["pages"]} == {
        f"outputs/{A}-vs-{B}.md": "edited", f"outputs/{A}-vs-{c}.md": "edited", f"outputs/{A}-vs-{e}.md": "carried"}


def test_a_pinned_quote_neither_lends_nor_receives_an_approved_text(fake: FakeChatServer, cli, project: Path) -> None:
    """Issue 15: a pin keeps a page's quote its own, in both directions."""
    c = "mistral-4b-edge"
    assert cli("draft", A, B).code == 0 and cli("draft", A, c).code == 0
    assert cli("pin", f"outputs/{A}-vs-{c}.md", f"skeptic:{A}").code == 0
    edit_skeptic(page_of(project), "An editor's sharper skeptic quote on the marketplace.")
    run = cli("stale")
    assert run.code == 0, f"the pinned page takes nothing: {run.out}"
    pinned = project / "outputs" / f"{A}-vs-{c}.md"
    edit_skeptic(pinned, "A page-specific skeptic quote, pinned on purpose.")
    run = cli("stale")
    assert run.code == 0 and "approved differently" not in run.out, "a pinned edit is no second approval"
