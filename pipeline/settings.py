"""Settings, one precedence: command-line flag > ``VERDICTS_*`` environment variable > ``[tool.verdicts]``
in pyproject.toml > the defaults below."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import InputError, clip, explain
from .load import read_toml
from .secret import public_url

BackendName = Literal["endpoint", "hf", "local"]
# How an endpoint is asked for the reply schema (pipeline/dialects.py); auto: detected once per server and run.
StructuredDialect = Literal["auto", "json_schema", "json_object_schema", "tgi", "none"]
# Where Inference Providers are reached; a review sent there records this address.
HF_ROUTER = "https://router.huggingface.co"
# Routing policies a provider setting may name instead of a provider: the router picks among its live providers.
POLICIES = ("auto", "fastest", "cheapest")


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = "Qwen/Qwen2.5-72B-Instruct"
    provider: str = "auto"
    bill_to: str = ""
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    max_tokens: int = Field(700, ge=64, le=8192)
    concurrency: int = Field(8, ge=1, le=64)  # requests in flight per target at first; 1: one at a time, always
    max_concurrency: int = Field(64, ge=1, le=256)  # the most a target's learned limit may reach (limiter.py)
    timeout: float = Field(60.0, gt=0.0)
    transport_attempts: int = Field(5, ge=1, le=20)
    retry_after_cap: float = Field(30.0, ge=0.0)
    backoff_initial: float = Field(1.0, ge=0.0)
    backoff_max: float = Field(20.0, ge=0.0)
    reask_attempts: int = Field(2, ge=0, le=10)
    structured: bool = True  # ask for the reply schema as response_format; replies are validated anyway
    structured_dialect: StructuredDialect = "auto"  # the response_format shape an endpoint gets (dialects.py)
    local_model: str = "Qwen/Qwen2.5-3B-Instruct-GGUF/qwen2.5-3b-instruct-q4_k_m.gguf"
    local_context: int = Field(4096, ge=512)
    local_threads: int | None = Field(None, ge=1)
    cache_dir: Path = Path(".cache/verdicts")
    run_log_mb: float = Field(20.0, gt=0.0)  # past this, a run first cuts <cache_dir>/runs.jsonl to its newest runs
    base_url: str = ""
    # The Inference Providers router (VERDICTS_ROUTER_URL for a proxy, or a fake in tests): chat completions and its
    # model catalogue are read there, and the Hugging Face token goes there and nowhere else.
    router_url: str = HF_ROUTER
    backend: BackendName | None = None
    max_cost: float | None = Field(None, ge=0.0)  # USD; refuse to start above it, stop sending once reached
    # Under a budget, a target with no known price refuses the run; true lets it run, the budget counting only the
    # requests that have a price.
    allow_unknown_prices: bool = False
    # USD per million tokens, [input, output], keyed "<model>:<provider>", or "<model>" for an endpoint (a plain
    # model key never prices Inference Providers).
    prices: dict[str, tuple[float, float]] = {}
    prices_as_of: str = ""  # when the prices were read off the providers' pages

    @field_validator("prices")
    @classmethod
    def _prices_are_prices(cls, prices: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        """A price is a finite number >= 0: TOML allows ``nan`` and ``inf``, and a NaN or negative price would
        make every cost compare below the budget."""
        for key, pair in prices.items():
            for name, value in zip(("input", "output"), pair, strict=True):
                if not (math.isfinite(value) and value >= 0):
                    raise ValueError(f'"{clip(key)}": the {name} price, {value:g}, is not a finite number >= 0 '
                                     "(USD per million tokens)")
        return prices


# Settings read from the environment, by field. Secrets are not settings: they are read where they are used.
ENV_NAMES = {name: f"VERDICTS_{name.upper()}" for name in Settings.model_fields}


def choose_backend(settings: Settings, env: Mapping[str, str] | None = None) -> BackendName:
    """The backend a draft would use: VERDICTS_BACKEND, else an endpoint URL, else HF_TOKEN, else local."""
    env = os.environ if env is None else env
    if settings.backend is not None:
        return settings.backend
    return "endpoint" if settings.base_url else "hf" if env.get("HF_TOKEN") else "local"


def server_of(settings: Settings, backend: str) -> str:
    """The server a backend's reviews come from: an endpoint's address, the router's, or none (the local model
    is named by its file)."""
    if backend == "endpoint":
        return public_url(settings.base_url)
    return public_url(settings.router_url) if backend == "hf" else ""


# The settings that decide which model answers and how it is asked. A draft records those that came from the
# environment or the command line (and the backend chosen), so `stale` compares it against the repository's
# inputs as they are now, and not against the next shell's environment.
REPLY_SETTINGS = ("model", "provider", "temperature", "max_tokens", "structured")


def environment_choices(repository: Settings, settings: Settings, backend: str) -> dict[str, Any]:
    """What the environment and the command line chose for a run, beyond ``pyproject.toml`` (``repository``)."""
    chosen: dict[str, Any] = {"backend": backend}
    if backend == "endpoint":
        chosen["base_url"] = public_url(settings.base_url)
    if backend == "hf" and public_url(settings.router_url) != public_url(repository.router_url):
        chosen["router_url"] = public_url(settings.router_url)
    if backend == "local" and settings.local_model != repository.local_model:
        chosen["local_model"] = settings.local_model
    for name in REPLY_SETTINGS:
        if getattr(settings, name) != getattr(repository, name):
            chosen[name] = getattr(settings, name)
    return chosen


def load_settings(root: Path, env: Mapping[str, str] | None = None, **flags: Any) -> Settings:
    """Merge the four layers; an invalid value names where it came from."""
    env = os.environ if env is None else env
    pyproject = root / "pyproject.toml"
    layers: dict[str, tuple[Any, str]] = {}
    if pyproject.is_file():
        tool = read_toml(pyproject, "pyproject.toml").get("tool", {})
        table = tool.get("verdicts", {}) if isinstance(tool, dict) else None
        if not isinstance(table, dict):
            raise InputError(pyproject, "tool" if table is None else "tool.verdicts", "must be a table")
        for key, value in table.items():
            layers[key] = (value, f"{pyproject} [tool.verdicts]")
    for field, var in ENV_NAMES.items():
        if env.get(var, "") != "":
            layers[field] = (env[var], f"environment variable {var}")
    for field, value in flags.items():
        if value is not None:
            layers[field] = (value, f"option --{field.replace('_', '-')}")
    try:
        settings = Settings(**{key: value for key, (value, _) in layers.items()})
    except ValidationError as exc:
        where, problem = explain(exc, unknown="unknown setting")
        name = (where or "?").split(".")[0]
        raise InputError(layers.get(name, (None, str(pyproject)))[1], where or "?", problem) from None
    if not settings.cache_dir.is_absolute():
        settings = settings.model_copy(update={"cache_dir": root / settings.cache_dir})
    return settings


# Command-line options that override a setting (argparse destinations named like the fields).
FLAGS = ("backend", "model", "provider", "concurrency", "max_concurrency", "timeout", "cache_dir",
         "max_cost", "allow_unknown_prices")


def settings_for(root: Path, args: object) -> Settings:
    """The settings of a command, with the options it was given (``args`` is argparse's namespace)."""
    return load_settings(root, **{name: getattr(args, name, None) for name in FLAGS})
