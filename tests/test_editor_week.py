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
