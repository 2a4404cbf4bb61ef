"""A throwaway project for the benchmarks: the live personas, prompts and settings, and N generated fact sheets
(copies of one tool under new names)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def make_project(directory: Path, tools: int, width: int = 4) -> list[str]:
    """Fill ``directory`` with a project of ``tools`` fact sheets; their slugs, ``tool-0000`` on."""
    for name in ("personas", "prompts", "pyproject.toml"):
        source = ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, directory / name)
    sample = (ROOT / "tools" / "mistral-3-small.toml").read_text(encoding="utf-8")
    (directory / "tools").mkdir()
    slugs = [f"tool-{n:0{width}d}" for n in range(tools)]
    for n, slug in enumerate(slugs):
        text = sample.replace('name = "Mistral 3 Small (24B)"', f'name = "Bench Tool {n}"')
        (directory / "tools" / f"{slug}.toml").write_text(text, encoding="utf-8")
    return slugs


def scratch(tmp: Path, tools: int) -> tuple[Path, list[str], dict[str, str]]:
    """A throwaway project of ``tools`` generated fact sheets under ``tmp``, their slugs, and an environment for its
    commands: none of the shell's VERDICTS_* settings or token, the cache under ``tmp``."""
    project = tmp / "project"
    project.mkdir()
    slugs = make_project(project, tools)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERDICTS_") and k != "HF_TOKEN"}
    env.update(HF_HUB_DISABLE_TELEMETRY="1", VERDICTS_CACHE_DIR=str(tmp / "cache"))
    return project, slugs, env
