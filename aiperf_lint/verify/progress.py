"""A one-line progress indicator on stderr, shown only when stderr is a terminal."""

from __future__ import annotations

import shutil
import time
from typing import TextIO


class ProgressLine:
    def __init__(self, stream: TextIO):
        self.stream = stream
        self.enabled = stream.isatty()
        self.prefix = ""
        self.started = time.monotonic()

    def set_prefix(self, prefix: str) -> None:
        self.prefix = prefix
        self.update("")

    def update(self, stage: str) -> None:
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.started
        text = f"{self.prefix}: {stage}" if stage else self.prefix
        width = shutil.get_terminal_size((100, 20)).columns - 1
        line = f"{elapsed:6.0f}s {text}"[:width]
        self.stream.write("\r" + line + "\x1b[K")  # \x1b[K clears the rest of the old line
        self.stream.flush()

    def clear(self) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
