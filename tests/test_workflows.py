"""The CI workflows: actionlint (with shellcheck for run: scripts) passes, and they do what the README says."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    assert found, f"{name} is not installed: it comes with the dev extra (make install)"
    return found


def actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("actionlint"), "-no-color", "-shellcheck", tool("shellcheck"), *map(str, files)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_every_workflow_passes_actionlint() -> None:
    assert [w.name for w in WORKFLOWS] == ["checks.yml", "drafts-up-to-date.yml", "refresh-drafts.yml"]
    result = actionlint(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("change", "expected"), [
    (("runs-on:", "runs_on:"), 'unexpected key "runs_on"'),
    (('>> "$GITHUB_OUTPUT"', ">> $GITHUB_OUTPUT"), "SC2086"),  # shellcheck reads the run: scripts
])
def test_actionlint_catches_a_broken_workflow(tmp_path: Path, change: tuple[str, str], expected: str) -> None:
    text = (ROOT / ".github" / "workflows" / "refresh-drafts.yml").read_text()
    assert change[0] in text
    broken = tmp_path / "broken.yml"
    broken.write_text(text.replace(*change))
    result = actionlint(broken)
    assert result.returncode != 0 and expected in result.stdout, result.stdout


def load(name: str) -> dict:
    data = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as a boolean
    return data


def test_refresh_workflow_triggers_caches_and_opens_one_pull_request() -> None:
    workflow = load("refresh-drafts.yml")
    assert set(workflow["on"]["push"]["paths"]) == {"tools/**", "personas/**", "prompts/**", "pyproject.toml"}
    assert workflow["on"]["schedule"] and "workflow_dispatch" in workflow["on"]
    steps = workflow["jobs"]["refresh"]["steps"]
    uses = [step.get("uses", "") for step in steps]
    assert any(u.startswith("actions/cache@") for u in uses)
    refresh = next(step for step in steps if step.get("id") == "refresh")
    assert refresh["env"]["HF_TOKEN"] == "${{ secrets.HF_TOKEN }}"
    assert "pipeline refresh --pr-body" in refresh["run"]
    runs = "\n".join(step.get("run", "") for step in steps)
    assert 'gh pr create --head "$BRANCH"' in runs and 'gh pr edit "$BRANCH"' in runs
    assert runs.count('--body-file "$RUNNER_TEMP/pr-body.md"') == 2, "the body is the one the pipeline wrote"
    assert "--force" not in runs and "push -f" not in runs, "an editor's commits on the branch are never lost"


@pytest.mark.parametrize("name", ["drafts-up-to-date.yml"])
def test_pull_requests_fail_when_drafts_are_stale(name: str) -> None:
    workflow = load(name)
    assert "pull_request" in workflow["on"]
    runs = [step.get("run", "") for step in workflow["jobs"]["stale"]["steps"]]
    assert any("pipeline stale" in run for run in runs)
    assert "HF_TOKEN" not in (ROOT / ".github" / "workflows" / name).read_text(), "a stale check needs no secret"


def test_checks_workflow_runs_lint_and_every_available_tier_on_pull_requests_and_main() -> None:
    workflow = load("checks.yml")
    assert "pull_request" in workflow["on"] and workflow["on"]["push"]["branches"] == ["main"]
    job = workflow["jobs"]["checks"]
    assert job["runs-on"] == "ubuntu-latest"
    python = next(step for step in job["steps"] if step.get("uses", "").startswith("actions/setup-python@"))
    assert python["with"]["python-version"] == "3.11"
    runs = [step["run"] for step in job["steps"] if "run" in step]
    assert runs.index("make install") < runs.index("make lint") < runs.index(next(r for r in runs if "make test" in r))
    test = next(run for run in runs if "make test" in run)
    assert "chromium" not in test and "local_model" not in test and "slow" not in test, "only reference is left out"
    assert "VERDICTS_REQUIRE_ALL_TIERS" not in test, "make test sets it; the workflow does not override it"
    assert "secrets." not in (ROOT / ".github" / "workflows" / "checks.yml").read_text()
