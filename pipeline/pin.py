"""The ``pin`` command: pinned sections keep their last generated text through ``refresh`` and ``draft``."""

from __future__ import annotations

from pathlib import Path

from .errors import InputError
from .provenance import DraftFile, sidecar_path, write_record


def pin(draft: Path, names: list[str], unpin: bool = False) -> list[str]:
    """Pin sections (refresh leaves them alone) or release them; returns what is pinned now."""
    record = DraftFile(draft).read().record  # the page too: a pin keeps its text, which must be readable
    if record is None:
        raise InputError(sidecar_path(draft), None, "not found: only a draft made by the pipeline can be pinned")
    for name in names:
        if name not in record.sections:
            raise InputError("command line", "SECTION", f"{name!r} is not a section of {draft.name}",
                             hint="Sections: " + ", ".join(record.sections))
    pinned = set(record.pinned) - set(names) if unpin else set(record.pinned) | set(names)
    write_record(draft, record.model_copy(update={"pinned": sorted(pinned)}))
    return sorted(pinned)
