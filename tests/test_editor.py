"""What an editor sees around a draft: dry run, run report, prices and budget, run log, progress, HTML preview."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pipeline.progress import Progress
from tests.fakeserver import FakeChatServer, lens_and_tool, synthetic

A, B = "hf-inference-providers", "mistral-3-small"
A_NAME = "Hugging Face Inference Providers Marketplace"
MODEL = "Qwen/Qwen2.5-72B-Instruct"


def set_prices(project: Path, table: str) -> None:
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text()
    assert "[tool.verdicts.prices]\n" in text
    pyproject.write_text(text.replace('prices_as_of = ""', 'prices_as_of = "2026-11-20"')
                         .replace("[tool.verdicts.prices]\n", "[tool.verdicts.prices]\n" + table + "\n"))


def test_dry_run_prints_prompts_and_a_forecast_and_sends_nothing(fake: FakeChatServer, cli, project: Path) -> None:
    run = cli("prompts", A, B)
    assert run.code == 0 and fake.history == []
    assert run.out.count("[to send]") == 8 and f"=== skeptic on {B}" in run.out
    assert "--- system" in run.out and "=====FACT-SHEET-" in run.out, "the prompts themselves are printed"
    assert "Forecast: 8 requests (0 reviews cached)" in run.out and "cost unknown" in run.out
    assert f"no price for {MODEL}" in run.out, "an unknown price is unknown, never zero"
    assert not (project / "outputs").exists()

    assert cli("draft", A, B).code == 0
    run = cli("prompts", A, B)
    assert run.out.count("[cached]") == 8 and "Forecast: 0 requests (8 reviews cached)" in run.out


def test_a_draft_ends_with_the_run_report(fake: FakeChatServer, cli, project: Path) -> None:
    set_prices(project, f'"{MODEL}" = [1.0, 2.0]')
    run = cli("draft", A, B)
    assert run.code == 0
    report = run.out.split("Run report", 1)[1]
    assert "prices as of 2026-11-20" in report
    row = next(line for line in report.splitlines() if line.strip().startswith("endpoint"))
    # 8 requests x (400 prompt + 200 completion tokens) at $1 and $2 per million tokens.
    assert row.split() == ["endpoint", MODEL, "-", "8", "0", "0", "0", "0", "0", "3200", "1600", "$0.0064"]


def test_a_budget_below_the_forecast_refuses_to_start(fake: FakeChatServer, cli, project: Path) -> None:
    set_prices(project, f'"{MODEL}" = [1.0, 2.0]')
    run = cli("draft", A, B, "--max-cost", "0.0001")
    assert run.code == 6 and "forecast cost" in run.err and "above the budget of $0.0001" in run.err
    assert fake.history == [] and not (project / "outputs").exists()
    run = cli("draft", A, B, "--max-cost", "1")
    assert run.code == 0


def test_a_budget_without_prices_cannot_be_checked(fake: FakeChatServer, cli) -> None:
    run = cli("draft", A, B, "--max-cost", "5")
    assert run.code == 2 and f"no price for {MODEL}" in run.err and fake.history == []


def test_a_budget_reached_mid_run_stops_and_the_rerun_reuses_what_was_paid(fake: FakeChatServer, cli,
                                                                           project: Path) -> None:
    set_prices(project, f'"{MODEL}" = [1.0, 1.0]')
    fake.usage = (60_000, 40_000)  # far more than the forecast expects: $0.10 a request
    run = cli("draft", A, B, "--max-cost", "0.25", "--concurrency", "1")
    assert run.code == 6, run.err
    assert "budget of $0.2500 was reached after 3 requests" in run.err and "cached" in run.err
    assert len(fake.history) == 3 and not (project / "outputs").exists()
    run = cli("draft", A, B, "--max-cost", "2", "--concurrency", "1")
    assert run.code == 0 and len(fake.history) == 8, "the rerun asks only for the five reviews not yet paid for"
    assert "5 requests, 3 cache hits" in run.out


def test_the_run_log_reads_back_requests_replies_and_failures(fake: FakeChatServer, cli, project: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VERDICTS_API_KEY", "sk-endpoint-secret-123")
    first = {"n": 0}

    def one_bad_reply(request: dict) -> str:
        if lens_and_tool(request) == ("buyer", A_NAME) and first["n"] == 0:
            first["n"] += 1
            return "I think it is fine."
        return synthetic(request)

    fake.responder = one_bad_reply
    assert cli("draft", A, B).code == 0
    run = cli("log", "--failures")
    assert run.code == 0 and f"-- buyer on {A}, request 1, {MODEL}: FAILED" in run.out
    assert "[reply] I think it is fine." in run.out and "problems: " in run.out
    assert "[system] You are the Buyer" in run.out, "what the model was asked is shown"
    everything = cli("log", "--draft", f"{A}-vs-{B}")
    assert everything.out.count("\n-- ") == 9 and "== end of run" in everything.out
    assert cli("log", "--draft", "other-vs-thing").out.startswith("The run log has nothing")
    logged = (Path(str(project.parent / "cache")) / "runs.jsonl").read_text()
    assert "sk-endpoint-secret-123" not in logged
    assert all(json.loads(line)["run"] for line in logged.splitlines())


def test_progress_is_a_bar_on_a_terminal_and_lines_elsewhere() -> None:
    screen = io.StringIO()
    bar = Progress(screen, bar=True)
    bar.start(8, "a vs b")
    bar.retry(+1)
    for n in range(8):
        bar.finished(f"  line {n}", cached=n < 3)
    bar.retry(-1)
    bar.close()
    shown = screen.getvalue()
    assert "a vs b: 8/8" in shown and "3 cached, 0 retrying" in shown and "1 retrying" in shown
    assert "line 0" not in shown, "a bar replaces the per-review lines"

    pipe = io.StringIO()
    quiet = Progress(pipe, bar=False)
    quiet.start(2, "a vs b")
    quiet.finished("  builder on a: ship (cache)", cached=True)
    quiet.close()
    assert pipe.getvalue() == "  builder on a: ship (cache)\n" and "\r" not in pipe.getvalue()


SCRIPT = "<script>alert('verdicts')</script>"


def scripted_reply(request: dict) -> str:
    reply = json.loads(synthetic(request))
    if lens_and_tool(request) == ("builder", A_NAME):
        reply["quote"] = reply["quote"].replace("and that is the point.", f"and that is the point {SCRIPT}.")
    return json.dumps(reply)


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "headless Chromium is missing: `make browser` installs Debian's chromium (make test does)"
    return found


@pytest.mark.chromium
def test_preview_renders_both_cards_and_eight_quotes_in_chromium(fake: FakeChatServer, cli, project: Path,
                                                                tmp_path: Path) -> None:
    fake.responder = scripted_reply
    assert cli("draft", A, B).code == 0
    draft_text = (project / "outputs" / f"{A}-vs-{B}.md").read_text()
    assert "<script" not in draft_text and "&lt;script>alert('verdicts')&lt;/script>" in draft_text

    out = tmp_path / "preview.html"
    run = cli("preview", f"outputs/{A}-vs-{B}.md", "--out", str(out))
    assert run.code == 0 and out.is_file()
    html = out.read_text()
    assert "<script" not in html and "http" not in html.split("<body>", 1)[1], "self-contained, no markup from a model"

    browser = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--window-size=1280,2600"]
    dom = subprocess.run([*browser, "--dump-dom", out.as_uri()], capture_output=True, text=True, timeout=120).stdout
    assert dom.count('<article class="card">') == 2
    assert len(re.findall(r'<div class="quote">\s*<p><strong>', dom)) == 8
    assert dom.count("<blockquote>") == 8
    assert "<script" not in dom and "&lt;script&gt;alert('verdicts')&lt;/script&gt;" in dom, "shown as text"
    for text in (f"<h2>{A_NAME}</h2>", "<h2>Mistral 3 Small (24B)</h2>", "<b>75%</b><span>Panel ship</span>",
                 "<b>—</b><span>Community</span>", "<b>Free</b><span>Entry</span>"):
        assert text in dom, text

    shot = tmp_path / "preview.png"
    subprocess.run([*browser, f"--screenshot={shot}", out.as_uri()], capture_output=True, timeout=120)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
    keep = Path(__file__).parent.parent / ".cache" / "preview-test.png"  # for a person to look at
    keep.parent.mkdir(exist_ok=True)
    shutil.copy(shot, keep)
