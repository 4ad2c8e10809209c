"""WCAG 2 contrast, and the mirror's stylesheet as each colour scheme resolves it, for the contrast tests.

The stylesheet is small and written by us, so a parser of rules, one level of @media and var() is enough;
anything it cannot read as a colour fails loudly rather than passing unseen."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

STYLESHEET: Final = Path(__file__).resolve().parents[2] / "channels/mirror/templates/style.css"
DARK_MEDIA: Final = "@media (prefers-color-scheme:dark)"
TEXT: Final = 4.5
"""WCAG AA for text; large text (24 px, or 18.66 px bold) and graphics that carry meaning need LARGE."""
LARGE: Final = 3.0

RGB = tuple[float, float, float]
Rules = dict[str, dict[str, str]]
"""Declarations by selector (selector lists split), later rules overriding earlier ones."""

_VAR: Final = re.compile(r"var\((--[\w-]+)\)")
_RGB: Final = re.compile(r"rgba?\(\s*([\d.]+)[,\s]+([\d.]+)[,\s]+([\d.]+)(?:[,\s/]+([\d.]+%?))?\s*\)")


def luminance(colour: RGB) -> float:
    """WCAG 2's relative luminance of an sRGB colour with 0-255 channels."""

    def linear(channel: float) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    red, green, blue = (linear(c) for c in colour)
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast(one: RGB, other: RGB) -> float:
    """The contrast ratio of two opaque colours, from 1 to 21."""
    lighter, darker = sorted((luminance(one), luminance(other)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def colour(value: str) -> RGB:
    """ "#fff", "#1a7f37" or "rgb(26, 127, 55)" as 0-255 channels; anything else is an error."""
    value = value.strip().lower()
    if re.fullmatch(r"#[0-9a-f]{3}", value):
        return (int(value[1] * 2, 16), int(value[2] * 2, 16), int(value[3] * 2, 16))
    if re.fullmatch(r"#[0-9a-f]{6}", value):
        return (int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16))
    if match := _RGB.fullmatch(value):
        return (float(match[1]), float(match[2]), float(match[3]))
    raise ValueError(f"not a colour this test can compare: {value!r}")


def alpha(value: str) -> float:
    """The opacity of a computed colour ("rgba(0, 0, 0, 0)" is transparent), 1 when it has none."""
    match = _RGB.fullmatch(value.strip().lower())
    if match is None or match[4] is None:
        return 1.0
    return float(match[4].rstrip("%")) / (100 if match[4].endswith("%") else 1)


def rules(css: str, *, dark: bool) -> Rules:
    """The stylesheet's rules as a page in the light (or dark) colour scheme applies them, vars resolved."""
    top, media = _blocks(css)
    found: Rules = {}
    for selector, declarations in top + (media.get(DARK_MEDIA, []) if dark else []):
        for one in selector.split(","):
            found.setdefault(one.strip(), {}).update(declarations)
    variables = found.get(":root", {})
    return {
        selector: {prop: _VAR.sub(lambda m: variables[m[1]], value) for prop, value in declarations.items()}
        for selector, declarations in found.items()
    }


def _blocks(css: str) -> tuple[list[tuple[str, dict[str, str]]], dict[str, list[tuple[str, dict[str, str]]]]]:
    """Top-level rules in order, and the rules of each @media block by its condition."""
    top: list[tuple[str, dict[str, str]]] = []
    media: dict[str, list[tuple[str, dict[str, str]]]] = {}
    position = 0
    while (opening := css.find("{", position)) != -1:
        head = css[position:opening].strip()
        if head.startswith("@media"):
            closing = _matching(css, opening)
            inner, _ = _blocks(css[opening + 1 : closing])
            media.setdefault(head, []).extend(inner)
        else:
            closing = css.index("}", opening)
            top.append((head, _declarations(css[opening + 1 : closing])))
        position = closing + 1
    return top, media


def _matching(css: str, opening: int) -> int:
    depth = 0
    for index in range(opening, len(css)):
        depth += {"{": 1, "}": -1}.get(css[index], 0)
        if depth == 0:
            return index
    raise ValueError("unbalanced braces in the stylesheet")


def _declarations(block: str) -> dict[str, str]:
    pairs = (part.split(":", 1) for part in block.split(";") if ":" in part)
    return {name.strip(): value.strip() for name, value in pairs}
