"""Every error the pipeline raises on purpose. ``cli.main`` turns them into one message and an exit status."""

from __future__ import annotations

import difflib
import json
import re
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .secret import redact

if TYPE_CHECKING:  # pydantic is heavy to import; a command that never validates does not pay for it
    from pydantic import BaseModel, ValidationError
from typing import Any

# Exit statuses, every one the pipeline uses.
OK = 0
STALE = 1  # stale drafts, unresolved conflicts, approved texts in dispute, or a draft not publishable as it stands
BAD_INPUT = 2  # an editorial file, a setting or a flag is wrong (a persona edit that fails calibration included)
BACKEND_FAILED = 3
REPLY_INVALID = 4
CONFLICT = 5  # refresh finished, but an editor must look: overlapping edits, or drafts it could not refresh
OVER_BUDGET = 6
NOT_WRITTEN = 7  # the machine refused a read or a write (a full disk, a read-only file system, no permission)
UNEXPECTED = 70  # a bug in verdicts (sysexits' EX_SOFTWARE): the traceback is printed
INTERRUPTED = 130
CLOSED_PIPE = 141  # 128 + SIGPIPE: a reader closed our pipe before the command finished


@dataclass
class Outcome:
    """How a command ended: the lines it prints on stdout, what went wrong (stderr), and its exit status."""

    lines: list[str] = field(default_factory=list)
    exit_code: int = OK
    errors: list[str] = field(default_factory=list)  # printed as "error: ..." once the lines are out


def parse_json(text: str | bytes) -> Any:
    """``json.loads``, with JSON nested deeper than the parser goes (a RecursionError) raised as the ValueError any
    other bad JSON raises: a file of ours that someone broke is bad input, never a traceback."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def plural(count: int, noun: str, nouns: str = "") -> str:
    """``1 request``, ``2 requests``: a count with its noun (``nouns`` where adding an s is wrong)."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


def money(value: float | None) -> str:
    """A cost in USD as the reports print it; "unknown" when it cannot be priced (never $0)."""
    return "unknown" if value is None else f"${value:.4f}"


# Control characters that a terminal acts on (ESC starts colour, cursor and title sequences; C1 0x9b is CSI) and
# invisible characters that make text read differently from what it holds (bidi overrides, zero-width).
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069]")


def neutralise(text: str) -> str:
    """Text safe to print on a terminal: every control or invisible character but newline and tab is shown as an
    escape (``\\x1b``, ``\\u202e``) instead of acting on the terminal."""
    return UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}",
                      text)


def clip(text: str, limit: int = 120) -> str:
    """At most ``limit`` characters of user input for a message, redacted first (so a cut cannot split a secret)."""
    text = redact(text)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text) - limit} more characters)"


def printable(text: str) -> str:
    """A line for the terminal: secrets redacted, control characters neutralised."""
    return neutralise(redact(text))


class VerdictsError(Exception):
    """Root of the pipeline's errors: a message for the user and a hint on how to fix it."""

    exit_code = UNEXPECTED  # every error raised on purpose names its own status
    hint = ""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint

    @property
    def message(self) -> str:
        return str(self.args[0])


class InputError(VerdictsError):
    """Bad input from the editor: a fact sheet, a persona, a template, a setting or a slug.

    ``problems`` holds every (field, problem) found in the file; ``field`` and ``problem`` are the first.
    """

    exit_code = BAD_INPUT

    def __init__(self, file: Path | str, field: str | None, problem: str, hint: str | None = None) -> None:
        self.file = str(file)
        self.field = field
        self.problem = problem
        self.problems: list[tuple[str | None, str]] = [(field, problem)]
        where = f"{clip(self.file, 300)}: {clip(field)}: " if field else f"{clip(self.file, 300)}: "
        super().__init__(where + problem, hint)

    @classmethod
    def every(cls, file: Path | str, problems: list[tuple[str | None, str]], hint: str | None = None) -> InputError:
        """One error for all the problems of one file: the file, then a line per problem naming its field."""
        if len(problems) == 1:
            return cls(file, *problems[0], hint=hint)
        lines = [f"  {clip(field)}: {problem}" if field else f"  {problem}" for field, problem in problems]
        error = cls(file, None, f"{len(problems)} problems:\n" + "\n".join(lines), hint)
        error.field, error.problem = problems[0]
        error.problems = list(problems)
        return error


def explain_all(exc: ValidationError, allowed: Iterable[str] | None = None, unknown: str = "unknown key",
                model: type[BaseModel] | None = None) -> list[tuple[str | None, str]]:
    """Every problem pydantic found, as (dotted field, problem) in the editor's words, in pydantic's order.

    ``allowed`` are the keys a file may have at its top level (default: ``model``'s fields); ``model`` also
    gives the keys of nested tables, so an unknown key anywhere can be matched to the key it was meant to be.
    """
    errors = exc.errors()
    top = list(allowed) if allowed is not None else list(model.model_fields) if model is not None else []

    def keys_at(parent: tuple[int | str, ...]) -> list[str]:
        return top if not parent else _keys_at(model, parent) if model is not None else []

    unknown_at: dict[tuple[int | str, ...], list[str]] = {}
    for error in errors:
        if error["type"] == "extra_forbidden" and error["loc"]:
            unknown_at.setdefault(tuple(error["loc"][:-1]), []).append(str(error["loc"][-1]))
    found: list[tuple[str | None, str]] = []
    for error in errors:
        loc = tuple(error["loc"])
        field = ".".join(str(part) for part in loc) or None
        kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
        if kind == "extra_forbidden" and loc:
            keys = keys_at(loc[:-1])
            close = _closest(str(loc[-1]), keys)
            problem = unknown + (f"; did you mean {close}?" if close else
                                 f"; allowed keys: {', '.join(keys)}" if keys else "")
        elif kind == "missing":
            typo = _closest(str(loc[-1]), unknown_at.get(loc[:-1], [])) if loc else None
            problem = "required key is missing" + (f"; {typo} looks like a typo for it" if typo else "")
        elif kind in ("string_too_short", "too_short") and ctx.get("min_length") == 1:
            problem = "must not be empty"
        elif kind == "string_too_short" or (kind == "too_short" and isinstance(value, str)):
            problem = f"is shorter than {ctx.get('min_length')} characters"
        elif kind == "string_too_long" or (kind == "too_long" and isinstance(value, str)):
            problem = f"is longer than {ctx.get('max_length')} characters"
        elif kind == "too_short":
            problem = f"needs at least {ctx.get('min_length')} items"
        elif kind == "too_long":
            problem = f"has more than {ctx.get('max_length')} items"
        else:
            problem = error["msg"].removeprefix("Value error, ")
        found.append((field, problem))
    return found


def explain(exc: ValidationError, allowed: Iterable[str] | None = None,
            unknown: str = "unknown key") -> tuple[str | None, str]:
    """The first problem pydantic found, as (dotted field, problem): for callers that report one."""
    return explain_all(exc, allowed, unknown)[0]


def _closest(word: str, choices: list[str]) -> str | None:
    """The choice ``word`` was most likely meant to be, if any is close (case aside: ``Name`` is ``name``)."""
    lowered = {choice.lower(): choice for choice in choices}
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1)
    return lowered[close[0]] if close else None


def _keys_at(model: type[BaseModel], path: tuple[int | str, ...]) -> list[str]:
    """The keys of the table at ``path`` inside ``model`` (``("fallbacks", 0)`` -> a Fallback's keys)."""
    from pydantic import BaseModel

    kind: Any = model
    for part in path:
        kind = _unwrap(kind, item=isinstance(part, int))
        if isinstance(part, str):
            if not (isinstance(kind, type) and issubclass(kind, BaseModel)) or part not in kind.model_fields:
                return []
            kind = kind.model_fields[part].annotation
    kind = _unwrap(kind, item=False)
    return list(kind.model_fields) if isinstance(kind, type) and issubclass(kind, BaseModel) else []


def _unwrap(kind: Any, item: bool) -> Any:
    """Through ``Annotated`` and ``X | None``, and into a list's items when ``item``."""
    while True:
        origin, args = typing.get_origin(kind), typing.get_args(kind)
        if origin is typing.Annotated:
            kind = args[0]
        elif origin in (typing.Union, types.UnionType):
            kind = next(arg for arg in args if arg is not type(None))
        elif item and origin in (list, tuple):
            kind, item = args[0], False
        else:
            return kind


class BackendError(VerdictsError):
    """No usable backend, or a backend that cannot be reached or refuses us."""

    exit_code = BACKEND_FAILED


class CreditsExhausted(BackendError):
    """HTTP 402: the account has no credits left. Never retried."""

    hint = "Add credits to the Hugging Face account (or the one named by bill_to), then run the draft again."


class RoutingRefused(BackendError):
    """The router will not serve the run as it is configured (no provider the account has enabled serves the model,
    the organisation billed has the provider disabled, a pinned provider was taken out of routing): every other
    request would be refused alike, so the run stops at the first, without a retry or a fallback."""

    hint = ""


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
        requests = plural(attempts, "request")
        message = f"{lens} review of {tool}: the model's reply was still invalid after {requests}: {detail}"
        hint = f"The last reply is kept in {kept}." if kept else None
        super().__init__(message, hint)


class NotServed(BackendError):
    """A review no target could serve, in a run that goes on without it (``refresh``): its quote is a
    placeholder, and the run ends with the backend's exit status once every page it could write is written."""

    def __init__(self, lens: str, tool: str, failure: TransportError) -> None:
        self.lens, self.tool, self.kept = lens, tool, None
        self.problems = [f"the backend failed: {failure.message}"]
        super().__init__(failure.message, failure.hint)


class BudgetReached(VerdictsError):
    """The running cost estimate reached VERDICTS_MAX_COST: nothing more is sent."""

    exit_code = OVER_BUDGET

    def __init__(self, spent: float, budget: float, requests: int) -> None:
        self.spent, self.budget, self.requests = spent, budget, requests
        sent = plural(requests, "request")
        super().__init__(f"the budget of ${budget:.4f} was reached after {sent} (about ${spent:.4f} spent); "
                         "stopped sending, no page written",
                         hint="Every reply received is cached: run again with a higher --max-cost (or "
                         "VERDICTS_MAX_COST) and only the rest is requested.")


class OverBudget(VerdictsError):
    """The forecast is above VERDICTS_MAX_COST, or cannot be priced: nothing was sent."""

    exit_code = OVER_BUDGET


class UnknownPrice(VerdictsError):
    """A budget is set and a target has no known price: the run would spend an amount no one can check. Nothing
    was sent (unless the editor allows unknown prices)."""

    exit_code = BAD_INPUT


class CacheUnwritable(VerdictsError):
    """The response cache cannot be written (a full disk, a file size limit, no permission, a read-only file
    system): the machine's failure, not the input's, and the replies cached there are intact."""

    exit_code = NOT_WRITTEN


class ProviderNotServing(VerdictsError):
    """A lens is pinned to a provider the router does not list for its model: refused before anything is sent."""

    exit_code = BAD_INPUT


class NoCatalogue(VerdictsError):
    """The router's model list could not be read, and no earlier copy is kept."""

    exit_code = BAD_INPUT
