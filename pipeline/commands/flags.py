"""Flags that several commands share, each added the same way wherever it appears."""

from __future__ import annotations

import argparse
from pathlib import Path


def model(parser: argparse.ArgumentParser) -> None:
    """Flags that change which model answers, so they change the cache key and what counts as stale."""
    parser.add_argument("--backend", choices=["endpoint", "hf", "local"], help="force a backend (VERDICTS_BACKEND)")
    parser.add_argument("--model", help="model id or served model name (VERDICTS_MODEL)")
    parser.add_argument(
        "--provider",
        help="Inference Providers provider or policy: auto, fastest, cheapest, or a provider name (VERDICTS_PROVIDER)",
    )


def requests(parser: argparse.ArgumentParser) -> None:
    """Flags of a command that sends requests: budget, concurrency, timeout, cache."""
    parser.add_argument(
        "--max-cost",
        type=float,
        metavar="USD",
        help="refuse to start above this forecast, stop sending once reached (VERDICTS_MAX_COST)",
    )
    unknown_prices(parser)
    parser.add_argument(
        "--concurrency",
        type=int,
        help="requests in flight per model or server at first; grows "
        "while replies come back clean, halves on 429 or 503; 1 means one at a time "
        "(VERDICTS_CONCURRENCY)",
    )
    parser.add_argument(
        "--max-concurrency",
        type=int,
        metavar="N",
        help="the most requests in flight per model or server (VERDICTS_MAX_CONCURRENCY)",
    )
    parser.add_argument("--timeout", type=float, help="seconds per request (VERDICTS_TIMEOUT)")
    cache_dir(parser)
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="send every request, even for reviews the cache holds, and overwrite their entries",
    )


def unknown_prices(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-unknown-prices",
        action="store_true",
        default=None,
        help="under --max-cost, run even where a model has no known price; the budget then counts "
        "only the priced requests (VERDICTS_ALLOW_UNKNOWN_PRICES)",
    )


def cache_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache-dir", type=Path, help="response cache directory (VERDICTS_CACHE_DIR)")


def drafts(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "drafts",
        nargs="*",
        metavar="DRAFT",
        help="outputs/<a>-vs-<b>.md files or <a>-vs-<b> names (default: every draft in outputs/)",
    )
