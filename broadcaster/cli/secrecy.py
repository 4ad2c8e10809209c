"""The CLI's own output scrubbed of secrets: every log line on stderr (the service logs through the same
handler) and every error message. Nothing is known to be secret until the settings are loaded; from then
on their scrubber (config.scrubber) applies. One per process, like the logging configuration it feeds."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TextIO

from broadcaster.domain.text import printable

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class OutputScrubber:
    """Passes text through the settings' scrubber, once `use` has been given it."""

    def __init__(self) -> None:
        self._scrub: Callable[[str], str] = str

    def use(self, scrub: Callable[[str], str]) -> None:
        self._scrub = scrub

    def __call__(self, text: str) -> str:
        return self._scrub(text)


class ScrubbingFormatter(logging.Formatter):
    """Formats a record as usual, then scrubs the whole line: the message, and any exception or stack
    text, which may quote a URL or a header from deep inside a library. Control characters in it (a
    receiver's reason phrase with a terminal escape) are made visible, as everywhere text reaches a terminal."""

    def __init__(self, fmt: str, scrub: Callable[[str], str]) -> None:
        super().__init__(fmt)
        self._scrub = scrub

    def format(self, record: logging.LogRecord) -> str:
        return printable(self._scrub(super().format(record)))


scrub_output = OutputScrubber()


def scrubbed_handler(stream: TextIO) -> logging.Handler:
    """A log handler writing to `stream` through scrub_output."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(ScrubbingFormatter(LOG_FORMAT, scrub_output))
    return handler
