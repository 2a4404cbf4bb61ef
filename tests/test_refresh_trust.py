"""A refresh an editor can trust unattended (issue 22): after a refresh that exits 0, ``stale`` finds nothing; an
approved quote is never reverted; one failing review does not sink the rest; ``accept`` is offline and free;
``check`` reports what is not publishable."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fakeserver import FakeChatServer, lens_and_tool, synthetic

A, B, C = "hf-inference-providers", "mistral-3-small", "mistral-4b-edge"
A_NAME, B_NAME = "Hugging Face Inference Providers Marketplace", "Mistral 3 Small (24B)"
CONTRARIAN = "Today you are in a contrarian mood."


def page(project: Path, a: str, b: str) -> Path:
    return project / "outputs" / f"{a}-vs-{b}.md"


def all_ship_unless_contrarian(request: dict) -> str:
    """Every lens ships, until a persona's text tells the lens to be contrarian: then it skips, and says so."""
    reply = json.loads(synthetic(request))
    text = "\n".join(str(m.get("content", "")) for m in request.get("messages", []))
    reply["verdict"] = "skip" if CONTRARIAN in text else "ship"
    reply["quote"] += " On reflection, I would not." if CONTRARIAN in text else ""
    return json.dumps(reply)


def make_contrarian(project: Path, lens: str) -> None:
    persona = project / "personas" / f"{lens}.toml"
    text = persona.read_text(encoding="utf-8")
    assert 'voice = """\n' in text
    persona.write_text(text.replace('voice = """\n', f'voice = """\n{CONTRARIAN} ', 1), encoding="utf-8")


def test_a_refresh_that_flips_a_verdict_under_a_hand_edit_updates_panel_ship(fake: FakeChatServer, cli,
                                                                             project: Path) -> None:
    fake.responder = all_ship_unless_contrarian
    assert cli("draft", A, B).code == 0
    draft = page(project, A, B)
    text = draft.read_text()
    assert text.count("- Panel ship: **100%**") == 2
    # Any hand edit on the page, away from the verdicts and the cards' panel ship.
    draft.write_text(text.replace("An open-weight language model of 24 billion", "An open-weight model of 24 billion"))
    make_contrarian(project, "skeptic")

    run = cli("refresh")
    assert run.code == 0, run.out + run.err
    text = draft.read_text()
    assert f"**{A_NAME}**: Skip" in text and f"**{B_NAME}**: Skip" in text
    assert text.count("- Panel ship: **75%**") == 2, "the cards follow the new verdicts on the page"
    assert "An open-weight model of 24 billion" in text, "the hand edit is kept"
    stale = cli("stale")
    assert stale.code == 0, stale.out


def quote_line(text: str, name: str, lens_title: str) -> str:
    """The quote line on ``name`` in the lens's row of the scorecard."""
    row = text.split(f"### {lens_title}", 1)[1]
    return row.split(f"**{name}**:", 1)[1].split("\n> ", 1)[1].split("\n", 1)[0]


APPROVED = "“The editor's approved builder quote on the marketplace, polished by hand for every page.”"


def approve_across_pages(cli, project: Path) -> str:
    """A-vs-B and A-vs-C drafted; an editor rewrites the builder's quote on A in A-vs-C, and a refresh carries
    that approved text into A-vs-B."""
    assert cli("draft", A, B).code == 0 and cli("draft", A, C).code == 0
    draft_ac = page(project, A, C)
    text = draft_ac.read_text()
    raw = quote_line(text, A_NAME, "Builder")
    draft_ac.write_text(text.replace(raw, APPROVED))
    assert cli("refresh").code == 0
    assert quote_line(page(project, A, B).read_text(), A_NAME, "Builder") == APPROVED
    assert cli("stale").code == 0
    return raw


def test_a_regenerated_review_keeps_the_approved_text_on_every_page(fake: FakeChatServer, cli,
                                                                    project: Path) -> None:
    approve_across_pages(cli, project)
    # The builder's persona changes: its reviews are regenerated; the model happens to write the same text again.
    persona = project / "personas" / "builder.toml"
    persona.write_text(persona.read_text().replace('voice = """\n', 'voice = """\nYou are patient. ', 1))
    before = len(fake.history)
    run = cli("refresh")
    assert run.code == 0, run.out
    assert len(fake.history) > before, "the builder's reviews were asked again"
    for other in (B, C):
        assert quote_line(page(project, A, other).read_text(), A_NAME, "Builder") == APPROVED, \
            f"the approved text stays on {A}-vs-{other}"
    assert "updated" not in [line.split(": ")[-1] for line in run.out.splitlines() if f"builder quote on {A}" in line]
    stale = cli("stale")
    assert stale.code == 0, stale.out


def test_a_regeneration_that_differs_from_an_approved_text_goes_in_as_a_conflict(fake: FakeChatServer, cli,
                                                                                  project: Path) -> None:
    raw = approve_across_pages(cli, project)
    moody = "In a new mood."

    def answer(request: dict) -> str:
        reply = json.loads(synthetic(request))
        text = "\n".join(str(m.get("content", "")) for m in request.get("messages", []))
        if moody in text:
            reply["quote"] += " A new closing sentence, written after the persona changed."
        return json.dumps(reply)

    fake.responder = answer
    persona = project / "personas" / "builder.toml"
    persona.write_text(persona.read_text().replace('voice = """\n', f'voice = """\n{moody} ', 1))
    run = cli("refresh")
    assert run.code == 5, run.out
    for other in (B, C):
        text = page(project, A, other).read_text()
        assert APPROVED in text, f"the approved text is not reverted on {A}-vs-{other}"
        block = text[text.index("<<<<<<< "):text.index(">>>>>>> ")]
        assert f"builder quote on {A}" in block.split("\n", 1)[0]
        assert APPROVED in block and "A new closing sentence" in block
        assert raw not in block.split("=======")[1], "the new generation, not the old one, is offered"
    assert cli("stale").code == 1, "the conflicts wait for an editor"


def test_one_tool_failing_every_attempt_does_not_sink_the_rest_of_a_refresh(fake: FakeChatServer, cli,
                                                                             project: Path) -> None:
    fake.responder = all_ship_unless_contrarian
    for a, b in ((A, B), (A, C), (B, C)):
        assert cli("draft", a, b).code == 0
    untouched = {(a, b): page(project, a, b).read_text() for a, b in ((A, C), (B, C))}
    make_contrarian(project, "builder")  # every builder review is stale: three tools, three requests
    fake.failing["Mistral 4B Edge"] = 500  # every request about C fails, every attempt
    before = len(fake.history)
    body = project / "pr-body.md"
    run = cli("refresh", "--pr-body", str(body))

    assert run.code == 3, "not served: the backend's status, once everything else is done"
    sent = fake.history[before:]
    about = [lens_and_tool(r["json"]) for r in sent]
    assert about.count(("builder", "Mistral 4B Edge")) == 5, "transport_attempts tries, then the review is left"
    assert about.count(("builder", A_NAME)) == about.count(("builder", B_NAME)) == 1
    ab = page(project, A, B).read_text()
    assert "Missing builder quote" not in ab and "Today you are" not in ab
    assert f"**{A_NAME}**: Skip" in ab.split("### Builder", 1)[1].split("### Skeptic")[0], "the new review is in"
    for pair in ((A, C), (B, C)):
        text = page(project, *pair).read_text()
        assert text != untouched[pair], f"{pair} was written"
        row = text.split("### Builder", 1)[1].split("### Skeptic")[0]
        assert "> **Missing builder quote.** No reply: the backend failed:" in row
        assert f"`python -m pipeline refresh {pair[0]}-vs-{pair[1]}` asks again." in row
        assert "Traceback" not in text
    pr = body.read_text()
    assert "**Quotes not served**" in pr and "- builder quote on mistral-4b-edge:" in pr
    assert "builder quote on mistral-4b-edge: personas/builder.toml changed: missing: a placeholder, the backend " \
        "failed: builder review of mistral-4b-edge: HTTP 500" in run.out
    # The replies that came back are paid for and kept: a second refresh, with C served again, asks only for C.
    del fake.failing["Mistral 4B Edge"]
    before = len(fake.history)
    again = cli("refresh")
    assert again.code == 0, again.out + again.err
    assert [lens_and_tool(r["json"]) for r in fake.history[before:]] == [("builder", "Mistral 4B Edge")]
    assert cli("stale").code == 0


def test_accept_sends_nothing_needs_no_backend_and_check_honours_it(fake: FakeChatServer, cli, project: Path,
                                                                    monkeypatch) -> None:
    short = json.dumps({"verdict": "ship", "quote": "Short, but the editor likes it."})
    fake.responder = lambda request: short if lens_and_tool(request)[0] in ("buyer", "futurist") and \
        lens_and_tool(request)[1] == B_NAME else synthetic(request)
    assert cli("draft", A, B).code == 4, "two quotes missing: buyer and futurist on B"
    sent = len(fake.history)
    monkeypatch.delenv("VERDICTS_BASE_URL")  # no backend at all: accept works offline
    monkeypatch.setenv("VERDICTS_LOCAL_MODEL", str(project / "no-such-model.gguf"))
    run = cli("accept", f"{A}-vs-{B}", f"buyer:{B}")
    assert run.code == 0, run.out + run.err
    assert len(fake.history) == sent, "accepting sends nothing, not even for the other missing quote"
    text = page(project, A, B).read_text()
    assert "> “Short, but the editor likes it.”" in text and "Missing buyer quote" not in text
    assert "Missing futurist quote" in text, "the other placeholder waits for a refresh"
    stale = cli("stale")
    assert stale.code == 1 and f"futurist quote on {B}: no valid review yet" in stale.out
    assert f"buyer quote on {B}" not in stale.out
    check = cli("check")
    assert f"buyer quote on {B}" not in check.out, "check honours the accepted quote"


def test_check_reports_unsettled_conflicts_and_placeholders_as_stale_does(fake: FakeChatServer, cli,
                                                                         project: Path) -> None:
    fake.responder = lambda request: "not json at all" if lens_and_tool(request) == ("skeptic", B_NAME) \
        else synthetic(request)
    assert cli("draft", A, B).code == 4
    check = cli("check")
    assert check.code == 1, check.out
    assert f"outputs/{A}-vs-{B}.md: skeptic quote on {B}: a placeholder, not a quote:" in check.out
    assert "all good" not in check.out

    fake.responder = synthetic
    assert cli("refresh").code == 0 and cli("check").code == 0
    draft = page(project, A, B)
    text = draft.read_text()
    builder = quote_line(text, B_NAME, "Builder")
    assert "small enough" in builder
    draft.write_text(text.replace(builder, builder.replace("small enough", "simple enough")))
    make_contrarian(project, "builder")
    fake.responder = all_ship_unless_contrarian
    assert cli("refresh").code == 5
    check = cli("check")
    stale = cli("stale")
    assert check.code == stale.code == 1, check.out
    assert f"outputs/{A}-vs-{B}.md: line " in check.out
    assert f": an unresolved conflict about builder quote on {B}: keep the text you want" in check.out


def test_accept_on_a_draft_whose_fact_sheet_is_gone_is_one_error(fake: FakeChatServer, cli, project: Path) -> None:
    short = json.dumps({"verdict": "ship", "quote": "Short, but the editor likes it."})
    fake.responder = lambda request: short if lens_and_tool(request) == ("buyer", B_NAME) else synthetic(request)
    assert cli("draft", A, B).code == 4
    before = page(project, A, B).read_text()
    (project / "tools" / f"{A}.toml").rename(project / "tools" / "renamed.toml")
    run = cli("accept", f"{A}-vs-{B}", f"buyer:{B}")
    assert run.code == 2 and "Traceback" not in run.err, run.err
    assert f"tools/{A}.toml no longer exists" in run.err and run.err.count("error:") == 1
    assert page(project, A, B).read_text() == before


def test_a_model_that_is_not_there_stops_the_refresh_at_once(fake: FakeChatServer, cli, project: Path) -> None:
    """A 404 is every review's answer alike (a wrong model or server name): not a review to leave missing."""
    for a, b in ((A, B), (A, C)):
        assert cli("draft", a, b).code == 0
    pages = {p: p.read_text() for p in (project / "outputs").glob("*.md")}
    make_contrarian(project, "builder")
    fake.failing["Mistral 4B Edge"] = 404
    run = cli("refresh")
    assert run.code == 3 and "HTTP 404" in run.err and "Missing builder quote" not in "".join(
        p.read_text() for p in pages), run.out + run.err
    assert {p: p.read_text() for p in pages} == pages, "no page turned into placeholders"


def test_a_read_only_draft_with_nothing_to_refresh_is_not_in_the_way(fake: FakeChatServer, cli, project: Path) -> None:
    assert cli("draft", A, B).code == 0 and cli("draft", A, C).code == 0
    page(project, A, B).chmod(0o444)
    try:
        (project / "tools" / f"{C}.toml").write_text((project / "tools" / f"{C}.toml").read_text().replace(
            'entry = "', 'entry = "From ', 1))
        run = cli("refresh")
    finally:
        page(project, A, B).chmod(0o644)
    assert run.code == 0, run.out
    assert "not refreshed" not in run.out
    assert cli("stale").code == 0


def test_an_approved_text_waits_out_an_outage_and_stays(fake: FakeChatServer, cli, project: Path) -> None:
    """A regeneration that is not served never puts a placeholder against an editor's text: the text stays, the
    quote stays stale, and once the backend answers (the same reply) the approved text holds with no conflict."""
    approve_across_pages(cli, project)
    persona = project / "personas" / "builder.toml"
    persona.write_text(persona.read_text().replace('voice = """\n', 'voice = """\nYou are patient. ', 1))
    fake.failing[A_NAME] = 500
    run = cli("refresh")
    assert run.code == 3, run.out
    assert f"builder quote on {A}: personas/builder.toml changed: not served: the editor's text stays" in run.out
    for other in (B, C):
        text = page(project, A, other).read_text()
        assert quote_line(text, A_NAME, "Builder") == APPROVED and "<<<<<<<" not in text
    stale = cli("stale")
    assert stale.code == 1 and f"builder quote on {A}: personas/builder.toml changed" in stale.out
    del fake.failing[A_NAME]
    run = cli("refresh")
    assert run.code == 0, run.out
    for other in (B, C):
        text = page(project, A, other).read_text()
        assert quote_line(text, A_NAME, "Builder") == APPROVED and "<<<<<<<" not in text
    assert cli("stale").code == 0
