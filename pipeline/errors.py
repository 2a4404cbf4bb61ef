"""Every error the pipeline raises on purpose. ``cli.main`` turns them into one message and an exit status."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

# Exit statuses, every one the pipeline uses.
OK = 0
FAILED = 1  # an unexpected failure (an OSError); ``stale`` also exits 1 when it finds stale drafts
STALE = 1
BAD_INPUT = 2
BACKEND_FAILED = 3
REPLY_INVALID = 4
CONFLICT = 5  # refresh finished, but an editor must look: overlapping edits, or drafts it could not refresh
OVER_BUDGET = 6
INTERRUPTED = 130


@dataclass
class Outcome:
    """How a command ended: the lines it prints on stdout, and its exit status."""

    lines: list[str] = field(default_factory=list)
    exit_code: int = OK


def plural(count: int, noun: str, nouns: str = "") -> str:
    """``1 request``, ``2 requests``: a count with its noun (``nouns`` where adding an s is wrong)."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


SECRET_VARIABLES = ("HF_TOKEN", "VERDICTS_API_KEY")


def redact(text: str) -> str:
    """Belt and braces: no secret's value leaves the process in a message or a log line."""
    for name in SECRET_VARIABLES:
        value = os.environ.get(name, "")
        if len(value) >= 4:
            text = text.replace(value, f"<{name}>")
    return text


class VerdictsError(Exception):
    """Root of the pipeline's errors: a message for the user and a hint on how to fix it."""

    exit_code = FAILED
    hint = ""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint

    @property
    def message(self) -> str:
        return str(self.args[0])


class InputError(VerdictsError):
    """Bad input from the editor: a fact sheet, a persona, a template, a setting or a slug."""

    exit_code = BAD_INPUT

    def __init__(self, file: Path | str, field: str | None, problem: str, hint: str | None = None) -> None:
        self.file = str(file)
        self.field = field
        self.problem = problem
        where = f"{self.file}: {field}: " if field else f"{self.file}: "
        super().__init__(where + problem, hint)


def explain(exc: ValidationError, allowed: Iterable[str] = (), unknown: str = "unknown key") -> tuple[str | None, str]:
    """The first problem pydantic found, as (dotted field, problem) in the editor's words."""
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or None
    if first["type"] == "extra_forbidden":
        names = list(allowed) if len(first["loc"]) == 1 else []
        return field, unknown + (f"; allowed keys: {', '.join(names)}" if names else "")
    if first["type"] == "missing":
        return field, "required key is missing"
    return field, first["msg"].removeprefix("Value error, ")


class BackendError(VerdictsError):
    """No usable backend, or a backend that cannot be reached or refuses us."""

    exit_code = BACKEND_FAILED


class CreditsExhausted(BackendError):
    """HTTP 402: the account has no credits left. Never retried."""

    hint = "Add credits to the Hugging Face account (or the one named by bill_to), then run the draft again."


class TransportError(BackendError):
    """A request that still failed after every transport retry, or failed in a way that is not retried."""

    def __init__(self, message: str, status: int | None, attempts: int, hint: str | None = None) -> None:
        self.status = status
        self.attempts = attempts
        super().__init__(message, hint)


class GaveUpOnReply(VerdictsError):
    """The model kept answering with replies that break the reply rules, after every re-ask."""

    exit_code = REPLY_INVALID

    def __init__(self, lens: str, tool: str, problems: list[str], attempts: int, kept: Path | None) -> None:
        self.lens = lens
        self.tool = tool
        self.problems = problems
        self.attempts = attempts
        self.kept = kept
        detail = "; ".join(problems)
        message = f"{lens} review of {tool}: the model's reply was still invalid after {attempts} requests: {detail}"
        hint = f"The last reply is kept in {kept}." if kept else None
        super().__init__(message, hint)


class BudgetReached(VerdictsError):
    """The running cost estimate reached VERDICTS_MAX_COST: nothing more is sent."""

    exit_code = OVER_BUDGET

    def __init__(self, spent: float, budget: float, requests: int) -> None:
        self.spent, self.budget, self.requests = spent, budget, requests
        super().__init__(f"the budget of ${budget:.4f} was reached after {requests} requests (about ${spent:.4f} "
                         "spent); stopped sending, no page written",
                         hint="Every reply received is cached: run again with a higher --max-cost (or "
                         "VERDICTS_MAX_COST) and only the rest is requested.")


class OverBudget(VerdictsError):
    """The forecast is above VERDICTS_MAX_COST, or cannot be priced: nothing was sent."""

    exit_code = OVER_BUDGET
