"""The CI workflows: actionlint (with shellcheck for run: scripts) passes, and they do what the README says."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from pipeline.cli import main
from tests.fakeserver import FakeChatServer, attentive
from tests.test_refresh import quote_line, set_entry
from tests.workflow_runner import Run as WorkflowRun
from tests.workflow_runner import Runner, git

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
    assert any(u.startswith("actions/cache/restore@") for u in uses)
    assert any(u.startswith("actions/cache/save@") for u in uses)
    refresh = next(step for step in steps if step.get("id") == "refresh")
    assert refresh["env"]["HF_TOKEN"] == "${{ secrets.HF_TOKEN }}"
    assert "pipeline refresh --pr-body" in refresh["run"]
    runs = "\n".join(step.get("run", "") for step in steps)
    assert 'gh pr create --head "$BRANCH"' in runs and 'gh pr edit "$BRANCH"' in runs
    assert runs.count('--body-file "$RUNNER_TEMP/pr-body.md"') == 2, "the body is the one the pipeline wrote"
    # The one forced push is leased on the commit the run saw (the scenarios below show when it happens).
    assert runs.count("--force") == 1 and '--force-with-lease="refs/heads/$BRANCH:$LEASE"' in runs
    assert "push -f" not in runs and "reset --hard" not in runs


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


# The workflows run for real: their `run:` steps, in order, with bash, in a checkout of a local bare repository
# seeded with the test project and one draft, as the hosted runner would run them for each event
# (tests/workflow_runner.py). The drafts are refreshed against the fake server.

A, B = "hf-inference-providers", "mistral-3-small"
B_NAME = "Mistral 3 Small (24B)"
DRAFT = f"outputs/{A}-vs-{B}.md"
BRANCH = "verdicts/refresh-drafts"
SECRETS = {"HF_TOKEN": "hf_not_used_against_the_fake_server"}
ENDPOINT = {"VERDICTS_BACKEND": "endpoint"}  # instead of the workflow's hf: the fake server (VERDICTS_BASE_URL)
LIST_OPEN = ["pr", "list", "--head", BRANCH, "--state", "open", "--json", "number", "--jq", "length"]
SCHEDULE = {"schedule": "23 6 * * 1"}  # a schedule event's whole payload: no repository, no ref


class Origin:
    """A bare repository standing for GitHub's, and an editor's clone of it."""

    def __init__(self, tmp: Path, project: Path, default: str) -> None:
        self.bare, self.default = tmp / "origin.git", default
        git("init", "-q", "--bare", f"--initial-branch={default}", str(self.bare))
        (project / ".gitignore").write_text(".venv/\n.cache/\n")
        git("init", "-q", f"--initial-branch={default}", cwd=project)
        git("add", "-A", cwd=project)
        git("commit", "-q", "-m", "The project, with one draft", cwd=project)
        git("push", "-q", self.bare.as_uri(), default, cwd=project)
        self.editor = tmp / "editor"
        git("clone", "-q", self.bare.as_uri(), str(self.editor))

    def commit(self, branch: str, message: str, change: Callable[[Path], None], start: str | None = None) -> str:
        """An editor's commit on ``branch`` (new from ``start``), pushed."""
        git("fetch", "-q", "origin", cwd=self.editor)
        git("checkout", "-q", "-B", branch, f"origin/{start or branch}", cwd=self.editor)
        change(self.editor)
        git("add", "-A", cwd=self.editor)
        git("commit", "-q", "-m", message, cwd=self.editor)
        git("push", "-q", "origin", f"HEAD:refs/heads/{branch}", cwd=self.editor)
        return self.head(branch)

    def head(self, branch: str) -> str:
        return git("--git-dir", str(self.bare), "rev-parse", f"refs/heads/{branch}")

    def show(self, branch: str, path: str) -> str:
        return git("--git-dir", str(self.bare), "show", f"refs/heads/{branch}:{path}")

    def log(self, branch: str) -> list[str]:
        """``branch``'s commits, newest first: "<author name>: <subject>"."""
        return git("--git-dir", str(self.bare), "log", "--format=%an: %s", f"refs/heads/{branch}").splitlines()

    def parents(self, branch: str) -> list[str]:
        return git("--git-dir", str(self.bare), "rev-parse", f"refs/heads/{branch}^@").split()

    def is_ancestor(self, commit: str, branch: str) -> bool:
        return subprocess.run(["git", "--git-dir", str(self.bare), "merge-base", "--is-ancestor", commit,
                               f"refs/heads/{branch}"]).returncode == 0


def seed(tmp_path: Path, project: Path, fake: FakeChatServer, monkeypatch: pytest.MonkeyPatch,
         default: str) -> Origin:
    """The test project with one draft, pushed to a new bare repository whose default branch is ``default``."""
    config = tmp_path / "gitconfig"  # no setting of this machine's; commits the test makes are an editor's
    config.write_text("[user]\n\tname = Ed Itor\n\temail = ed@example.com\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    fake.responder = attentive  # a quote cites the tool's entry price: a new price, new quotes
    assert main(["--root", str(project), "draft", A, B]) == 0
    return Origin(tmp_path, project, default)


@pytest.fixture
def origin(tmp_path: Path, project: Path, fake: FakeChatServer, monkeypatch: pytest.MonkeyPatch) -> Origin:
    return seed(tmp_path, project, fake, monkeypatch, "main")


def refresh_runner(tmp_path: Path, origin: Origin) -> Runner:
    return Runner(tmp_path, origin.bare, "refresh-drafts.yml", "refresh")


def new_price(price: str) -> Callable[[Path], None]:
    return lambda tree: set_entry(tree, B, price)


def edit_quote(name: str, lens: str, text: str) -> Callable[[Path], None]:
    def change(tree: Path) -> None:
        page = tree / DRAFT
        original = page.read_text()
        page.write_text(original.replace(quote_line(original, name, lens), f"> “{text}”"))

    return change


def repository(default: str = "main") -> dict[str, str]:
    return {"name": "verdicts", "full_name": "acme/verdicts", "default_branch": default}


def push(origin: Origin, branch: str = "main") -> dict[str, object]:
    return {"ref": f"refs/heads/{branch}", "after": origin.head(branch), "repository": repository(origin.default)}


def dispatch(origin: Origin, branch: str) -> dict[str, object]:
    return {"ref": f"refs/heads/{branch}", "inputs": {}, "repository": repository(origin.default),
            "workflow": ".github/workflows/refresh-drafts.yml"}


def record(title: str, run: WorkflowRun) -> None:
    """The calls a run made, for whoever reads the test's output (pytest -s)."""
    print(f"\n== {title}")
    for call in run.gh:
        print("gh " + " ".join(shlex.quote(arg) for arg in call))
    for call in run.pushes():
        print("git " + call)


def calls(run: WorkflowRun) -> list[list[str]]:
    """The run's gh calls, a body file named by its name (it is in the run's own RUNNER_TEMP)."""
    return [[Path(arg).name if previous == "--body-file" else arg
             for previous, arg in zip(["", *call], call, strict=False)] for call in run.gh]


def create(base: str, title: str = "Refresh stale drafts") -> list[str]:
    return ["pr", "create", "--head", BRANCH, "--base", base, "--title", title, "--body-file", "pr-body.md"]


def test_a_scheduled_run_finds_the_default_branch_and_opens_the_pull_request(tmp_path: Path, origin: Origin) -> None:
    main_head = origin.commit("main", "Mistral's new price", new_price("$0.10 / M tokens"))
    runner = refresh_runner(tmp_path, origin)
    run = runner.run("schedule", SCHEDULE, "refs/heads/main", secrets={**SECRETS, "VERDICTS_PR_TOKEN": "github_pat_x"},
                     env=ENDPOINT)
    record("schedule", run)
    assert run.ok, run.output
    assert calls(run) == [LIST_OPEN, create("main")]
    assert run.pushes() == [f"push origin HEAD:refs/heads/{BRANCH}"]
    assert origin.parents(BRANCH) == [main_head]
    assert origin.log(BRANCH)[0] == "github-actions[bot]: Refresh stale drafts"
    assert "- Entry: **$0.10 / M tokens**" in origin.show(BRANCH, DRAFT)
    pr = runner.pr
    assert pr is not None and pr["base"] == "main" and pr["body"].startswith("## Refreshed drafts")
    assert f"`{DRAFT}`" in pr["body"] and f"tools/{B}.toml changed" in pr["body"]
    # The token that starts the pull request's checks: the checkout (so the push) and gh both use it.
    assert run.checkout["token"] == "github_pat_x" and set(run.gh_tokens) == {"github_pat_x"}


def test_a_scheduled_run_whose_backend_fails_some_reviews_opens_the_pull_request_then_fails(
        tmp_path: Path, origin: Origin, fake: FakeChatServer) -> None:
    """Issue 22: one tool's reviews failing every attempt still gives a pull request with every other change and
    the placeholders, and the job fails only after it (the cache is saved whatever happens: an always() step)."""
    origin.commit("main", "Prices change for both tools", lambda tree: (set_entry(tree, A, "$1 / M tokens"),
                                                                          set_entry(tree, B, "$0.10 / M tokens")))
    fake.failing["Mistral 3 Small (24B)"] = 500
    runner = refresh_runner(tmp_path, origin)
    run = runner.run("schedule", SCHEDULE, "refs/heads/main", secrets=SECRETS,
                     env={**ENDPOINT, "VERDICTS_TRANSPORT_ATTEMPTS": "2"})
    record("schedule, the backend failing one tool's reviews", run)
    assert [step.code for step in run.steps][-1] == 3, run.output
    assert "The backend failed for some reviews" in run.steps[-1].out + run.steps[-1].err
    assert calls(run) == [LIST_OPEN, create("main", "Refresh stale drafts (an editor must look)")]
    assert run.pushes() == [f"push origin HEAD:refs/heads/{BRANCH}"]
    page = origin.show(BRANCH, DRAFT)
    assert "Entry is $1 / M tokens, which sets the bar." in page, "the other tool's quotes are refreshed"
    assert page.count("**Missing ") == 4 and "No reply: the backend failed" in page
    assert runner.pr is not None and "**Quotes not served**" in runner.pr["body"]
    saves = [step for step in load("refresh-drafts.yml")["jobs"]["refresh"]["steps"]
             if step.get("uses", "").startswith("actions/cache/save@")]
    assert saves and saves[0].get("if") == "always()"


def test_a_push_to_main_opens_the_pull_request_with_the_workflow_token(tmp_path: Path, origin: Origin) -> None:
    main_head = origin.commit("main", "Mistral's new price", new_price("$0.10 / M tokens"))
    runner = refresh_runner(tmp_path, origin)
    run = runner.run("push", push(origin), "refs/heads/main", secrets=SECRETS, env=ENDPOINT)
    record("push", run)
    assert run.ok, run.output
    assert calls(run) == [LIST_OPEN, create("main")]
    assert run.pushes() == [f"push origin HEAD:refs/heads/{BRANCH}"] and origin.parents(BRANCH) == [main_head]
    assert run.checkout["token"] == "ghs_workflow_token" and set(run.gh_tokens) == {"ghs_workflow_token"}


def test_a_run_started_by_hand_on_another_branch_refreshes_the_default_branch(tmp_path: Path, project: Path,
                                                                               fake: FakeChatServer,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """workflow_dispatch from a feature branch, in a repository whose default branch is trunk: the pull request
    proposes the refreshed drafts of trunk, not the feature branch's commits."""
    origin = seed(tmp_path, project, fake, monkeypatch, "trunk")
    trunk_head = origin.commit("trunk", "Mistral's new price", new_price("$0.10 / M tokens"))
    origin.commit("workflow-tweak", "Try a workflow change", lambda tree: (tree / "notes.txt").write_text("wip\n"),
                  start="trunk")
    runner = refresh_runner(tmp_path, origin)
    run = runner.run("workflow_dispatch", dispatch(origin, "workflow-tweak"), "refs/heads/workflow-tweak",
                     secrets=SECRETS, env=ENDPOINT)
    record("workflow_dispatch", run)
    assert run.ok, run.output
    assert calls(run) == [LIST_OPEN, create("trunk")]
    assert run.pushes() == [f"push origin HEAD:refs/heads/{BRANCH}"]
    assert origin.parents(BRANCH) == [trunk_head], "built on trunk, not on the branch the run was started from"
    assert "notes.txt" not in git("--git-dir", str(origin.bare), "ls-tree", "--name-only", f"refs/heads/{BRANCH}")


def test_after_a_squash_merge_the_next_run_opens_no_empty_pull_request(tmp_path: Path, origin: Origin) -> None:
    origin.commit("main", "Mistral's new price", new_price("$0.10 / M tokens"))
    runner = refresh_runner(tmp_path, origin)
    assert runner.run("push", push(origin), "refs/heads/main", secrets=SECRETS, env=ENDPOINT).ok
    bot_head = origin.head(BRANCH)

    # An editor squash-merges the pull request (its branch is kept, as when "delete head branch" is off).
    def squash(tree: Path) -> None:
        git("merge", "--squash", f"origin/{BRANCH}", cwd=tree)

    origin.commit("main", "Refresh stale drafts (#1)", squash)
    runner.merged()
    assert not origin.is_ancestor(bot_head, "main")

    run = runner.run("workflow_dispatch", dispatch(origin, "main"), "refs/heads/main", secrets=SECRETS, env=ENDPOINT)
    record("workflow_dispatch after a squash merge", run)
    assert run.ok, run.output
    assert "Every draft on main is up to date; no pull request." in run.output
    assert run.gh == [LIST_OPEN] and run.pushes() == [], "no push, no pull request with no changed files"
    assert origin.head(BRANCH) == bot_head

    # The next change: the branch starts afresh from main, replacing the merged commits (leased on them).
    main_head = origin.commit("main", "Mistral's price again", new_price("$0.20 / M tokens"))
    run = runner.run("push", push(origin), "refs/heads/main", secrets=SECRETS, env=ENDPOINT)
    record("push after a squash merge", run)
    assert run.ok, run.output
    assert run.pushes() == [f"push --force-with-lease=refs/heads/{BRANCH}:{bot_head} origin HEAD:refs/heads/{BRANCH}"]
    assert calls(run) == [LIST_OPEN, LIST_OPEN, create("main")]
    assert origin.parents(BRANCH) == [main_head] and runner.pr is not None and runner.pr["number"] == 2


def conflicting_pair(tmp_path: Path, origin: Origin) -> tuple[Runner, str]:
    """An open refresh pull request that regenerated B's quotes, then an editor's rewrite of one of them on main:
    merging main into the branch conflicts. Returns the runner and main's head."""
    origin.commit("main", "Mistral's new price", new_price("$0.10 / M tokens"))
    runner = refresh_runner(tmp_path, origin)
    assert runner.run("push", push(origin), "refs/heads/main", secrets=SECRETS, env=ENDPOINT).ok
    main_head = origin.commit("main", "Tighter builder quote", edit_quote(B_NAME, "Builder", MINE))
    return runner, main_head


MINE = "My own builder verdict on this model, written on main, which no refresh may lose."


def test_a_conflict_with_main_on_a_branch_of_generated_commits_starts_it_afresh(tmp_path: Path,
                                                                                origin: Origin) -> None:
    runner, main_head = conflicting_pair(tmp_path, origin)
    bot_head = origin.head(BRANCH)
    run = runner.run("workflow_dispatch", dispatch(origin, "main"), "refs/heads/main", secrets=SECRETS, env=ENDPOINT)
    record("workflow_dispatch after main conflicts with the bot's branch", run)
    assert run.ok, run.output
    assert f"Merging main into {BRANCH} conflicts in {DRAFT}" in run.output
    assert run.pushes() == [f"push --force-with-lease=refs/heads/{BRANCH}:{bot_head} origin HEAD:refs/heads/{BRANCH}"]
    title = "Refresh stale drafts (an editor must look)"  # the pipeline's own merge keeps both texts in a block
    assert calls(run) == [LIST_OPEN, LIST_OPEN, ["pr", "edit", BRANCH, "--title", title,
                                                                    "--body-file", "pr-body.md"]]
    assert origin.parents(BRANCH) == [main_head]
    page = origin.show(BRANCH, DRAFT)
    assert MINE in page and "- Entry: **$0.10 / M tokens**" in page and "<<<<<<< your edit" in page
    assert runner.pr is not None and "Unresolved conflicts" in runner.pr["body"]
    # And the run after it builds on the branch again.
    rerun = runner.run("schedule", SCHEDULE, "refs/heads/main", secrets=SECRETS, env=ENDPOINT)
    assert rerun.ok and rerun.pushes() == [f"push origin HEAD:refs/heads/{BRANCH}"], rerun.output


def test_a_conflict_with_main_on_a_branch_with_an_editors_commits_stops_and_says_so(tmp_path: Path,
                                                                                    origin: Origin) -> None:
    runner, _ = conflicting_pair(tmp_path, origin)
    a_name = "Hugging Face Inference Providers Marketplace"
    theirs = origin.commit(BRANCH, "Settle the wording", edit_quote(a_name, "Skeptic", "An editor's skeptic line."))
    run = runner.run("workflow_dispatch", dispatch(origin, "main"), "refs/heads/main", secrets=SECRETS, env=ENDPOINT)
    record("workflow_dispatch after main conflicts with an editor's branch", run)
    assert not run.ok and run.steps[-1].name == "Start from the open refresh branch, if there is one"
    assert "::error::The refresh workflow could not merge `main` into" in run.output
    assert "This branch has commits by Ed Itor <ed@example.com>" in run.output
    assert run.pushes() == [] and origin.head(BRANCH) == theirs, "the editor's commit is the branch's head still"
    assert run.gh[:-1] == [LIST_OPEN] and run.gh[-1][:3] == ["pr", "comment", BRANCH]
    assert runner.pr is not None and len(runner.pr["comments"]) == 1
    assert f"both changed nearby lines in {DRAFT}" in runner.pr["comments"][0]


def test_a_quiet_run_keeps_the_pull_request_body(tmp_path: Path, origin: Origin) -> None:
    origin.commit("main", "Mistral's new price", new_price("$0.10 / M tokens"))
    runner = refresh_runner(tmp_path, origin)
    assert runner.run("push", push(origin), "refs/heads/main", secrets=SECRETS, env=ENDPOINT).ok
    assert runner.pr is not None
    body = runner.pr["body"]
    assert f"tools/{B}.toml changed" in body
    main_head = origin.commit("main", "A note for editors", lambda tree: (tree / "NOTES.md").write_text("Hi.\n"))

    run = runner.run("workflow_dispatch", dispatch(origin, "main"), "refs/heads/main", secrets=SECRETS, env=ENDPOINT)
    record("quiet workflow_dispatch", run)
    assert run.ok, run.output
    assert runner.pr["body"] == body, "what changed and why is still what the pull request says"
    assert run.gh == [LIST_OPEN, LIST_OPEN, ["pr", "edit", BRANCH, "--title", "Refresh stale drafts"]]
    assert run.pushes() == [f"push origin HEAD:refs/heads/{BRANCH}"] and main_head in origin.parents(BRANCH)


def pull_request(origin: Origin, number: int, head: str) -> dict[str, object]:
    """GitHub's merge ref for the pull request (refs/pull/<n>/merge) and its payload."""
    git("fetch", "-q", "origin", cwd=origin.editor)
    git("checkout", "-q", "--detach", "origin/main", cwd=origin.editor)
    git("merge", "-q", "--no-ff", "--no-edit", f"origin/{head}", cwd=origin.editor)
    # GitHub rewrites the merge ref on every push to the pull request: a new merge commit, not a descendant
    git("push", "-q", "origin", f"+HEAD:refs/pull/{number}/merge", cwd=origin.editor)
    return {"action": "synchronize", "number": number, "repository": repository(),
            "pull_request": {"number": number, "head": {"ref": head, "sha": origin.head(head)},
                             "base": {"ref": "main", "sha": origin.head("main")}}}


def test_drafts_up_to_date_fails_a_pull_request_that_leaves_drafts_stale(tmp_path: Path, origin: Origin) -> None:
    # No VERDICTS_* variable changes what `stale` finds (it plans each quote as recorded), so the workflow sets
    # none; and `--backend hf` would fail this draft, made with another backend, though nothing changed.
    assert not any(name.startswith("VERDICTS_") for name in load("drafts-up-to-date.yml")["jobs"]["stale"]["env"])
    runner = Runner(tmp_path, origin.bare, "drafts-up-to-date.yml", "stale")
    origin.commit("comment", "A comment in a fact sheet", lambda tree: (tree / "tools" / f"{B}.toml").write_text(
        "# checked 2025-01-01\n" + (tree / "tools" / f"{B}.toml").read_text()), start="main")
    fresh = runner.run("pull_request", pull_request(origin, 6, "comment"), "refs/pull/6/merge")
    assert fresh.ok, fresh.output
    assert "0 of 1 draft stale." in fresh.output
    as_hf = runner.run("pull_request", pull_request(origin, 6, "comment"), "refs/pull/6/merge",
                       env={"VERDICTS_BACKEND": "hf"})
    assert as_hf.ok and as_hf.steps[-1].out == fresh.steps[-1].out, "the variable changes nothing"
    workspace = tmp_path / f"run-{runner.runs}" / "workspace"
    with_option = subprocess.run([".venv/bin/python", "-m", "pipeline", "stale", "--backend", "hf"], cwd=workspace,
                                 capture_output=True, text=True, timeout=120)
    assert with_option.returncode == 1 and "1 of 1 draft stale" in with_option.stdout, with_option.stdout

    origin.commit("price", "Mistral's new price", new_price("$0.10 / M tokens"), start="main")
    stale = runner.run("pull_request", pull_request(origin, 7, "price"), "refs/pull/7/merge")
    assert not stale.ok and stale.steps[-1].code == 1, stale.output
    assert f"card of {B}: tools/{B}.toml changed" in stale.steps[-1].out
    assert "1 of 1 draft stale; `make refresh` regenerates them." in stale.steps[-1].out
