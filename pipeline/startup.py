"""Start-up and exit of ``python -m pipeline``: the one place that trades plain code for speed.

A cold draft spends most of its wall time waiting for one model reply, so the process's own start and end are
what is left to win (bench/cold_draft.py and bench/peer_ratio.py measure them). Each trick here was measured on
its own, and each changes nothing a command does, only when it happens:

- ``importing``: the cycle collector is off while the command's modules are imported. Start-up makes about 90,000
  objects that live as long as the process (modules, classes, pydantic schemas); scanning them again and again for
  cycles took about 30 ms of a cold draft. ``started`` then freezes them out of its scans and turns it back on.
- ``warm_http_session``: huggingface_hub's shared HTTP client is built in a background thread while the prompts
  render. Most of that is loading the TLS certificates (about 25 ms), which runs outside the GIL.
- ``leave``: the process ends without the interpreter's teardown of every module and object (60-80 ms), once the
  exit handlers have run and stdout and stderr are flushed.
- Import order: ``__main__`` calls ``importing`` before it imports anything else of ours; a command imports its
  engine only when it runs (``pipeline.commands``), so ``--help`` and parsing load none of them.

The tests call ``cli.main`` in-process, where none of this applies: only ``python -m pipeline`` uses it.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import os
import sys
import threading
from typing import NoReturn


def importing() -> None:
    """Before the command's modules are imported: no cycle collection while they are."""
    gc.disable()


def started() -> None:
    """The command's modules are in: what they built is frozen out of the collector's scans, which go on as usual.
    Does nothing where ``importing`` was not called (the tests' in-process ``main``)."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def warm_http_session() -> None:
    """Build huggingface_hub's shared HTTP client in the background, ahead of the first request."""
    threading.Thread(target=_build_session, name="http-session", daemon=True).start()


def _build_session() -> None:
    """A failure here is left for the first request to meet and report as every transport error is (cli.say: one
    line, secrets redacted), never as a thread's traceback."""
    with contextlib.suppress(Exception):  # the first request builds it again and says what went wrong
        from huggingface_hub.utils import get_session

        get_session()


def silence() -> None:
    """After a reader closed our pipe (``stale | head -1``): say nothing more, and point stdout and stderr at
    /dev/null, so the interpreter's last flush of what is left in their buffers cannot fail (exit 120)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # not a file descriptor (tests capture output in memory)
            os.dup2(devnull, stream.fileno())
    os.close(devnull)


def leave(code: int) -> NoReturn:
    """End ``python -m pipeline`` with ``code`` once everything is out, without the interpreter's teardown.

    Nothing is lost by skipping it: every file a command writes is closed (and replaced atomically) before the
    command returns, the response cache and its locks are closed, and the workers still alive are daemon threads
    whose replies nobody waits for. As at a normal exit, the ``atexit`` handlers run and stdout and stderr are
    flushed; while a thread that is not a daemon is still at work, it is the normal exit.
    """
    if any(thread.is_alive() and not thread.daemon and thread is not threading.main_thread()
           for thread in threading.enumerate()):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:  # a reader closed the pipe after the command finished: its status stands
            silence()
        except (OSError, ValueError):
            pass
    os._exit(code)
