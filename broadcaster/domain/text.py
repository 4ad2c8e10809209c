"""Making text from outside (an SMTP server's reply, a name from a config file, a row of the journal) safe
to print on an operator's terminal or to write into a text file."""

from __future__ import annotations

import re
from typing import Final

# C0 controls but tab and newline, DEL, C1 controls (U+009B is CSI, U+009D OSC, as ESC [ and ESC ] are),
# lone surrogates (what undecodable bytes become; a UTF-8 file or terminal cannot take them), and the
# bidirectional controls that make a line display in another order than it reads.
_UNSAFE: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def printable(text: str) -> str:
    """`text` with every character that could drive a terminal (ESC starts colour changes, cursor moves,
    title and clipboard writes) or corrupt a text file replaced by a visible escape: ESC becomes the six
    characters \\u001b. The form is JSON's, so it may also be applied to JSON text: the value decodes the
    same, and a terminal shows the escape. Text without such characters is returned unchanged, so applying
    it twice does no harm."""
    return _UNSAFE.sub(_escape, text)


_LINE_BREAKS: Final = re.compile(r"[\t\n\x85\u2028\u2029]")


def one_line(text: str) -> str:
    """printable(text), with tabs and line breaks escaped too: for a log line or an error that must stay
    one line whatever it quotes."""
    return _LINE_BREAKS.sub(_escape, printable(text))


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"
