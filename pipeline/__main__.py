"""``python -m pipeline``. Start-up makes objects that live as long as the process (modules, classes, pydantic
schemas, about 90,000 of them): the cycle collector, which would scan them over and over for nothing (about 30 ms
of a cold draft), is off until the command's module is imported; then they are frozen out of its scans
(``gc.freeze``) and it runs as usual (cli.run)."""

import gc

gc.disable()

from .cli import leave, main  # noqa: E402

leave(main())
