"""Every text and background colour pair the status pages use, in the light and the dark colour scheme,
read from the stylesheet itself: WCAG AA (4.5:1 for text, 3:1 for large text and the uptime bars)."""

from __future__ import annotations

from typing import Final

import pytest

from tests.mirror.contrast import LARGE, STYLESHEET, TEXT, Rules, colour, contrast, rules

IMPACTS: Final = ("none", "minor", "major", "critical", "maintenance")
STATES: Final = ("operational", "degraded_performance", "partial_outage", "major_outage", "under_maintenance")
CARD_SURFACES: Final = (".card", "ul.components")

# (the rule giving the colour, its property, the rules whose background it is drawn on, the minimum ratio).
# Where each sits comes from the templates: a badge is in a card (index) or straight on the page
# (incident page, history); the uptime scale is .meta inside the components list; the banner's text is
# 1.25rem bold, large text.
PAIRS: Final[tuple[tuple[str, str, tuple[str, ...], float], ...]] = (
    ("body", "color", ("body", ".top", *CARD_SURFACES), TEXT),
    ("h2", "color", ("body",), TEXT),
    (".meta", "color", ("body", *CARD_SURFACES), TEXT),
    *((f".badge.{impact}", "color", ("body", ".card"), TEXT) for impact in IMPACTS),
    ("ul.changes", "color", (".card",), TEXT),
    *((f".state.{state}", "color", ("ul.components",), TEXT) for state in STATES),
    (".quiet", "color", ("body",), TEXT),
    ("footer", "color", ("body",), TEXT),
    (".banner", "color", (".banner", *(f".banner.{impact}" for impact in IMPACTS if impact != "none")), LARGE),
    (".bars rect", "fill", ("ul.components",), LARGE),
    *((f".bars .{state}", "fill", ("ul.components",), LARGE) for state in STATES if state != "operational"),
)
COLOUR_PROPERTIES: Final = ("color", "background", "background-color", "fill")
INHERITED: Final = {"inherit", "currentcolor"}


def stylesheet(scheme: str) -> Rules:
    return rules(STYLESHEET.read_text(), dark=scheme == "dark")


def ratio(sheet: Rules, foreground: str, prop: str, surface: str) -> float:
    return contrast(colour(sheet[foreground][prop]), colour(sheet[surface]["background"]))


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_colour_pair_meets_wcag_aa(scheme: str) -> None:
    sheet = stylesheet(scheme)
    failing = [
        f"{foreground} {prop} on {surface}: {ratio(sheet, foreground, prop, surface):.2f} < {minimum}"
        for foreground, prop, surfaces, minimum in PAIRS
        for surface in surfaces
        if ratio(sheet, foreground, prop, surface) < minimum
    ]
    assert failing == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_colour_in_the_stylesheet_is_in_a_checked_pair(scheme: str) -> None:
    """A colour added to the stylesheet without a pair here would go unchecked; this fails instead."""
    checked = {(foreground, prop) for foreground, prop, _, _ in PAIRS}
    checked |= {(surface, "background") for *_, surfaces, _ in PAIRS for surface in surfaces}
    coloured = {
        (selector, prop)
        for selector, declarations in stylesheet(scheme).items()
        for prop, value in declarations.items()
        if prop in COLOUR_PROPERTIES and value.lower() not in INHERITED
    }
    assert coloured - checked == set()


def test_the_dark_scheme_changes_the_colours() -> None:
    """The dark block is read: were it skipped, the dark checks would test the light colours twice."""
    light, dark = stylesheet("light"), stylesheet("dark")
    assert light["body"]["background"] != dark["body"]["background"]


@pytest.mark.parametrize(
    ("one", "other", "expected"),
    [("#000", "#fff", 21.0), ("#fff", "#fff", 1.0), ("#777777", "#ffffff", 4.48), ("rgb(0, 0, 255)", "#fff", 8.59)],
)
def test_contrast_is_computed_as_wcag_defines_it(one: str, other: str, expected: float) -> None:
    assert contrast(colour(one), colour(other)) == pytest.approx(expected, abs=0.01)
