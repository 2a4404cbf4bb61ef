"""``python -m pipeline``: see ``pipeline.startup`` for what happens around the command, and why."""

from . import startup

startup.importing()

from .cli import main  # noqa: E402

startup.leave(main())
