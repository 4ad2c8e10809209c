"""The text of a post on X: status and impact first, then the message, shortened to fit X's limit.

X measures a post in weighted characters (twitter-text v3): a code point in the ranges 0-4351,
8192-8205, 8208-8223 and 8242-8247 weighs 1, any other weighs 2 (so CJK counts double), an emoji
sequence weighs 2 however many code points it has, and a link weighs 23 (t.co) however long it is. Text is
measured after NFC normalisation. Where this module cannot be sure how X will see a piece of text it counts
the heavier reading, so a composed post never goes over the limit: X would refuse it outright."""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final


def _bounds(*ranges: tuple[int, int]) -> tuple[int, ...]:
    """Inclusive ranges flattened to (low, high + 1, ...) for bisection: inside when the index is odd."""
    return tuple(edge for low, high in ranges for edge in (low, high + 1))


MAX_WEIGHT: Final = 280
"""X's limit for a post, in weighted characters."""
URL_WEIGHT: Final = 23
"""What X counts for any link it recognises (its t.co length)."""
ELLIPSIS: Final = "\u2026"
SEPARATOR: Final = "\n\n"

_LIGHT_RANGES: Final = _bounds((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))
_LINK = re.compile(
    r"https?://[^\s<>\"]+"
    r"|(?<![\w@./-])(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}(?::\d{1,5})?(?:/[^\s<>\"]*)?",
    re.IGNORECASE,
)
_LINK_TRAILER = ".,:;!?'\"*"
_HOST = re.compile(r"^(?:https?://)?([^/:?#]+)", re.IGNORECASE)
# X links a bare or schemed host only under a top-level domain it knows: every two-letter one (the
# country codes) and these common generic ones. A host under any other is counted at the heavier of its
# own length and 23, which is right whichever way X reads it.
_KNOWN_TLDS: Final = frozenset(
    (
        "com",
        "net",
        "org",
        "edu",
        "gov",
        "mil",
        "int",
        "info",
        "biz",
        "name",
        "pro",
        "aero",
        "coop",
        "museum",
        "mobi",
        "app",
        "dev",
        "io",
        "cloud",
        "page",
        "site",
        "online",
        "tech",
        "store",
        "shop",
        "blog",
        "news",
        "live",
        "xyz",
        "top",
        "email",
        "systems",
        "services",
        "network",
        "status",
    )
)
_SPACE = re.compile(r"\s+")
_TRIM_BEFORE_ELLIPSIS: Final = " \t\n,;:-\u2013\u2014"

_ZWJ: Final = 0x200D
_KEYCAP: Final = 0x20E3
_EMOJI_BASES: Final = _bounds(
    (0x00A9, 0x00A9),
    (0x00AE, 0x00AE),
    (0x203C, 0x203C),
    (0x2049, 0x2049),
    (0x2122, 0x2122),
    (0x2139, 0x2139),
    (0x2194, 0x21AA),
    (0x231A, 0x23FF),
    (0x24C2, 0x24C2),
    (0x25AA, 0x25FE),
    (0x2600, 0x27BF),
    (0x2934, 0x2935),
    (0x2B05, 0x2B55),
    (0x3030, 0x3030),
    (0x303D, 0x303D),
    (0x3297, 0x3299),
    (0x1F000, 0x1FAFF),
)
_KEYCAP_BASES: Final = frozenset(map(ord, "#*0123456789"))
_NO_SPACE_SCRIPTS: Final = _bounds((0x2E80, 0x9FFF), (0xF900, 0xFAFF), (0xFF00, 0xFFEF), (0x20000, 0x3FFFF))
_SEPARATOR_WEIGHT: Final = 2  # two line feeds
_ELLIPSIS_WEIGHT: Final = 2  # U+2026 is outside X's light ranges
_REGIONAL_FIRST: Final = 0x1F1E6
_REGIONAL_LAST: Final = 0x1F1FF


@dataclass(frozen=True, slots=True)
class PostText:
    """A composed post: its text, its weight as X counts it, and whether the message had to be shortened."""

    text: str
    weight: int
    shortened: bool


def incident_link(public_url: str, incident_id: str) -> str | None:
    """The incident's page on the mirror (as broadcaster.domain.statuspage.shortlink makes it), or None when
    [mirror] public_url is empty: a relative link means nothing on X."""
    return f"{public_url.rstrip('/')}/incidents/{incident_id}.html" if public_url else None


def compose_post(
    *,
    status: str,
    impact: str | None,
    title: str,
    message: str,
    link: str | None,
    always_link: bool = False,
    limit: int = MAX_WEIGHT,
) -> PostText:
    """`"<status> - <impact>: <title>"` (no impact part when `impact` is None), a blank line, the message,
    and the link after another blank line when the message was shortened or `always_link` is set. When it
    does not fit in `limit` weighted characters, the message (and, if it alone is too long, the title) is cut
    on a word boundary and ends with an ellipsis."""
    header = _Text(_single_line(f"{status} - {impact}: {title}" if impact else f"{status}: {title}"))
    body = _Text(unicodedata.normalize("NFC", message).strip())
    link_part = SEPARATOR + link if link else ""
    link_weight = weighted_length(link_part)
    whole_weight = header.weight + (_SEPARATOR_WEIGHT + body.weight if body.text else 0)
    if always_link:
        whole_weight += link_weight
    if whole_weight <= limit:
        whole = header.text + (SEPARATOR + body.text if body.text else "") + (link_part if always_link else "")
        return PostText(whole, whole_weight, shortened=False)
    budget = limit - link_weight
    # The title may take at most half of the room while the message needs the rest, so a long title
    # never crowds out what the update says.
    message_reserve = min(body.weight + _SEPARATOR_WEIGHT, budget // 2)
    title_line = header.cut(budget - message_reserve)
    room = budget - weighted_length(title_line) - _SEPARATOR_WEIGHT
    message_part = body.cut(room) if room > _ELLIPSIS_WEIGHT else ""
    text = title_line + (SEPARATOR + message_part if message_part else "") + link_part
    return PostText(text, weighted_length(text), shortened=True)


def weighted_length(text: str) -> int:
    """The length of `text` as X counts it against the 280 limit (after NFC normalisation)."""
    return sum(weight for _, weight, _ in _units(unicodedata.normalize("NFC", text)))


def shorten(text: str, room: int) -> str:
    """`text` (NFC) if it weighs at most `room`, else its longest prefix ending on a word boundary (or,
    when not even one word fits, on a character boundary) followed by an ellipsis, within `room`. Links and
    emoji sequences are never cut; scripts written without spaces (CJK) may break between characters.
    Returns "" when `room` cannot hold even the ellipsis."""
    return _Text(unicodedata.normalize("NFC", text)).cut(room)


class _Text:
    """A text split once into the units it may be cut between (long messages are measured only once)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.units = list(_units(text))
        self.weight = sum(weight for _, weight, _ in self.units)

    def cut(self, room: int) -> str:
        if self.weight <= room:
            return self.text
        room -= _ELLIPSIS_WEIGHT
        if room < 0:
            return ""
        taken, used, word_end = 0, 0, 0
        for index, (_piece, weight, breaks) in enumerate(self.units):
            if used + weight > room:
                break
            used += weight
            taken = index + 1
            if breaks:
                word_end = taken
        end = word_end or taken
        prefix = "".join(piece for piece, _, _ in self.units[:end]).rstrip(_TRIM_BEFORE_ELLIPSIS)
        return prefix + ELLIPSIS if prefix else ""


def _single_line(text: str) -> str:
    return _SPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


def _units(text: str) -> Iterator[tuple[str, int, bool]]:
    """The pieces a post may be cut between: (piece, weight, a word may end after it). A piece is a link,
    a run of white space, or one user-perceived character (a base with its marks, an emoji sequence)."""
    position = 0
    for match in _LINK.finditer(text):
        link = _trim_link(match.group())
        if not link:
            continue
        yield from _character_units(text[position : match.start()])
        yield link, _link_weight(link), False
        position = match.start() + len(link)
    yield from _character_units(text[position:])


def _trim_link(candidate: str) -> str:
    # Like X, leave trailing punctuation out of a link, and a closing bracket with no opening one.
    link = candidate.rstrip(_LINK_TRAILER)
    while link.endswith(")") and link.count("(") < link.count(")"):
        link = link[:-1].rstrip(_LINK_TRAILER)
    return link if "." in _host(link) else ""


def _host(link: str) -> str:
    return match.group(1) if (match := _HOST.match(link)) else ""


def _link_weight(link: str) -> int:
    top_level = _host(link).rsplit(".", 1)[-1].lower()
    if top_level.isalpha() and (len(top_level) == 2 or top_level in _KNOWN_TLDS):
        return URL_WEIGHT
    return max(URL_WEIGHT, sum(_code_point_weight(ord(char)) for char in link))


def _character_units(text: str) -> Iterator[tuple[str, int, bool]]:
    for cluster in _clusters(text):
        first = ord(cluster[0])
        if cluster.isspace():
            yield cluster, sum(_code_point_weight(ord(char)) for char in cluster), True
        else:
            yield cluster, _cluster_weight(cluster), first >= _NO_SPACE_SCRIPTS[0] and _in(first, _NO_SPACE_SCRIPTS)


def _clusters(text: str) -> Iterator[str]:
    """User-perceived characters, closely enough for cutting: a base with its combining marks, variation
    selectors, skin tones, tags and keycap, joined through ZWJ; a pair of regional indicators (a flag); a
    run of white space."""
    cluster = ""
    joined = spaces = flag_open = False
    for char in text:
        code = ord(char)
        space = char.isspace()
        regional = _REGIONAL_FIRST <= code <= _REGIONAL_LAST
        if cluster and (joined or (spaces and space) or (flag_open and regional) or _extends(code)):
            cluster += char
            flag_open = False
        else:
            if cluster:
                yield cluster
            cluster, spaces, flag_open = char, space, regional
        joined = code == _ZWJ
    if cluster:
        yield cluster


def _extends(code: int) -> bool:
    if code < 0x300:  # below the first combining mark: the common case, decided at once
        return False
    return (
        code in (_ZWJ, _KEYCAP)
        or 0xFE00 <= code <= 0xFE0F
        or 0x1F3FB <= code <= 0x1F3FF
        or 0xE0020 <= code <= 0xE007F
        or 0xE0100 <= code <= 0xE01EF
        or unicodedata.category(chr(code)) in ("Mn", "Mc", "Me")
    )


def _cluster_weight(cluster: str) -> int:
    first = ord(cluster[0])
    if len(cluster) == 1:
        return 2 if first >= _EMOJI_BASES[0] and _in(first, _EMOJI_BASES) else _code_point_weight(first)
    if _in(first, _EMOJI_BASES) or (first in _KEYCAP_BASES and ord(cluster[-1]) == _KEYCAP):
        return 2
    return sum(_code_point_weight(ord(char)) for char in cluster)


def _code_point_weight(code: int) -> int:
    return 1 if code <= _LIGHT_RANGES[1] or _in(code, _LIGHT_RANGES) else 2


def _in(code: int, bounds: tuple[int, ...]) -> bool:
    """Whether `code` falls in one of the ranges flattened into `bounds` by _bounds."""
    return bisect_right(bounds, code) % 2 == 1
