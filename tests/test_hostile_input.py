"""Hostile input: every bad file or argument gets one clear error naming the file (and field), a non-zero exit,
nothing written and no request sent; never a traceback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.runlog import log_path
from pipeline.validate import NeedsReask, parse_reply
from tests.fakeserver import FakeChatServer, Scripted, lens_and_tool, synthetic

A, B = "hf-inference-providers", "mistral-3-small"


def one_error(err: str) -> str:
    """The one error line (with its problem lines), checked to be the only error and no traceback."""
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert lines and lines[0].startswith("error: "), err
    assert sum(line.startswith("error") for line in lines) == 1, err
    return "\n".join(line for line in lines if not line.startswith("hint: "))


def the_error(err: str) -> str:
    """The one ``error:`` line of a run that printed progress lines too; no traceback."""
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error")]
    assert len(errors) == 1, err
    return errors[0]


def nothing_written(project: Path, fake: FakeChatServer) -> None:
    assert fake.history == [], "no request is sent for bad input"
    assert not list((project / "outputs").glob("*")) if (project / "outputs").exists() else True


def refused(run, project: Path, fake: FakeChatServer, *words: str) -> None:
    """Bad input: exit 2, one error that says each of ``words``, no request, nothing written."""
    assert run.code == 2, run.err
    error = one_error(run.err)
    assert all(word in error for word in words), error
    nothing_written(project, fake)


def test_deeply_nested_toml_in_a_fact_sheet(fake: FakeChatServer, draft, project: Path) -> None:
    sheet = project / "tools" / f"{B}.toml"
    sheet.write_text(sheet.read_text(encoding="utf-8") + "deep = " + "[" * 50_000 + "]" * 50_000 + "\n",
                     encoding="utf-8")
    run = draft(A, B)
    refused(run, project, fake, str(sheet), "nested too deeply")


def test_deeply_nested_toml_in_a_persona(fake: FakeChatServer, draft, project: Path) -> None:
    persona = project / "personas" / "buyer.toml"
    persona.write_text(persona.read_text(encoding="utf-8") + "deep = " + "{ a = " * 20_000 + "1" + " }" * 20_000
                       + "\n", encoding="utf-8")
    run = draft(A, B)
    refused(run, project, fake, str(persona), "nested too deeply")


def test_a_run_log_line_cut_inside_a_utf8_character_is_skipped(fake: FakeChatServer, cli, project: Path,
                                                                tmp_path: Path) -> None:
    assert cli("draft", A, B).code == 0
    path = log_path(tmp_path / "cache")
    whole = path.read_bytes()
    cut = "“".encode()[:2]  # a crash mid-write: the line ends inside a three-byte character
    path.write_bytes(whole + b'{"run": "x", "type": "request", "reply": "caf' + cut + b"\n" + b"\xff\xfe\n")
    run = cli("log")
    assert run.code == 0, run.err
    assert "Traceback" not in run.err and "== run " in run.out


def test_a_long_but_valid_pair_of_slugs_is_refused_before_any_request(fake: FakeChatServer, draft,
                                                                       project: Path) -> None:
    name_max = os.pathconf(project, "PC_NAME_MAX")
    long_a, long_b = "a" * ((name_max - 20) // 2), "b" * ((name_max - 20) // 2)  # each sheet's name fits
    for slug in (long_a, long_b):
        (project / "tools" / f"{slug}.toml").write_text((project / "tools" / f"{B}.toml").read_text(encoding="utf-8"),
                                                        encoding="utf-8")
    run = draft(long_a, long_b)
    refused(run, project, fake, "too long", "TOOL_A")


def test_a_slug_too_long_for_a_file_name_is_bad_input(fake: FakeChatServer, draft, project: Path) -> None:
    run = draft(A, "x" * 300)
    refused(run, project, fake, "TOOL_B", "too long")


def test_a_persona_file_that_is_a_directory(fake: FakeChatServer, draft, project: Path) -> None:
    (project / "personas" / "ghost.toml").mkdir()
    run = draft(A, B)
    refused(run, project, fake, str(project / "personas" / "ghost.toml"), "directory")


def test_a_sidecar_that_is_a_directory(fake: FakeChatServer, cli, project: Path, tmp_path: Path) -> None:
    assert cli("draft", A, B).code == 0
    sidecar = project / "outputs" / f"{A}-vs-{B}.provenance.json"
    sidecar.unlink()
    sidecar.mkdir()
    run = cli("stale")
    assert run.code == 2, run.err
    error = one_error(run.err)
    assert str(sidecar) in error and "directory" in error


def test_a_fact_sheet_that_is_a_symlink_to_dev_zero(fake: FakeChatServer, draft, project: Path) -> None:
    sheet = project / "tools" / f"{B}.toml"
    sheet.unlink()
    sheet.symlink_to("/dev/zero")
    run = draft(A, B)
    refused(run, project, fake, str(sheet), "not a regular file")


def test_a_persona_that_is_a_named_pipe_is_refused_without_waiting(fake: FakeChatServer, draft,
                                                                    project: Path) -> None:
    pipe = project / "personas" / "pipe.toml"
    os.mkfifo(pipe)  # opening it to read would wait for a writer forever
    run = draft(A, B)
    refused(run, project, fake, str(pipe), "not a regular file")


def test_a_fact_sheet_over_the_size_cap(fake: FakeChatServer, draft, project: Path) -> None:
    sheet = project / "tools" / f"{B}.toml"
    sheet.write_text(sheet.read_text(encoding="utf-8") + "# " + "x" * 1_100_000 + "\n", encoding="utf-8")
    run = draft(A, B)
    refused(run, project, fake, str(sheet), "larger than 1 MB")


def test_a_fact_sheet_with_a_utf8_bom_is_accepted(fake: FakeChatServer, draft, project: Path) -> None:
    sheet = project / "tools" / f"{B}.toml"
    sheet.write_bytes(b"\xef\xbb\xbf" + sheet.read_bytes())
    run = draft(A, B)
    assert run.code == 0, run.err
    assert (project / "outputs" / f"{A}-vs-{B}.md").is_file()


def test_an_error_message_repeats_at_most_a_little_of_a_200kb_key(fake: FakeChatServer, draft,
                                                                   project: Path) -> None:
    sheet = project / "tools" / f"{B}.toml"
    key = "k" * 200_000
    sheet.write_text(sheet.read_text(encoding="utf-8") + f'"{key}" = 1\n', encoding="utf-8")
    run = draft(A, B)
    assert run.code == 2, run.err
    error = one_error(run.err)
    assert str(sheet) in error and "unknown key" in error and "kkkk" in error
    assert len(run.err) < 2_000, f"the error is {len(run.err)} characters long"
    nothing_written(project, fake)


def test_a_200kb_slug_is_not_repeated_in_full(fake: FakeChatServer, draft, project: Path) -> None:
    run = draft("Z" * 200_000, B)
    assert run.code == 2, run.err
    one_error(run.err)
    assert len(run.err) < 2_000, f"the error is {len(run.err)} characters long"


def test_reply_json_nested_100000_deep_is_re_asked() -> None:
    deep = '{"verdict": "ship", "quote": ' + "[" * 100_000 + "]" * 100_000 + "}"
    try:
        parse_reply(deep)
    except NeedsReask as exc:
        assert "nested too deeply" in str(exc)
    else:
        raise AssertionError("a reply nested 100,000 deep must be re-asked")


def test_reply_json_nested_100000_deep_in_a_draft_is_re_asked_then_drafted(fake: FakeChatServer, draft,
                                                                           project: Path) -> None:
    fake.enqueue(Scripted(content='{"verdict": "ship", "quote": ' + "[" * 100_000 + "]" * 100_000 + "}"))
    run = draft(A, B)
    assert run.code == 0, run.err
    assert "Traceback" not in run.err
    assert len(fake.history) == 9, "the deep reply is re-asked once"
    assert any("nested too deeply" in str(m.get("content")) for h in fake.history for m in h["json"]["messages"])


def test_a_missing_certificate_file_is_named_before_any_request(fake: FakeChatServer, draft, project: Path,
                                                                  monkeypatch) -> None:
    """The HTTP client reads SSL_CERT_FILE for any URL, http:// too; a missing one used to fail the draft with
    "error: : No such file or directory" and no name."""
    monkeypatch.setenv("SSL_CERT_FILE", str(project / "no-such-ca.pem"))
    refused(draft(A, B), project, fake, "SSL_CERT_FILE", "no-such-ca.pem", "not a file")


DEEP = "[" * 10_000 + "]" * 10_000


def test_a_deeply_nested_pyproject_toml_is_one_error(fake: FakeChatServer, cli, project: Path) -> None:
    pyproject = project / "pyproject.toml"
    original = pyproject.read_text(encoding="utf-8")
    for text, words in ((original + f"deep = {DEEP}\n", ("nested too deeply",)),  # inside [tool.verdicts]
                        (f"a = {DEEP}\n" + original, ("nested too deeply",)),
                        ("tool = 3\n", ("tool", "must be a table")),
                        ("[tool]\nverdicts = 'x'\n", ("tool.verdicts", "must be a table"))):
        pyproject.write_text(text, encoding="utf-8")
        for command in (("draft", A, B), ("stale",), ("check",)):
            run = cli(*command)
            if command == ("check",):  # check lists every problem on stdout, one line per file
                assert run.code == 2 and "Traceback" not in run.err and run.out.startswith("pyproject.toml: "), run.err
                assert all(word in run.out for word in words), run.out
            else:
                refused(run, project, fake, str(pyproject), *words)


def test_a_chat_completion_body_nested_100000_deep_is_one_error(fake: FakeChatServer, draft, project: Path) -> None:
    deep = b'{"object": "chat.completion", "choices": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    fake.enqueue(Scripted(raw=deep))
    run = draft(A, B)
    assert run.code == 3, run.err
    error = the_error(run.err)
    assert "nested too deeply" in error and fake.base_url in error
    assert not (project / "outputs").exists() or not list((project / "outputs").glob("*.md"))


def test_an_error_body_nested_100000_deep_is_one_error(fake: FakeChatServer, draft) -> None:
    fake.enqueue(Scripted(status=400, raw=b'{"error": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"))
    run = draft(A, B)
    assert run.code == 3, run.err
    assert "HTTP 400" in the_error(run.err)


def test_a_latin1_draft_is_the_same_one_error_in_every_command(fake: FakeChatServer, cli, project: Path) -> None:
    """Every command that reads a draft reads it whole, through one reader: one error naming the file, exit 2, and
    nothing written (a pin or an accepted reply is not recorded for a page that cannot be read)."""
    assert cli("draft", A, B).code == 0
    page = project / "outputs" / f"{A}-vs-{B}.md"
    sidecar = project / "outputs" / f"{A}-vs-{B}.provenance.json"
    page.write_bytes(page.read_text(encoding="utf-8").replace("Which one", "Café: which one")
                     .encode("latin-1", errors="replace"))  # saved by an editor set to Latin-1
    files = {path: path.read_bytes() for path in (page, sidecar)}
    said = f"{page}: not UTF-8 text"
    for command in (("preview", f"{A}-vs-{B}"), ("quotes",), ("quotes", "--json"), ("stale",),
                    ("stale", f"{A}-vs-{B}"), ("refresh",), ("refresh", f"{A}-vs-{B}"), ("draft", A, B),
                    ("pin", f"{A}-vs-{B}", f"card:{A}"), ("pin", f"{A}-vs-{B}", f"card:{A}", "--unpin"),
                    ("accept", f"{A}-vs-{B}", f"builder:{A}")):
        run = cli(*command)
        assert run.code == 2 and said in the_error(run.err), (command, run.err)
        assert {path: path.read_bytes() for path in files} == files, command
    run = cli("check")  # check lists every problem on stdout, one line per file
    assert run.code == 2 and "Traceback" not in run.err and f"outputs/{A}-vs-{B}.md: not UTF-8 text" in run.out
    sidecar.unlink()  # a draft without its sidecar, drafted again or checked
    run = cli("draft", A, B)
    assert run.code == 2 and said in the_error(run.err), run.err
    run = cli("check")
    assert run.code == 2 and f"outputs/{A}-vs-{B}.md: not UTF-8 text" in run.out, run.out


ROOT = Path(__file__).resolve().parent.parent


def pipeline_run(project: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m pipeline ARGS`` in a process of its own, stdout and stderr pipes, with ``env`` added."""
    return subprocess.run([sys.executable, "-m", "pipeline", "--root", str(project), *args], cwd=ROOT, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env}, capture_output=True, timeout=120)


def test_huggingface_offline_mode_is_said_once_before_any_request(fake: FakeChatServer, cli, project: Path) -> None:
    """HF_HUB_OFFLINE is read when huggingface_hub is imported: a process of its own, as a user runs it."""
    run = pipeline_run(project, "draft", A, B, HF_HUB_OFFLINE="1")
    assert run.returncode == 2, run.stderr
    error = one_error(run.stderr)
    assert "HF_HUB_OFFLINE" in error and "offline mode is on" in error and "localhost" in error
    assert "retrying" not in run.stderr and "could not connect" not in run.stderr
    nothing_written(project, fake)
    assert cli("draft", A, B).code == 0  # online: every review is cached
    run = pipeline_run(project, "draft", A, B, HF_HUB_OFFLINE="1")
    assert run.returncode == 0 and len(fake.history) == 8, "offline, a draft that needs no request is made"


def test_preview_out_dev_stdout_writes_the_page_to_stdout(fake: FakeChatServer, cli, project: Path) -> None:
    """/dev/stdout is a pipe here, as in `preview X --out /dev/stdout | less`: written to, not replaced beside."""
    assert cli("draft", A, B).code == 0
    run = pipeline_run(project, "preview", f"{A}-vs-{B}", "--out", "/dev/stdout")
    assert run.returncode == 0 and run.stderr == "", run.stderr
    assert run.stdout.lstrip().lower().startswith("<!doctype html>") and run.stdout.rstrip().endswith("</html>")


def test_a_symlinked_draft_has_its_sidecar_beside_the_link(fake: FakeChatServer, cli, project: Path,
                                                            tmp_path: Path) -> None:
    """outputs/x.md links to a page kept elsewhere; its sidecar stays in outputs/, beside the link."""
    assert cli("draft", A, B).code == 0
    link = project / "outputs" / f"{A}-vs-{B}.md"
    kept = project / "elsewhere" / "comparison.md"
    kept.parent.mkdir()
    link.rename(kept)
    link.symlink_to(kept)
    for command in (("stale",), ("stale", f"{A}-vs-{B}"), ("check",)):
        run = cli(*command)
        assert run.code == 0 and "provenance" not in run.out + run.err, (command, run.out, run.err)
    html = tmp_path / "preview.html"
    assert cli("preview", f"{A}-vs-{B}", "--out", str(html)).code == 0
    assert "no sidecar" not in html.read_text()
    sheet = project / "tools" / f"{B}.toml"
    sheet.write_text(sheet.read_text().replace('entry = "Free"', 'entry = "Free weights"'))
    run = cli("refresh")
    assert run.code == 0, run.err
    assert link.is_symlink() and "Free weights" in kept.read_text(), "the page is refreshed where the link leads"
    assert cli("stale").code == 0
    kept.write_text(kept.read_text().replace("Which one", "Which tool"))
    assert cli("draft", A, B, "--force").code == 0
    assert link.is_symlink() and "Which one" in kept.read_text(), "drafted again where the link leads"


@pytest.mark.parametrize("inside", [False, True], ids=["cache outside the project", "cache inside it"])
def test_a_placeholder_names_its_kept_reply_without_the_machines_path(fake: FakeChatServer, cli, project: Path,
                                                                      tmp_path: Path, monkeypatch,
                                                                      inside: bool) -> None:
    """The page and its sidecar are committed: the kept reply is named relative to the project, or to the cache."""
    if inside:
        monkeypatch.setenv("VERDICTS_CACHE_DIR", str(project / ".cache"))
    short = json.dumps({"verdict": "ship", "quote": "Too short to pass."})
    fake.responder = lambda request: short if lens_and_tool(request)[0] == "buyer" else synthetic(request)
    assert cli("draft", A, B).code == 4
    name = f".cache/failed/{B}--buyer.json" if inside else f"{{cache_dir}}/failed/{B}--buyer.json"
    page = (project / "outputs" / f"{A}-vs-{B}.md").read_text(encoding="utf-8")
    sidecar = json.loads((project / "outputs" / f"{A}-vs-{B}.provenance.json").read_text(encoding="utf-8"))
    assert f"kept in `{name}`" in page and sidecar["sections"][f"buyer:{B}"]["kept"] == name
    assert str(tmp_path) not in page and str(tmp_path) not in json.dumps(sidecar)
    run = cli("accept", f"{A}-vs-{B}", f"buyer:{B}")  # and accept still finds it
    assert run.code == 0, run.err
    assert "> “Too short to pass.”" in (project / "outputs" / f"{A}-vs-{B}.md").read_text(encoding="utf-8")


def test_json_files_of_ours_nested_100000_deep_are_bad_input_not_a_traceback(fake: FakeChatServer, cli,
                                                                              project: Path, tmp_path: Path) -> None:
    """Files the pipeline writes and reads back, broken by hand: the stale digests (a cache, so ignored), a kept
    reply for accept, a calibration corpus line."""
    deep = "[" * 100_000 + "]" * 100_000
    short = json.dumps({"verdict": "ship", "quote": "Too short to pass."})
    fake.responder = lambda request: short if lens_and_tool(request)[0] == "buyer" else synthetic(request)
    assert cli("draft", A, B).code == 4
    (tmp_path / "cache" / "stale-digests.json").write_text(deep)
    run = cli("stale")
    assert run.code == 1 and "Traceback" not in run.err and "no valid review yet" in run.out, run.err
    kept = tmp_path / "cache" / "failed" / f"{B}--buyer.json"
    kept.write_text(deep)
    run = cli("accept", f"{A}-vs-{B}", f"buyer:{B}")
    assert run.code == 2 and str(kept) in one_error(run.err) and "nested too deeply" in run.err, run.err
    corpus = tmp_path / "corpus-copy"
    shutil.copytree(ROOT / "calibration", corpus)
    lines = corpus / "corpus" / "w1-terse-american.jsonl"
    lines.write_text(lines.read_text(encoding="utf-8") + deep + "\n", encoding="utf-8")
    run = cli("calibrate", "--corpus", str(corpus))
    assert run.code == 2 and str(lines) in one_error(run.err) and "line 41" in run.err and "nested too deeply" \
        in run.err, run.err
