"""Hostile model output: a preview that loads nothing, drafts without invisible or control characters, and a
terminal that no reply or server error can drive."""

from __future__ import annotations

import io
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pipeline.progress import Progress
from pipeline.render import cell, md
from tests.fakeserver import FakeChatServer, Scripted, lens_and_tool, synthetic
from tests.test_preview import browser, preview_of

A, B = "hf-inference-providers", "mistral-3-small"
INVISIBLE = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200b\u200c\u200d\u2060\ufeff\x80\x85\x9b\x9f"
ESCAPES = "\x1b]0;owned\x07\x1b[2J\x1b[31m\x9b1m"


def with_text(extra: str):
    """The synthetic reply, with ``extra`` in the middle of its quote."""
    def answer(request: dict[str, Any]) -> str:
        reply = json.loads(synthetic(request))
        reply["quote"] = reply["quote"].replace("and that is the point.", f"and that is{extra} the point.")
        return json.dumps(reply)
    return answer


class Recorder(BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self) -> None:  # noqa: N802
        Recorder.seen.append(self.path)
        self.send_response(200)
        self.send_header("content-type", "image/png")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_the_preview_carries_a_policy_that_forbids_every_remote_load(fake: FakeChatServer, cli, project: Path,
                                                                     tmp_path: Path) -> None:
    assert cli("draft", A, B).code == 0
    html = preview_of(cli, project, tmp_path / "preview.html")
    head = html.split("<style>", 1)[0]
    policy = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', head)
    assert policy, "a Content-Security-Policy meta tag comes before anything the page could load"
    rules = dict((part.strip().split(" ", 1) + [""])[:2] for part in policy.group(1).split(";") if part.strip())
    assert rules["default-src"] == "'none'"
    assert all("http" not in value and "*" not in value for value in rules.values())
    assert set(rules.get("img-src", "data:").split()) <= {"data:", "'none'"}


@pytest.mark.chromium
def test_a_remote_load_slipped_into_the_preview_is_blocked_in_chromium(fake: FakeChatServer, cli, project: Path,
                                                                       tmp_path: Path) -> None:
    Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        assert cli("draft", A, B).code == 0
        draft = project / "outputs" / f"{A}-vs-{B}.md"  # a model's image is re-asked; an editor may type one
        draft.write_text(draft.read_text().replace("that is the point.", f"that is ![x]({url}/q.png) the point."))
        html = preview_of(cli, project, tmp_path / "preview.html")
        assert "<img" not in html and url not in html, "an image in a quote shows as its alt text"
        # A regression that let a tag through would still load nothing: the policy forbids it.
        slipped = html.replace("</main>", f'<img src="{url}/img.png"><link rel="stylesheet" href="{url}/a.css">'
                                          f'<iframe src="{url}/frame"></iframe></main>')
        page = tmp_path / "slipped.html"
        page.write_text(slipped, encoding="utf-8")
        run = browser("--virtual-time-budget=3000", "--dump-dom", page.as_uri())
        assert "<main" in run.stdout, run.stderr[-2000:]
        assert Recorder.seen == [], f"the preview loaded {Recorder.seen}"
    finally:
        server.shutdown()
        server.server_close()


def test_bidi_zero_width_and_c1_characters_never_reach_a_draft(fake: FakeChatServer, draft, project: Path) -> None:
    fake.responder = with_text(INVISIBLE)
    sheet = project / "tools" / f"{B}.toml"
    text = sheet.read_text(encoding="utf-8")
    tagline = re.search(r'^tagline = "(.*)"$', text, re.MULTILINE)
    assert tagline
    sheet.write_text(text.replace(tagline.group(0), 'tagline = "Small\\u202e and \\u200bfast\\u0085 model"'),
                     encoding="utf-8")
    assert draft(A, B).code == 0
    page = (project / "outputs" / f"{A}-vs-{B}.md").read_text(encoding="utf-8")
    assert "and that is the point." in page and "Small and fast model" in page
    assert not [hex(ord(c)) for c in page if c in INVISIBLE]


def test_the_md_and_cell_filters_strip_invisible_and_control_characters() -> None:
    for character in INVISIBLE:
        assert md(f"a{character}b") == "ab", hex(ord(character))
        assert cell(f"a{character}|b") == "a\\|b", hex(ord(character))


def test_terminal_escapes_in_a_reply_are_neutralised_in_log(fake: FakeChatServer, cli) -> None:
    fake.enqueue(Scripted(content=f"Sure!{ESCAPES} Here is my review."))  # not JSON: re-asked, and logged
    assert cli("draft", A, B).code == 0
    run = cli("log")
    assert run.code == 0, run.err
    assert "[reply] Sure!" in run.out
    assert "\x1b" not in run.out and "\x07" not in run.out and "\x9b" not in run.out
    assert "\\x1b]0;owned\\x07" in run.out, "shown as escapes, so the reader sees them"


def test_terminal_escapes_in_a_server_error_are_neutralised_in_error_lines(fake: FakeChatServer, draft) -> None:
    fake.enqueue(Scripted(status=400, raw=json.dumps({"error": {"message": f"bad{ESCAPES} request"}}).encode()))
    run = draft(A, B)
    assert run.code == 3, run.err
    assert "\x1b" not in run.err and "\x07" not in run.err and "\x9b" not in run.err
    assert "bad\\x1b]0;owned" in run.err


def test_terminal_escapes_in_progress_lines_are_neutralised() -> None:
    out = io.StringIO()
    Progress(out, bar=False).say(f"  retrying builder review of x: ValueError: bad{ESCAPES} body")
    assert "\x1b" not in out.getvalue() and "\x9b" not in out.getvalue()
    assert "bad\\x1b]0;owned" in out.getvalue()


MARKUP_FORMS = {
    "a Markdown image": " ![chart](http://example.invalid/track.png)",
    "a Markdown link": " See [the docs](https://example.invalid/docs) first.",
    "a reference link": " See [the docs][1] first.",
    "an autolink": " See <https://example.invalid/docs> first.",
    "a web address": " See https://example.invalid/docs first.",
}


def marked_up(extra: str, times: int):
    """The synthetic reply, with ``extra`` in the builder's quote on A in the first ``times`` requests for it."""
    asked = []

    def answer(request: dict[str, Any]) -> str:
        reply = json.loads(synthetic(request))
        if lens_and_tool(request)[0] == "builder" and "Marketplace" in lens_and_tool(request)[1]:
            asked.append(request)
            if len(asked) <= times:
                reply["quote"] = reply["quote"].replace("and that is the point.", f"and that is the point.{extra}")
        return json.dumps(reply)
    return answer


@pytest.mark.parametrize("form", MARKUP_FORMS)
def test_a_link_or_image_in_a_quote_is_re_asked_and_never_reaches_the_page(fake: FakeChatServer, draft,
                                                                          project: Path, form: str) -> None:
    fake.responder = marked_up(MARKUP_FORMS[form], times=1)
    run = draft(A, B)
    assert run.code == 0, run.err
    assert len(fake.history) == 9, "one re-ask, for the builder's quote on A"
    reask = next(h["json"]["messages"][-1]["content"] for h in fake.history if len(h["json"]["messages"]) > 2)
    assert f"the quote contains {form.replace('reference link', 'Markdown link')}" in reask
    assert "write plain prose without links or images" in reask
    page = (project / "outputs" / f"{A}-vs-{B}.md").read_text(encoding="utf-8")
    assert "example.invalid" not in page and "](" not in page and "][" not in page and "<http" not in page


def test_a_reply_that_keeps_its_link_ends_as_a_placeholder(fake: FakeChatServer, draft, project: Path) -> None:
    fake.responder = marked_up(MARKUP_FORMS["a Markdown image"], times=99)
    run = draft(A, B)
    assert run.code == 4, run.err
    assert "the quote contains a Markdown image" in run.err
    page = (project / "outputs" / f"{A}-vs-{B}.md").read_text(encoding="utf-8")
    assert "**Missing builder quote.**" in page and "the quote contains a Markdown image" in page
    assert "example.invalid" not in page and "](" not in page


def test_a_model_written_verdict_never_reaches_the_placeholder(fake: FakeChatServer, draft, project: Path) -> None:
    """The problem that names a wrong verdict is shown on the page's placeholder: the model's text is not in it."""
    def answer(request: dict[str, Any]) -> str:
        reply = json.loads(synthetic(request))
        if lens_and_tool(request)[0] == "builder":
            reply["verdict"] = "![x](http://example.invalid/verdict.png)"
        return json.dumps(reply)
    fake.responder = answer
    run = draft(A, B)
    assert run.code == 4, run.err
    page = (project / "outputs" / f"{A}-vs-{B}.md").read_text(encoding="utf-8")
    assert page.count('"verdict" must be "ship" or "skip", not a string of 40 characters') == 2
    assert "example.invalid" not in page and "![" not in page


def test_a_web_address_in_code_and_a_bare_domain_pass_on_the_first_request(fake: FakeChatServer, draft,
                                                                          project: Path) -> None:
    fake.responder = with_text(" (`base_url=\"https://huggingface.co/v1\"` and `pip install 'x[proxy]'`, as "
                               "huggingface.co documents)")
    run = draft(A, B)
    assert run.code == 0 and "0 re-asks" in run.out, run.err
    assert "`base_url=\"https://huggingface.co/v1\"`" in (project / "outputs" / f"{A}-vs-{B}.md").read_text()
