"""printable(): text from outside made safe for a terminal or a text file, and JSON, without loss."""

from __future__ import annotations

import json

import pytest

from broadcaster.domain.text import printable


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[31mred", "\\u001b[31mred"),  # ESC: colours, cursor moves
        ("\x9b2J", "\\u009b2J"),  # CSI in one byte: clears the screen on some terminals
        ("\x1b]0;title\x07", "\\u001b]0;title\\u0007"),  # OSC ... BEL: sets the window title
        ("\x9d52;c;Zm9v\x9c", "\\u009d52;c;Zm9v\\u009c"),  # OSC 52 in C1 form: writes the clipboard
        ("a\rb", "a\\u000db"),  # a carriage return would overwrite the start of the line
        ("\x7f\x00", "\\u007f\\u0000"),
        ("\u202eevil", "\\u202eevil"),  # a bidi override displays the rest of the line reversed
        ("bad \udcff byte", "bad \\udcff byte"),  # an undecodable byte, which no UTF-8 file can hold
    ],
)
def test_control_characters_become_visible_escapes(raw: str, shown: str) -> None:
    assert printable(raw) == shown


def test_plain_text_newlines_and_tabs_are_left_alone() -> None:
    text = "Mailbox full: 552 5.2.2 été\n\tsee https://example.com/why"
    assert printable(text) == text


def test_applying_it_twice_changes_nothing_more() -> None:
    once = printable("\x1b[31m\x9b")
    assert printable(once) == once


def test_json_text_made_printable_still_decodes_to_the_same_value() -> None:
    value = {"detail": "refused \x1b[31m\x9b2J \u202e", "n": 1}
    text = printable(json.dumps(value, indent=2, ensure_ascii=False))
    assert "\x9b" not in text and "\u202e" not in text
    assert json.loads(text) == value
