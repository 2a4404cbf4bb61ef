"""Issue 14, family 1: an editor's hand edits under draft, refresh and pin, however they were made."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.fakeserver import FakeChatServer, attentive
from tests.test_refresh import page, quote_line, set_entry

ROOT = Path(__file__).resolve().parent.parent
A, B = "hf-inference-providers", "mistral-3-small"
B_NAME = "Mistral 3 Small (24B)"


def test_draft_force_keeps_a_pinned_hand_edited_section(fake: FakeChatServer, cli, project: Path) -> None:
    """The refusal hint suggests --force: it must not reset a pinned section the editor rewrote."""
    assert cli("draft", A, B).code == 0
    draft = page(project, A, B)
    mine = "“The editor's own skeptic quote, pinned so that nothing replaces it.”"
    draft.write_text(draft.read_text().replace(quote_line(draft.read_text(), B_NAME, "Skeptic"), mine))
    assert cli("pin", f"{A}-vs-{B}", f"skeptic:{B}").code == 0
    draft.write_text(draft.read_text().replace("A routing layer from Hugging Face", "Hugging Face's routing layer"))
    run = cli("draft", A, B)
    assert run.code == 2 and "--force" in run.err, "an edit outside the pinned section still stops a plain draft"
    assert cli("draft", A, B, "--force").code == 0
    assert quote_line(draft.read_text(), B_NAME, "Skeptic") == mine


def _env(fake: FakeChatServer, project: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERDICTS_") or k == "VERDICTS_CACHE_DIR"}
    return {**env, "VERDICTS_BASE_URL": fake.base_url, "HF_HUB_DISABLE_TELEMETRY": "1", "PYTHONPATH": str(ROOT)}


def test_two_refreshes_at_once_pay_once_and_see_no_hand_edits(fake: FakeChatServer, cli, project: Path) -> None:
    fake.responder = attentive
    assert cli("draft", A, B).code == 0
    set_entry(project, B, "$2 / M tokens")
    fake.delay = 0.5
    sent = len(fake.history)
    runs = [subprocess.Popen([sys.executable, "-m", "pipeline", "--root", str(project), "refresh"], cwd=ROOT,
                             env=_env(fake, project), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert len(fake.history) - sent == 4, "the second refresh waited, then found nothing stale"
    assert "<<<<<<<" not in page(project, A, B).read_text()
    assert cli("stale").code == 0


def test_a_pin_during_a_refresh_is_kept(fake: FakeChatServer, cli, project: Path) -> None:
    fake.responder = attentive
    assert cli("draft", A, B).code == 0
    set_entry(project, B, "$3 / M tokens")
    fake.delay = 1.0
    refresh = subprocess.Popen([sys.executable, "-m", "pipeline", "--root", str(project), "refresh"], cwd=ROOT,
                               env=_env(fake, project), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not fake.history[-1:] or fake.in_flight == 0:  # the refresh is paying for its reviews now
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert cli("pin", f"{A}-vs-{B}", f"card:{A}").code == 0
    assert refresh.wait(timeout=60) == 0
    sidecar = json.loads((project / "outputs" / f"{A}-vs-{B}.provenance.json").read_text())
    assert sidecar["pinned"] == [f"card:{A}"]


def test_a_few_crlf_lines_do_not_turn_the_file_crlf(fake: FakeChatServer, cli, project: Path) -> None:
    fake.responder = attentive
    assert cli("draft", A, B).code == 0
    draft = page(project, A, B)
    text = draft.read_text()
    draft.write_bytes(text.replace("## Reviewer scorecard\n", "## Reviewer scorecard\r\n").encode())
    set_entry(project, B, "$4 / M tokens")
    assert cli("refresh").code == 0
    raw = draft.read_bytes().decode()
    assert raw.count("\r\n") <= 1 and "$4 / M tokens" in raw, "the file keeps its line ends: LF, as most lines"


def test_a_sidecar_span_outside_the_page_is_refused(fake: FakeChatServer, cli, project: Path) -> None:
    assert cli("draft", A, B).code == 0
    sidecar = project / "outputs" / f"{A}-vs-{B}.provenance.json"
    data = json.loads(sidecar.read_text())
    data["sections"][f"card:{A}"]["lines"] = [5, 5000]
    sidecar.write_text(json.dumps(data))
    before = page(project, A, B).read_text()
    set_entry(project, B, "$5 / M tokens")
    run = cli("refresh")
    assert run.code == 2 and "outside the page" in run.err and "Traceback" not in run.err
    assert page(project, A, B).read_text() == before


def test_a_latin1_draft_is_refused_before_any_request(fake: FakeChatServer, cli, project: Path) -> None:
    assert cli("draft", A, B).code == 0
    draft = page(project, A, B)
    draft.write_bytes(draft.read_text().replace("Reviewer scorecard", "Reviewer scorecard – été").encode("latin-1",
                                                                                                      "replace"))
    set_entry(project, B, "$6 / M tokens")
    sent = len(fake.history)
    run = cli("refresh")
    assert run.code == 2 and "not UTF-8 text" in run.err and "Traceback" not in run.err
    assert len(fake.history) == sent, "nothing paid for"


def test_a_read_only_draft_is_reported_not_replaced(fake: FakeChatServer, cli, project: Path) -> None:
    assert cli("draft", A, B).code == 0
    draft = page(project, A, B)
    before = draft.read_text()
    draft.chmod(0o444)
    try:
        set_entry(project, B, "$7 / M tokens")
        run = cli("refresh")
        assert run.code == 5 and "read-only" in run.out and draft.read_text() == before
        sent = len(fake.history)
        run = cli("draft", A, B, "--force")
        assert run.code == 2 and "read-only" in run.err and len(fake.history) == sent
    finally:
        draft.chmod(0o644)


def test_the_others_are_still_refreshed_when_one_draft_has_no_sidecar(fake: FakeChatServer, cli,
                                                                      project: Path) -> None:
    fake.responder = attentive
    assert cli("draft", A, B).code == 0 and cli("draft", A, "mistral-4b-edge").code == 0
    (project / "outputs" / f"{A}-vs-mistral-4b-edge.provenance.json").unlink()
    set_entry(project, B, "$8 / M tokens")
    set_entry(project, "mistral-4b-edge", "$9 / M tokens")
    run = cli("refresh")
    assert run.code == 5 and "no provenance record" in run.out
    assert "$8 / M tokens" in page(project, A, B).read_text()


def test_swapping_two_personas_order_with_an_edit_keeps_one_heading_each(fake: FakeChatServer, cli,
                                                                          project: Path) -> None:
    assert cli("draft", A, B).code == 0
    draft = page(project, A, B)
    mine = "“The editor's builder quote, which must survive the rows trading places.”"
    draft.write_text(draft.read_text().replace(quote_line(draft.read_text(), B_NAME, "Builder"), mine))
    builder, skeptic = project / "personas" / "builder.toml", project / "personas" / "skeptic.toml"
    builder.write_text(builder.read_text().replace("order = 1", "order = 2"))
    skeptic.write_text(skeptic.read_text().replace("order = 2", "order = 1"))
    run = cli("refresh")
    assert run.code == 0, run.out + run.err
    text = draft.read_text()
    assert text.count("### Builder") == 1 and text.count("### Skeptic") == 1
    assert text.index("### Skeptic") < text.index("### Builder"), "the rows follow the new order"
    assert quote_line(text, B_NAME, "Builder") == mine and "<<<<<<<" not in text
    assert cli("stale").code == 0


def test_a_conflict_whose_marker_labels_were_deleted_is_a_conflict_to_every_command(fake: FakeChatServer, cli,
                                                                                     project: Path,
                                                                                     tmp_path: Path) -> None:
    """An editor deleted the words after <<<<<<<, ||||||| and >>>>>>>: the bare markers still hold a conflict, for
    ``stale``, ``check``, the preview and ``refresh`` alike (they all read conflict blocks with one parser)."""
    from tests.test_preview import dom_of, preview_of, rows

    fake.responder = attentive
    assert cli("draft", A, B).code == 0
    draft = page(project, A, B)
    builder = quote_line(draft.read_text(), B_NAME, "Builder")
    mine = builder.replace(" the ", " this ", 1)  # an editor's word, in a quote that still passes its lens
    assert mine != builder
    draft.write_text(draft.read_text().replace(builder, mine))
    set_entry(project, B, "$0.10 / M tokens")
    assert cli("refresh").code == 5
    lines = draft.read_text().split("\n")
    marks = [i for i, line in enumerate(lines) if line[:7] in ("<<<<<<<", "|||||||", ">>>>>>>")]
    assert len(marks) == 3
    for index in marks:
        lines[index] = lines[index][:7]  # the labels deleted, the marks left alone on their lines
    draft.write_text("\n".join(lines))
    where = f"outputs/{A}-vs-{B}.md"

    run = cli("stale")
    assert run.code == 1, run.out
    assert f"{where}: 1 unresolved conflict" in run.out and f"line {marks[0] + 1}, " in run.out, run.out
    run = cli("check")
    assert run.code == 1, run.out + run.err
    assert f"{where}: line {marks[0] + 1}: an unresolved conflict" in run.out, run.out

    left, right = rows(dom_of(preview_of(cli, project, tmp_path / "preview.html")))["Builder"]
    callout = right.all("aside", "conflict")
    assert len(callout) == 1 and not left.all("aside"), "a callout in the column of the quote it is about"
    assert mine.strip("> “”")[:60] in callout[0].text() and "Generated now" in callout[0].text()

    before = draft.read_text()
    set_entry(project, A, "$0.20 / M tokens")  # another tool's change: this draft is refreshed around the block
    run = cli("refresh")
    assert run.code == 5, run.out + run.err
    after = draft.read_text()
    assert after != before and "$0.20 / M tokens" in after, "the draft was refreshed"
    assert [line for line in after.split("\n") if line[:7] in ("<<<<<<<", "|||||||", "=======", ">>>>>>>")] == \
        ["<<<<<<<", "|||||||", "=======", ">>>>>>>"], "the block is kept as the editor left it"
    assert mine in after and "unresolved conflict" in run.out.lower(), run.out
