"""The suite runs on its own project: a test that reads the editors' live tools/, personas/ or outputs/ fails.

Editors change those files every week; the tests must keep passing whatever they hold. The guard is the audit hook
in conftest.py; these tests run small pytest sessions with our conftest to show that it catches a read, even one
the code under test swallows, and that copying the files on purpose (``reading_live_files``) is allowed.
"""

from __future__ import annotations

import pytest

import tests.conftest as conftest
from pipeline.load import load_personas
from tests.conftest import FIXTURE, LIVE_EDITORIAL, ROOT


def run_session(pytester: pytest.Pytester, source: str) -> pytest.RunResult:
    pytester.makeini("[pytest]\naddopts = -rfEs\n")
    pytester.makepyfile(source)
    return pytester.runpytest("-p", "no:hypothesispytest", "-p", "no:cacheprovider", plugins=[conftest])


def test_reading_live_editorial_files_fails_the_test(pytester: pytest.Pytester) -> None:
    result = run_session(pytester, """
        import shutil

        from pipeline.load import load_personas, load_tool
        from tests.conftest import ROOT, reading_live_files

        def test_loads_the_live_personas():
            load_personas(ROOT)

        def test_loads_a_live_sheet():
            load_tool(ROOT, "mistral-3-small")

        def test_lists_the_live_drafts():
            list((ROOT / "outputs").glob("*.md"))

        def test_swallows_what_it_read():
            try:
                (ROOT / "tools" / "mistral-3-small.toml").read_text()
            except Exception:
                pass

        def test_uses_the_fixture_copy(project):
            assert len(load_personas(project)) >= 1

        def test_copies_the_live_files_on_purpose(tmp_path):
            with reading_live_files():
                shutil.copytree(ROOT / "personas", tmp_path / "personas")
    """)
    result.assert_outcomes(passed=2, failed=4)
    result.stdout.fnmatch_lines(["*LiveEditorialRead: a test read the live editorial file *personas*"])
    result.stdout.fnmatch_lines(["*the test read live editorial files (use the `project` fixture): *small.toml"])


def test_the_guard_covers_every_live_editorial_directory() -> None:
    assert {path.name for path in LIVE_EDITORIAL} == {"tools", "personas", "outputs"}
    assert all(path.parent == ROOT for path in LIVE_EDITORIAL)


def test_the_fixture_project_is_complete_on_its_own(project) -> None:
    """tests/fixture holds the editorial files and settings; only the templates come from the repository."""
    assert {path.name for path in FIXTURE.iterdir()} >= {"tools", "personas", "pyproject.toml"}
    assert not (FIXTURE / "prompts").exists() and not (FIXTURE / "outputs").exists()
    assert [p.lens for p in load_personas(project)] == [p.lens for p in load_personas(FIXTURE)]
    assert (project / "prompts" / "system.j2").read_text() == (ROOT / "prompts" / "system.j2").read_text()
