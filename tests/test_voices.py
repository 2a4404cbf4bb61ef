"""Issue 26: distinct voices. No two lenses argue the same point on a tool, stock phrases across the catalogue are
listed, and a quote a few words outside its range is the editor's to trim, not another paid request."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pipeline.load import load_personas, load_tool
from pipeline.sameness import house_phrases, overlap, prepare, stock_phrases, tool_terms
from pipeline.validate import length_note, quote_problems
from pipeline.voices import read_writers
from tests.fakeserver import SYNTHETIC, FakeChatServer, lens_and_tool, slug_of, synthetic

A, B, C = "hf-inference-providers", "mistral-3-small", "mistral-4b-edge"
CORPUS = Path(__file__).resolve().parent.parent / "calibration"
# A buyer quote whose stress test is the skeptic's "what kills it", nearly word for word (the case).
REPEATING_BUYER = (
    "The buyer for {name} is a small engineering team with a real budget line for developer tooling and a lead who "
    "signs off without a procurement cycle. The pricing is simple enough to forecast, and margins hold as long as "
    "usage grows faster than discounts. The moat is habit: once a team wires it into builds and dashboards, "
    "switching costs show up as lost weeks rather than line items. The stress test is a rival that bundles the same "
    "capability into a product teams already pay for, turning a standalone tool into a checkbox on someone else's "
    "pricing page."
)
FILLER_TEXT = ("Teams that tried it report the same thing in different words, and the numbers they share back that "
               "up across several months of use in production settings.")
FILLER = FILLER_TEXT.split(" ")


def of_length(quote: str, words: int) -> str:
    """``quote`` with neutral words added (or none) until it has exactly ``words`` words."""
    have = quote.split()
    while len(have) < words:
        have += FILLER[: words - len(have)]
    return " ".join(have).rstrip(".,") + "."


def last_user_message(request: dict[str, Any]) -> str:
    return str(request["messages"][-1]["content"])


def builder_of_length(words: int):
    """Synthetic replies, except the builder on A, whose quote has ``words`` words (and every builder beat)."""
    def answer(request: dict[str, Any]) -> str:
        lens, name = lens_and_tool(request)
        if lens == "builder" and slug_of(name).startswith("hugging-face"):
            quote = SYNTHETIC["builder"].format(name=name, slug=A)
            return json.dumps({"verdict": "ship", "quote": of_length(quote, words)})
        return synthetic(request)
    return answer


def test_a_172_word_quote_is_accepted_with_a_flag_and_no_reask(fake: FakeChatServer, cli, project: Path,
                                                                tmp_path: Path) -> None:
    fake.responder = builder_of_length(172)
    run = cli("draft", A, B)
    assert run.code == 0, run.err
    assert len(fake.history) == 8 and "0 re-asks" in run.out, "a near miss costs no round trip"
    assert (f"Near misses on length, accepted (trim or extend by hand):\n  builder quote on {A}: 172 words, 2 over "
            "the 170 the lens asks for: trim it") in run.out
    sidecar = json.loads((project / "outputs" / f"{A}-vs-{B}.provenance.json").read_text())
    assert sidecar["sections"][f"builder:{A}"]["notes"] == ["172 words, 2 over the 170 the lens asks for: trim it"]
    assert "notes" not in sidecar["sections"][f"skeptic:{A}"], "no empty field: old sidecars read the same"
    html = tmp_path / "preview.html"
    assert cli("preview", f"{A}-vs-{B}", "--out", str(html)).code == 0
    assert '<p class="flags length">Length: 172 words, 2 over the 170 the lens asks for: trim it</p>' \
        in html.read_text()
    assert cli("check").code == 0, "the accepted quote passes check as it stands"


def test_a_230_word_quote_is_reasked(fake: FakeChatServer, cli) -> None:
    fake.responder = builder_of_length(230)
    run = cli("draft", A, B)
    assert run.code == 4, "the model kept writing 230 words: a clear miss is re-asked, then a placeholder"
    asked = [(lens_and_tool(r["json"]), r["json"]) for r in fake.history]
    builder = [request for (lens, name), request in asked if lens == "builder" and slug_of(name).startswith("hugging")]
    assert len(builder) == 3 and len(fake.history) == 10
    assert "the quote has 230 words; it must have 90 to 170" in last_user_message(builder[1])


def test_the_near_miss_band_is_80_to_190_for_the_house_range(project: Path) -> None:
    builder = {p.lens: p for p in load_personas(project)}["builder"]
    quote = SYNTHETIC["builder"].format(name="Tool", slug="tool")
    for words, accepted, note in ((79, False, ""), (80, True, "80 words, 10 under the 90 the lens asks for"),
                                  (90, True, ""), (170, True, ""), (190, True, "190 words, 20 over the 170 the lens "
                                                                               "asks for: trim it"), (191, False, "")):
        text = of_length(quote, words) if words >= len(quote.split()) else " ".join(quote.split()[:words])
        problems = [p for p in quote_problems(builder, text) if "words" in p]
        assert (not problems) == accepted, (words, problems)
        assert length_note(builder, text) == note


def repeating_then(second: str | None, tool: str = "hugging-face"):
    """The buyer on A (or the tool whose name starts so) repeats the skeptic's point; asked again (the distinct
    re-ask), it answers ``second`` (or the same repeat when None)."""
    def answer(request: dict[str, Any]) -> str:
        lens, name = lens_and_tool(request)
        if lens == "buyer" and slug_of(name).startswith(tool):
            asked_again = "makes the same point" in last_user_message(request)
            quote = second if asked_again and second is not None else REPEATING_BUYER
            return json.dumps({"verdict": "ship", "quote": quote.format(name=name)})
        return synthetic(request)
    return answer


def test_a_review_that_makes_another_lenses_point_is_reasked_once_and_replaced(fake: FakeChatServer, cli,
                                                                               project: Path) -> None:
    fake.responder = repeating_then(SYNTHETIC["buyer"])
    run = cli("draft", A, B)
    assert run.code == 0, run.err
    assert len(fake.history) == 9 and "1 re-asks" in run.out
    reask = fake.history[-1]["json"]["messages"]
    assert reask[-2]["role"] == "assistant" and "The stress test is a rival that bundles" in reask[-2]["content"]
    assert 'the Skeptic (competitive analyst), already argued this about the same tool:\n"What kills it within 12 ' \
        'months is a rival that bundles' in reask[-1]["content"]
    assert 'Your sentence "The stress test is a rival that bundles' in reask[-1]["content"]
    page = (project / "outputs" / f"{A}-vs-{B}.md").read_text()
    assert "The stress test is a downturn" in page and "The stress test is a rival" not in page
    sidecar = json.loads((project / "outputs" / f"{A}-vs-{B}.provenance.json").read_text())
    assert "sameness" not in sidecar["sections"][f"buyer:{A}"]
    sent = len(fake.history)
    assert cli("draft", A, B, "--force").code == 0 and len(fake.history) == sent, "the new reply is the cached one"


def test_a_repeat_that_persists_is_flagged_never_passed_silently(fake: FakeChatServer, cli, project: Path,
                                                                 tmp_path: Path) -> None:
    fake.responder = repeating_then(None)
    run = cli("draft", A, B)
    assert run.code == 0, run.err
    assert len(fake.history) == 9, "asked once more, not again and again"
    assert "Same point twice (an editor should cut or rewrite one of them):\n" in run.out
    assert f"\n  buyer quote on {A} repeats the skeptic quote on {A}: “The stress test is a rival that bundles" \
        in run.out
    sidecar = json.loads((project / "outputs" / f"{A}-vs-{B}.provenance.json").read_text())
    assert sidecar["sections"][f"buyer:{A}"]["sameness"][0].startswith(f"skeptic quote on {A}: “The stress test")
    html = tmp_path / "preview.html"
    assert cli("preview", f"{A}-vs-{B}", "--out", str(html)).code == 0
    assert f'<p class="flags same">Same point as the skeptic quote on {A}: “The stress test is a rival' \
        in html.read_text()
    listed = cli("quotes", "--sameness")
    assert f"outputs/{A}-vs-{B}.md: buyer quote on {A} repeats the skeptic quote on {A}" in listed.out

    # A's reviews are settled now: a page with A and another tool asks only for the other tool, and re-asks nothing.
    again = cli("draft", A, C)
    assert again.code == 0 and len(fake.history) == 13 and "0 re-asks" in again.out
    assert f"buyer quote on {A} repeats the skeptic quote on {A}" in again.out, "still flagged on the new page"


def test_the_same_lens_on_the_two_tools_is_flagged_not_reasked(fake: FakeChatServer, cli, project: Path) -> None:
    """The fake writes one paragraph per lens with the tool's name swapped in: the second tool's quote says so."""
    run = cli("draft", A, B)
    assert run.code == 0 and len(fake.history) == 8 and "0 re-asks" in run.out
    sections = json.loads((project / "outputs" / f"{A}-vs-{B}.provenance.json").read_text())["sections"]
    for lens in ("builder", "skeptic", "buyer", "futurist"):
        assert sections[f"{lens}:{B}"]["sameness"][0].startswith(f"{lens} quote on {A}: “"), lens
        assert "sameness" not in sections[f"{lens}:{A}"]


def test_a_broken_distinct_template_stops_the_draft_before_any_request(fake: FakeChatServer, cli,
                                                                      project: Path) -> None:
    (project / "prompts" / "reask-distinct.j2").write_text("{{ persona.no_such_field }}")
    run = cli("draft", A, B)
    assert run.code == 2 and "prompts/reask-distinct.j2" in run.err and not fake.history


def test_signposts_the_tool_name_and_price_are_not_a_shared_point(project: Path) -> None:
    personas = load_personas(project)
    house = house_phrases(personas)
    sheet = load_tool(project, A)
    one = ("The moment of truth is `pip install x`, and Hugging Face Inference Providers answered at once for Free. "
           "Documentation is thin but honest.")
    two = ("The moment of truth is `hf login`, and Hugging Face Inference Providers answered at once for Free. "
           "Billing lands on one invoice at the end of the month.")
    assert not overlap(prepare(one, house, tool_terms(sheet, A)), prepare(two, house, tool_terms(sheet, A))).same
    three = two.replace("Billing lands", "Documentation is thin but honest, and billing lands")
    found = overlap(prepare(one, house, tool_terms(sheet, A)), prepare(three, house, tool_terms(sheet, A)))
    assert found.same and found.phrase == "documentation is thin but honest"


def test_quotes_sameness_lists_the_catalogues_stock_phrases_with_their_pages(fake: FakeChatServer, cli) -> None:
    assert cli("draft", A, B).code == 0 and cli("draft", A, C).code == 0
    run = cli("quotes", "--sameness")
    assert run.code == 0
    out = run.out
    futurist = out[out.index("  futurist: "):out.index("  skeptic: ")]
    assert futurist.startswith("  futurist: 8 stock phrases (in more than 1 quote in 8 of 3)")
    assert (f'    3x "once the tool is cheap and dull"\n        {A} on outputs/{A}-vs-{B}.md, {A} on '
            f"outputs/{A}-vs-{C}.md\n        {B} on outputs/{A}-vs-{B}.md\n        {C} on outputs/{A}-vs-{C}.md\n"
            ) in futurist
    assert "second-order effect" not in futurist, "a signpost is the house voice, not a stock phrase"
    data = json.loads(cli("quotes", "--sameness", "--json").out)
    phrase = next(s for s in data["stock_phrases"]["futurist"] if s["phrase"] == "once the tool is cheap and dull")
    assert phrase["quotes"] == 3 and len(phrase["pages"]) == 3
    assert cli("quotes", "--sameness").out == out, "deterministic"


def test_calibrate_reports_stock_phrases_of_a_folder_of_writers(cli, tmp_path: Path) -> None:
    writers = tmp_path / "writers"
    writers.mkdir()
    lines = [{"tool": tool, "lens": "skeptic", "verdict": "skip",
              "quote": f"A quote about {tool} that ends the way they all do. On balance, I would skip it for now."}
             for tool in ("ollama", "vllm", "litellm")]
    (writers / "w9-test.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    run = cli("calibrate", "--corpus", str(CORPUS), "--stock-phrases", "--writers", str(writers))
    assert run.code == 0, run.err
    assert 'skeptic: 2 stock phrases (in more than 1 quote in 8 of 3)\n  3x "on balance i would skip it for now"' \
        in run.out
    assert "      w9-test: litellm\n      w9-test: ollama\n      w9-test: vllm" in run.out
    (writers / "w9-test.jsonl").write_text('{"tool": "ollama"}\n')
    bad = cli("calibrate", "--corpus", str(CORPUS), "--stock-phrases", "--writers", str(writers))
    assert bad.code == 2 and "w9-test.jsonl" in bad.err and "line 1" in bad.err


def test_calibration_reports_sameness_agreement_per_lens_both_ways(cli) -> None:
    labels = [json.loads(line) for line in (CORPUS / "sameness" / "labels.jsonl").read_text().splitlines()]
    same = sum(1 for label in labels if label["kind"] == "lenses" and label["same_point"])
    distinct = sum(1 for label in labels if label["kind"] == "lenses" and not label["same_point"])
    run = cli("calibrate", "--corpus", str(CORPUS))
    assert "labelled same: flagged" in run.out and "labelled distinct: passed" in run.out
    assert re.search(rf"^  all lens pairs\s+\d+/{same} \(\d+%\)\s+\d+/{distinct} \(\d+%\)$", run.out, re.MULTILINE)
    for row in ("builder / skeptic", "skeptic / buyer", "buyer / futurist", "futurist (its 3 pairs)",
                "skeptic across tools", "all tool pairs"):
        assert re.search(rf"^  {re.escape(row)}\s+(\d+/\d+ \(\d+%\)|-)\s+\d+/\d+ \(\d+%\)$", run.out, re.MULTILINE), row


def test_persona_examples_hit_their_beats_and_prime_no_stock_phrase_of_the_corpus(project: Path) -> None:
    """The example in each persona is what every model copies: it must not carry a phrase the stand-in writers
    already repeat across the catalogue."""
    personas = load_personas(project)
    sheets = {path.stem: load_tool(CORPUS, path.stem) for path in (CORPUS / "tools").glob("*.toml")}
    quotes = read_writers(CORPUS / "corpus")
    report = stock_phrases([(q.lens, q.writer, q.quote, tool_terms(sheets[q.tool], q.tool)) for q in quotes],
                           house_phrases(personas))
    stock = {s.phrase for found in report.values() for s in found}
    assert {"by the end of 2027", "and it is on time", "i would ship it"} <= stock
    for persona in personas:
        assert persona.example is not None
        assert quote_problems(persona, persona.example) == [] and not length_note(persona, persona.example)
        example = " ".join(re.findall(r"[a-z0-9]+(?:['.-][a-z0-9]+)*", persona.example.lower().replace("’", "'")))
        assert not [phrase for phrase in stock if phrase in example], persona.lens


def test_refresh_reasks_a_regenerated_review_that_repeats_another_lens(fake: FakeChatServer, cli,
                                                                       project: Path) -> None:
    assert cli("draft", A, B).code == 0 and len(fake.history) == 8
    sheet = project / "tools" / f"{A}.toml"
    sheet.write_text(sheet.read_text().replace('entry = "Free"', 'entry = "Free for a month"'))
    fake.responder = repeating_then(SYNTHETIC["buyer"])
    body = project / "body.md"
    run = cli("refresh", "--pr-body", str(body))
    assert run.code == 0, run.err
    assert len(fake.history) == 8 + 4 + 1, "A's four reviews, and the buyer once more"
    assert "1 re-ask" in run.out and "| 5 | 0 | 1 |" in body.read_text()
    page = (project / "outputs" / f"{A}-vs-{B}.md").read_text()
    assert "The stress test is a downturn" in page and "The stress test is a rival" not in page


def test_the_reask_names_the_catalogues_stock_phrases_the_reply_uses(fake: FakeChatServer, cli, project: Path) -> None:
    assert cli("draft", A, B).code == 0 and cli("draft", A, C).code == 0  # three buyer quotes from one mould
    sheet = (project / "tools" / f"{C}.toml").read_text().replace('name = "Mistral 4B Edge"', 'name = "Tiny Edge"')
    (project / "tools" / "tiny-edge.toml").write_text(sheet)
    fake.responder = repeating_then(SYNTHETIC["buyer"], tool="tiny-edge")
    assert cli("draft", B, "tiny-edge").code == 0
    reask = fake.history[-1]["json"]["messages"][-1]["content"]
    assert "makes the same point" in reask
    assert "These phrases recur across our Buyer quotes on other tools; say it in your own words instead:\n" in reask
    assert ('\n- "once a team wires it into builds and dashboards switching costs show up as lost weeks rather than '
            'line items"\n') in reask
