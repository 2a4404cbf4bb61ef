"""Issue 13: quotes in the house voice pass on the first request, re-asks say what to write, facts get flagged."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipeline.load import load_personas
from pipeline.validate import NeedsReask, validate_reply
from tests.fakeserver import REFERENCE_DIR, FakeChatServer, lens_and_tool, synthetic

A, B = "hf-inference-providers", "mistral-3-small"
B_NAME = "Mistral 3 Small (24B)"
CLAIMS = (" Under the MIT licence, this 70B model still fits one workstation, and its Apache 2.0 weights and 24B "
          "size are why.")


def claiming(request: dict) -> str:
    """``synthetic``, with a builder quote on B that claims a licence and a size the sheet contradicts, beside two
    the sheet supports."""
    reply = json.loads(synthetic(request))
    if lens_and_tool(request) == ("builder", B_NAME):
        reply["quote"] = reply["quote"].replace(" Error messages say what to change, defaults are sensible, and "
                                                "nothing forces a config file on you before you need one.", CLAIMS)
    return json.dumps(reply)


def test_claims_the_sheet_contradicts_are_flagged_everywhere_an_editor_looks(fake: FakeChatServer, cli,
                                                                            project: Path, tmp_path: Path) -> None:
    fake.responder = claiming
    run = cli("draft", A, B)
    assert run.code == 0, run.err
    assert "8 requests" in run.out and "0 re-asks" in run.out, "a flag never causes a re-ask"
    assert f"Facts to check (the quotes say them, the fact sheets do not):\n  builder quote on {B}: MIT, 70B" \
        in run.out
    sidecar = json.loads((project / "outputs" / f"{A}-vs-{B}.provenance.json").read_text())
    assert sidecar["sections"][f"builder:{B}"]["flags"] == ["MIT", "70B"], "Apache 2.0 and 24B are supported"
    assert "flags" not in sidecar["sections"][f"builder:{A}"]

    html = tmp_path / "preview.html"
    assert cli("preview", f"{A}-vs-{B}", "--out", str(html)).code == 0
    page = html.read_text()
    assert page.count('<mark class="check"') == 2 and ">70B</mark>" in page and ">MIT</mark>" in page
    assert "Check against the fact sheet: MIT, 70B" in page

    sheet = project / "tools" / f"{B}.toml"
    sheet.write_text(sheet.read_text().replace('entry = "Free"', 'entry = "Free weights"'))
    body = tmp_path / "body.md"
    assert cli("refresh", "--pr-body", str(body)).code == 0
    assert f"- builder quote on {B}: `MIT`, `70B`" in body.read_text()


def test_the_shipped_pairs_draft_without_a_reask_in_the_house_voice(fake: FakeChatServer, cli) -> None:
    """The fake server's synthetic mode writes the house signposts, as the prompt now asks."""
    for pair in ((A, B), (A, "mistral-4b-edge")):
        run = cli("draft", *pair)
        assert run.code == 0 and "0 re-asks" in run.out, run.err
    assert len(fake.history) == 12


def test_a_reask_says_what_is_missing_in_the_house_terms(project: Path) -> None:
    """A skeptic quote with no signpost and no named rival: the problem names the point and its opener."""
    skeptic = {p.lens: p for p in load_personas(project)}["skeptic"]
    plain = ("This tool is pleasant to use and the documentation is thorough. Setup took an afternoon and the "
             "team liked the dashboard, which shows every request and its latency. The defaults are sensible and "
             "upgrades have been painless so far, and the community forum answers questions within a day, often from "
             "the maintainers themselves, which is rare for a project of this size. It "
             "breaks when traffic spikes, because the queue has no back-pressure, and within 12 months a cheaper "
             "hosted service could take its users. What would make me wrong is a managed tier with real limits.")
    with pytest.raises(NeedsReask) as caught:
        validate_reply(skeptic, json.dumps({"verdict": "skip", "quote": plain}))
    assert caught.value.problems == [
        "no sentence does this: place the tool in its category and name its direct competitors; open a sentence "
        'with "The category is ..., and the direct competitors are ..."']


CORPUS = Path(__file__).resolve().parent.parent / "calibration"


def test_calibration_holds_for_the_test_personas(cli) -> None:
    """The corpus, judged by the personas' checks: on-beat accepted, off-lens and junk refused, per lens."""
    run = cli("calibrate", "--corpus", str(CORPUS))
    assert run.code == 0, run.out
    assert re.search(r"^skeptic\s+\d+/\d+ \(\d+%\)", run.out, re.MULTILINE) and "calibration holds" in run.out


def test_a_persona_edit_that_breaks_calibration_fails_with_the_table(cli, project: Path) -> None:
    """An editor narrows the skeptic's category beat to its signpost words: capable quotes get refused."""
    skeptic = project / "personas" / "skeptic.toml"
    text = skeptic.read_text()
    start = text.index("patterns = ['\\bcategory")
    end = text.index("required = true", start)
    skeptic.write_text(text[:start] + "patterns = ['The category is']\n" + text[end:])
    run = cli("calibrate", "--corpus", str(CORPUS))
    assert run.code == 2 and "calibration FAILS: " in run.out and "skeptic on-beat" in run.out
    assert re.search(r"^skeptic\s+\d+/\d+", run.out, re.MULTILINE), "the per-lens table comes with the failure"


def test_check_fails_with_the_table_when_a_persona_edit_breaks_calibration(cli, project: Path) -> None:
    """`make test` runs `check` first: an editor's persona edit that breaks calibration stops it, with the table."""
    import shutil

    shutil.copytree(CORPUS, project / "calibration")
    assert cli("check").code == 0
    skeptic = project / "personas" / "skeptic.toml"
    text = skeptic.read_text()
    start = text.index("patterns = ['\\bcategory")
    skeptic.write_text(text[:start] + "patterns = ['The category is']\n" + text[text.index("required = true", start):])
    run = cli("check")
    assert run.code == 2 and "the lens checks no longer hold" in run.out and "skeptic on-beat" in run.out
    assert re.search(r"^\s+skeptic\s+\d+/\d+", run.out, re.MULTILINE)


def test_a_new_lens_with_no_corpus_quotes_is_reported_not_failed(cli, project: Path) -> None:
    """A fifth persona is a normal editorial change: calibration cannot judge it yet, and says so."""
    operator = project / "personas" / "operator.toml"
    operator.write_text((project / "personas" / "builder.toml").read_text().replace("order = 1", "order = 5")
                        .replace('title = "Builder"', 'title = "Operator"'))
    run = cli("calibrate", "--corpus", str(CORPUS))
    assert run.code == 0 and "calibration holds" in run.out
    assert "not calibrated, no quotes in the corpus were written for: operator" in run.out


@pytest.mark.reference
def test_the_published_quotes_follow_the_persona_files_not_a_list_of_names(cli, project: Path) -> None:
    """The lenses are the persona files': a lens renamed by its file still has its published quotes checked."""
    (project / "personas" / "builder.toml").rename(project / "personas" / "engineer.toml")
    (project.parent / "shared").mkdir()
    (project.parent / "shared" / "reference").symlink_to(REFERENCE_DIR)  # beside the project, as in the repository
    run = cli("calibrate", "--corpus", str(CORPUS))
    row = next(line for line in run.out.splitlines() if line.startswith("engineer "))
    assert row.rstrip().endswith("3/3 (100%)"), row
