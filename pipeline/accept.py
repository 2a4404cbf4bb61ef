"""The ``accept`` command: an editor takes a kept reply as it is, for a quote the model never got right.

The reply is cached as accepted (it is not held to the lens's rules again, by ``check`` either), and put in place
of the placeholder through the same three-way merge as any regenerated quote. Nothing is sent and no backend is
needed: the draft's other missing quotes wait for ``refresh``.
"""

from __future__ import annotations

from pathlib import Path

from .cache import ReviewCache
from .errors import InputError, parse_json
from .project import Project, kept_path
from .provenance import sidecar_path
from .review import Review, parse_section
from .validate import NeedsReask, normalise_quote, parse_reply


def accept(project: Project, path: Path, names: list[str]) -> dict[str, Review]:
    """Cache each named section's kept reply as accepted; returns the accepted reviews by section."""
    record = project.draft_file(path).read().record  # the page too: a draft that cannot be read, before anything
    if record is None:
        raise InputError(sidecar_path(path), None, "not found: only a draft made by the pipeline has kept replies")
    reviews: dict[str, Review] = {}
    keys: dict[str, Review] = {}
    for name in names:
        section = record.sections.get(name)
        if section is None or not section.key:
            raise InputError("command line", "SECTION", f"{name!r} is not a quote of {path.name}",
                             hint="Quotes: " + ", ".join(n for n, s in record.sections.items() if s.key))
        if not section.missing:
            raise InputError("command line", "SECTION", f"{name} already has a quote; there is nothing to accept")
        kept_file = kept_path(section.kept, project.root, project.settings.cache_dir)
        try:
            kept = parse_json(kept_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(kept_file, None, f"the kept reply cannot be read ({exc})",
                             hint=f"Run `python -m pipeline refresh {path.stem}` to ask the model again.") from None
        if not isinstance(kept, dict) or kept.get("key") != section.key:
            raise InputError(kept_file, "key", "the kept reply is for another prompt or model",
                             hint=f"Run `python -m pipeline refresh {path.stem}` to ask the model again.")
        try:
            reply = parse_reply(kept.get("last_reply"))
        except NeedsReask as exc:
            raise InputError(kept_file, "last_reply", f"cannot be used as it is: {'; '.join(exc.problems)}",
                             hint=f"Run `python -m pipeline refresh {path.stem}` to ask the model again.") from None
        review = Review(*parse_section(name), reply.verdict, normalise_quote(reply.quote), str(kept.get("model", "")),
                        str(kept.get("provider", "")), accepted=True)
        # Under the key the draft recorded, and the key a refresh in this shell plans: the same unless the
        # environment changed since.
        keys[section.key] = keys[project.job(*parse_section(name)).key] = reviews[name] = review
    cache = ReviewCache(project.settings.cache_dir)
    try:
        for key, review in keys.items():
            cache.keep(key, review)
    finally:
        cache.close()
    return reviews
