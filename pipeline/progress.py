"""Progress while reviews are generated: a tqdm bar on a terminal, quiet lines elsewhere (CI, pipes)."""

from __future__ import annotations

import sys
import threading
from typing import TextIO

from .errors import printable


class Progress:
    def __init__(self, log: TextIO | None = None, bar: bool | None = None) -> None:
        self.log = log or sys.stderr
        self.bar_enabled = self.log.isatty() if bar is None else bar
        self._bar = None
        self._lock = threading.Lock()
        self.done = self.cached = self.retrying = 0

    def start(self, total: int, what: str) -> None:
        if self.bar_enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=what, unit="review", file=self.log, leave=True,
                             bar_format="{desc}: {n}/{total} {bar} {postfix} [{elapsed}]")
            self._postfix()

    def _postfix(self) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(f"{self.cached} cached, {self.retrying} retrying")

    def say(self, line: str) -> None:
        """A line of its own: above the bar on a terminal, as is elsewhere; secrets redacted, control characters
        (a server's words may carry terminal escapes) shown as escapes."""
        line = printable(line)
        with self._lock:
            if self._bar is not None:
                self._bar.write(line, file=self.log)
            else:
                print(line, file=self.log, flush=True)

    def finished(self, line: str, cached: bool) -> None:
        with self._lock:
            self.done += 1
            self.cached += cached
            if self._bar is not None:
                self._bar.update(1)
                self._postfix()
                return
        self.say(line)

    def retry(self, change: int) -> None:
        with self._lock:
            self.retrying += change
            self._postfix()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
