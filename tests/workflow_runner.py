"""A GitHub Actions job's ``run:`` steps, run on this machine as the hosted runner would run them.

Each ``run:`` script runs with ``bash --noprofile --norc -eo pipefail`` (GitHub's ``bash`` shell), in order, in a
workspace checked out from a local bare repository, with the GITHUB_* variables, the event's payload file, fresh
GITHUB_OUTPUT and GITHUB_ENV files per step, and every ``${{ ... }}`` substituted from the event's contexts: a
field the payload lacks becomes the empty string, as on GitHub. ``uses:`` steps are skipped, except
actions/checkout, which is done for real the way actions/checkout@v4 does it (git init, fetch, check out the
event's ref; it leaves no ``origin/HEAD``).

On the steps' PATH: ``gh``, a stand-in that records each call (one JSON line) and answers from a small state file
(one pull request, like GitHub's for the one head branch); ``make``, whose ``install`` gives the workspace a
``.venv/bin/python`` that runs this interpreter on this checkout's ``pipeline``; and ``git``, the real one,
with each call recorded.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
GIT = shutil.which("git") or "git"

_TOKEN = re.compile(r"\s*(?:(\|\|)|'((?:[^']|'')*)'|([A-Za-z_][\w-]*(?:\.[\w-]+)*))")
_EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}")


class Unsupported(AssertionError):
    """The workflow uses an expression or a step form this runner does not know: extend it, never guess."""


def evaluate(expression: str, contexts: dict[str, Any]) -> Any:
    """``a.b.c || 'literal' || ...``: the first truthy operand, else the last; a missing field is None (null)."""
    text, position, tokens = expression.strip(), 0, []
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise Unsupported(f"cannot evaluate ${{{{ {expression.strip()} }}}} (at {text[position:]!r})")
        tokens.append(match)
        position = match.end()
    operands, operators = tokens[0::2], tokens[1::2]
    if not operands or len(operands) != len(operators) + 1 or any(t.group(1) for t in operands) \
            or any(not t.group(1) for t in operators):
        raise Unsupported(f"cannot evaluate ${{{{ {expression.strip()} }}}}: only paths, 'strings' and ||")
    value: Any = None
    for operand in operands:
        literal = operand.group(2)
        value = literal.replace("''", "'") if literal is not None else lookup(contexts, operand.group(3))
        if value:
            return value
    return value


def lookup(contexts: dict[str, Any], path: str) -> Any:
    value: Any = contexts
    for name in path.split("."):
        if not isinstance(value, dict) or name not in value:
            return None
        value = value[name]
    return value


def substitute(text: str, contexts: dict[str, Any]) -> str:
    def one(match: re.Match[str]) -> str:
        value = evaluate(match.group(1), contexts)
        return "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)

    return _EXPRESSION.sub(one, str(text))


def read_file_commands(path: Path) -> dict[str, str]:
    """GITHUB_OUTPUT / GITHUB_ENV: ``name=value`` lines and ``name<<DELIMITER`` blocks."""
    values, lines = {}, path.read_text().splitlines() if path.exists() else []
    index = 0
    while index < len(lines):
        line = lines[index]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            end = lines.index(delimiter, index + 1)
            values[name] = "\n".join(lines[index + 1:end])
            index = end + 1
            continue
        name, value = line.split("=", 1)
        values[name] = value
        index += 1
    return values


@dataclass
class Step:
    name: str
    code: int
    out: str
    err: str


@dataclass
class Run:
    """One job run: its steps as they ran (a failing step ends the job, as on GitHub), and what it called."""

    steps: list[Step]
    gh: list[list[str]]  # each gh call's arguments
    gh_tokens: list[str]  # the GH_TOKEN each gh call saw
    git: list[str]  # each git call's arguments, joined by spaces
    checkout: dict[str, str] = field(default_factory=dict)  # actions/checkout's inputs, substituted

    @property
    def ok(self) -> bool:
        return all(step.code == 0 for step in self.steps)

    @property
    def output(self) -> str:
        return "".join(f"--- {step.name} (exit {step.code})\n{step.out}{step.err}" for step in self.steps)

    def pushes(self) -> list[str]:
        return [call for call in self.git if call.startswith("push")]


def git(*args: str, cwd: Path | None = None, check: bool = True) -> str:
    result = subprocess.run([GIT, *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {result.stderr}")
    return result.stdout.strip()


class Runner:
    """Runs one job of one workflow file against the bare repository ``origin`` (a path)."""

    def __init__(self, tmp: Path, origin: Path, workflow: str, job: str) -> None:
        self.tmp, self.origin = tmp, origin
        data = yaml.safe_load((ROOT / ".github" / "workflows" / workflow).read_text())
        self.job = data["jobs"][job]
        self.bin = tmp / "runner-bin"
        self.calls = tmp / "calls"
        self.calls.mkdir(exist_ok=True)
        self.state = tmp / "github-state.json"  # the pull request GitHub would hold, as the gh stand-in sees it
        if not self.state.exists():
            self.state.write_text(json.dumps({"pr": None, "origin": str(origin)}))
        self._install_stand_ins()
        self.runs = 0

    def _install_stand_ins(self) -> None:
        self.bin.mkdir(exist_ok=True)
        gh = self.bin / "gh"
        gh.write_text(f"#!{sys.executable}\n" + GH.replace("@STATE@", str(self.state))
                      .replace("@CALLS@", str(self.calls / "gh.jsonl")).replace("@GIT@", GIT))
        make = self.bin / "make"
        make.write_text(MAKE.replace("@PYTHON@", sys.executable).replace("@ROOT@", str(ROOT)))
        recorder = self.bin / "git"
        recorder.write_text(f'#!/bin/sh\nprintf \'%s\\n\' "$*" >> "{self.calls / "git.log"}"\nexec "{GIT}" "$@"\n')
        for script in (gh, make, recorder):
            script.chmod(0o755)

    @property
    def pr(self) -> dict[str, Any] | None:
        state: dict[str, Any] = json.loads(self.state.read_text())
        return state["pr"]

    def merged(self) -> None:
        """An editor merged the pull request (or closed it): it is no longer open."""
        state = json.loads(self.state.read_text())
        state["pr"]["open"] = False
        self.state.write_text(json.dumps(state))

    def run(self, event: str, payload: dict[str, Any], ref: str, *, secrets: dict[str, str] | None = None,
            env: dict[str, str] | None = None) -> Run:
        """One run for ``event`` (its payload as GitHub sends it) on ``ref``. ``env`` overrides the workflow's."""
        self.runs += 1
        here = self.tmp / f"run-{self.runs}"
        workspace, temp = here / "workspace", here / "runner-temp"
        temp.mkdir(parents=True)
        event_path = here / "event.json"
        event_path.write_text(json.dumps(payload))
        for log in ("gh.jsonl", "git.log"):
            (self.calls / log).write_text("")
        github = {"event_name": event, "event": payload, "ref": ref, "ref_name": ref.split("/", 2)[-1],
                  "token": "ghs_workflow_token", "run_id": str(1000 + self.runs), "repository": "acme/verdicts",
                  "workspace": str(workspace)}
        contexts: dict[str, Any] = {"github": github, "secrets": {**(secrets or {})}, "vars": {}, "steps": {},
                                    "runner": {"temp": str(temp)}}
        # The runner's own variables; GitHub lets no step change them.
        fixed = {"GITHUB_ACTIONS": "true", "CI": "true", "GITHUB_EVENT_NAME": event,
                 "GITHUB_EVENT_PATH": str(event_path), "GITHUB_REF": ref, "GITHUB_REF_NAME": github["ref_name"],
                 "GITHUB_REPOSITORY": "acme/verdicts", "GITHUB_RUN_ID": github["run_id"],
                 "GITHUB_WORKSPACE": str(workspace), "RUNNER_TEMP": str(temp)}
        job_env = {name: substitute(value, contexts) for name, value in (self.job.get("env") or {}).items()}
        set_env: dict[str, str] = {}  # what steps wrote to GITHUB_ENV
        steps: list[Step] = []
        checkout: dict[str, str] = {}
        for index, step in enumerate(self.job["steps"]):
            if "uses" in step:
                if step["uses"].startswith("actions/checkout@"):
                    checkout = {k: substitute(v, contexts) for k, v in (step.get("with") or {}).items()}
                    self._checkout(workspace, ref, int(checkout.get("fetch-depth", "1")))
                continue
            if "if" in step or step.get("shell", "bash") != "bash":
                raise Unsupported(f"step {step.get('name')!r}: `if:` and other shells are not run here")
            step_env = {name: substitute(value, contexts) for name, value in (step.get("env") or {}).items()}
            clash = set(set_env) & (set(job_env) | set(step_env))
            if clash:  # which wins is the runner's business; a workflow must not depend on it
                raise Unsupported(f"GITHUB_ENV sets {sorted(clash)}, which the workflow's env: also sets")
            output, env_file = here / f"output-{index}", here / f"env-{index}"
            environ = {**os.environ, "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}", **set_env, **job_env,
                       **step_env, **(env or {}), **fixed, "GITHUB_OUTPUT": str(output), "GITHUB_ENV": str(env_file)}
            script = temp / f"step-{index}.sh"
            script.write_text(substitute(step["run"], contexts))
            result = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                                    cwd=workspace, env=environ, capture_output=True, text=True, timeout=300)
            steps.append(Step(step.get("name", step["run"].splitlines()[0]), result.returncode, result.stdout,
                              result.stderr))
            if "id" in step:
                contexts["steps"][step["id"]] = {"outputs": read_file_commands(output)}
            set_env.update(read_file_commands(env_file))
            if result.returncode != 0:
                break
        calls = [json.loads(line) for line in (self.calls / "gh.jsonl").read_text().splitlines()]
        return Run(steps, [c["args"] for c in calls], [c["token"] for c in calls],
                   (self.calls / "git.log").read_text().splitlines(), checkout)

    def _checkout(self, workspace: Path, ref: str, depth: int) -> None:
        """As actions/checkout@v4: a new repository, origin, the event's ref fetched, then checked out."""
        workspace.mkdir(parents=True)
        git("init", "-q", cwd=workspace)
        git("remote", "add", "origin", self.origin.as_uri(), cwd=workspace)
        if ref.startswith("refs/heads/"):
            local = f"refs/remotes/origin/{ref.removeprefix('refs/heads/')}"
        else:  # refs/pull/<n>/merge
            local = f"refs/remotes/pull/{ref.split('/')[2]}/merge"
        if depth == 0:
            git("fetch", "-q", "--prune", "origin", "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*",
                f"+{ref}:{local}", cwd=workspace)
        else:
            git("fetch", "-q", "--no-tags", f"--depth={depth}", "origin", f"+{ref}:{local}", cwd=workspace)
        if ref.startswith("refs/heads/"):
            git("checkout", "-q", "--force", "-B", ref.removeprefix("refs/heads/"), local, cwd=workspace)
        else:
            git("checkout", "-q", "--force", "--detach", local, cwd=workspace)


# The gh stand-in. Like GitHub, it refuses a pull request whose head or base branch is not in the repository.
GH = r'''
import json, os, subprocess, sys

STATE, CALLS, GIT = "@STATE@", "@CALLS@", "@GIT@"
args = sys.argv[1:]
with open(CALLS, "a") as calls:
    calls.write(json.dumps({"args": args, "token": os.environ.get("GH_TOKEN", "")}) + "\n")
with open(STATE) as f:
    state = json.load(f)
pr = state["pr"]


def option(name):
    return args[args.index(name) + 1] if name in args else None


def body():
    if "--body-file" in args:
        with open(option("--body-file")) as f:
            return f.read()
    return option("--body")


def branch_exists(name):
    return subprocess.run([GIT, "--git-dir", state["origin"], "rev-parse", "--verify", "--quiet",
                           f"refs/heads/{name}"], capture_output=True).returncode == 0


def fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)


is_open = bool(pr and pr["open"])
if args[:2] == ["pr", "list"] and option("--state") == "open" and option("--jq") == "length":
    print(1 if is_open and pr["head"] == option("--head") else 0)
elif args[:2] == ["pr", "create"]:
    head, base = option("--head"), option("--base")
    if is_open:
        fail(f'a pull request for branch "{head}" into branch "{base}" already exists')
    if not base or not branch_exists(base) or not branch_exists(head):
        fail(f"pull request create failed: GraphQL: Head sha can't be blank, Base ref must be a branch "
             f"(head {head!r}, base {base!r})")
    number = (pr["number"] + 1) if pr else 1
    state["pr"] = {"number": number, "head": head, "base": base, "title": option("--title"), "body": body(),
                   "open": True, "comments": []}
    print(f"https://github.com/acme/verdicts/pull/{number}")
elif args[:2] in (["pr", "edit"], ["pr", "comment"]):
    if not is_open or args[2] != pr["head"]:
        fail(f"no open pull request found for branch {args[2]!r}")
    if args[1] == "comment":
        pr["comments"].append(body())
    else:
        pr["title"] = option("--title") or pr["title"]
        pr["body"] = pr["body"] if body() is None else body()
    print(f"https://github.com/acme/verdicts/pull/{pr['number']}")
else:
    fail(f"gh stand-in: unexpected call {args}")
with open(STATE, "w") as f:
    json.dump(state, f)
'''

# The make stand-in: `make install` as far as the workflows need it, a .venv/bin/python that runs the pipeline.
MAKE = '''#!/bin/sh
if [ "$*" != install ]; then
  echo "make stand-in: only 'make install' is known, not '$*'" >&2
  exit 2
fi
mkdir -p .venv/bin
printf '#!/bin/sh\\nPYTHONPATH="%s" exec "%s" "$@"\\n' "@ROOT@" "@PYTHON@" > .venv/bin/python
chmod +x .venv/bin/python
'''
