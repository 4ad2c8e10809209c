"""Post text: X's weighted length, and composing within 280 with status first, shortening and the link."""

from __future__ import annotations

import itertools
import unicodedata

import pytest

from channels.x.text import MAX_WEIGHT, compose_post, incident_link, shorten, weighted_length

LINK = "https://status.example.com/incidents/abcdefghjkmn.html"
HEADER = "Identified - Major outage: API errors"


def compose(message: str, *, link: str | None = LINK, always_link: bool = False, title: str = "API errors") -> str:
    return compose_post(
        status="Identified", impact="Major outage", title=title, message=message, link=link, always_link=always_link
    ).text


def body_of(text: str, *, link: str | None = LINK) -> str:
    """The message part of a composed post (between the header and the link)."""
    _header, _, rest = text.partition("\n\n")
    return rest.removesuffix("\n\n" + link) if link else rest


@pytest.mark.parametrize(
    ("text", "weight"),
    [
        ("a" * 280, 280),
        ("中文", 4),
        ("日本語テキスト", 14),
        ("한국어", 6),
        ("Café résumé naïve", 17),
        ("Cafe\u0301 re\u0301sume\u0301", 11),  # decomposed accents count as the NFC characters
        ("Ελληνικά Привет", 15),
        ("a\u2014b\u2032c", 5),  # em dash and prime are in X's light ranges
        ("\u2026", 2),  # the ellipsis is not
    ],
)
def test_characters_weigh_as_x_counts_them(text: str, weight: int) -> None:
    """Latin, Greek, Cyrillic and the light punctuation weigh 1; CJK, kana, Hangul and the ellipsis 2."""
    assert weighted_length(text) == weight


@pytest.mark.parametrize(
    "emoji",
    [
        "👍",
        "👍🏽",
        "👨\u200d👩\u200d👧\u200d👦",
        "👩🏽\u200d💻",
        "🇺🇦",
        "1\ufe0f\u20e3",
        "❤\ufe0f",
        "🏴\U000e0067\U000e0062\U000e0077\U000e006c\U000e0073\U000e007f",
    ],
)
def test_an_emoji_sequence_weighs_two(emoji: str) -> None:
    """Skin tones, ZWJ families, flags, keycaps and tag flags each count 2, however many code points."""
    assert weighted_length(emoji) == 2
    assert weighted_length(emoji * 3) == 6


@pytest.mark.parametrize(
    ("text", "weight"),
    [
        ("https://example.com", 23),
        ("https://example.com/" + "a" * 300, 23),
        ("see https://example.com/x.", 4 + 23 + 1),  # trailing punctuation is not part of the link
        ("docs.example.org/guide", 23),  # X links bare domains too
        ("(https://example.com/a)", 1 + 23 + 1),
        ("ops@example.com", 15),  # an address is not a link
        ("http://localhost:8080/status", 28),  # no dot in the host: X does not link it
        ("https://status.internal/page-one-two-three", 42),  # unknown TLD: the heavier reading
    ],
)
def test_links_weigh_23_whatever_their_length(text: str, weight: int) -> None:
    """Every link X recognises counts 23; where X might not link it, the heavier count is used."""
    assert weighted_length(text) == weight


def test_a_short_update_is_posted_whole_without_a_link() -> None:
    """Status and impact lead, then a blank line and the message; no link unless shortened."""
    post = compose_post(
        status="Identified", impact="Major outage", title="API errors", message="Fix deployed.", link=LINK
    )
    assert (post.text, post.shortened) == (f"{HEADER}\n\nFix deployed.", False)
    assert post.weight == weighted_length(post.text)


def test_always_link_adds_the_link_to_every_post() -> None:
    """With always_link the incident page ends even a short post."""
    assert compose("Fix deployed.", always_link=True) == f"{HEADER}\n\nFix deployed.\n\n{LINK}"


def test_a_long_message_is_cut_on_a_word_boundary_and_links_the_page() -> None:
    """Shortened at a space, ending with an ellipsis, then the link; within 280 and nearly full."""
    message = " ".join(f"word{i}" for i in range(200))
    text = compose(message)
    body = body_of(text)
    assert text.startswith(f"{HEADER}\n\n") and text.endswith(f"\n\n{LINK}")
    assert body.endswith("\u2026")
    kept = body.removesuffix("\u2026")
    assert message.startswith(kept) and message[len(kept)] == " "
    assert MAX_WEIGHT - 8 < weighted_length(text) <= MAX_WEIGHT  # a word is at most 7 characters and a space


def test_without_a_public_url_a_shortened_post_has_no_link() -> None:
    """No [service] public_url: shortened, with the ellipsis, and nothing after it."""
    text = compose("word " * 200, link=None)
    assert text.endswith("\u2026") and "https://" not in text
    assert weighted_length(text) <= MAX_WEIGHT


def test_cjk_counts_double_and_is_cut_between_characters() -> None:
    """A long Chinese message keeps about half as many characters and is cut between two of them."""
    message = "数据库连接池耗尽\uff0c我们正在扩容。" * 30  # \uff0c: the full-width comma
    text = compose(message)
    kept = body_of(text).removesuffix("\u2026")
    assert message.startswith(kept)
    assert MAX_WEIGHT - 3 <= weighted_length(text) <= MAX_WEIGHT
    assert len(kept) < (MAX_WEIGHT - weighted_length(HEADER)) // 2


def test_emoji_sequences_are_never_split() -> None:
    """Cut between whole sequences: a family, a flag or a toned thumbs-up is kept whole or left out."""
    unit = "👨\u200d👩\u200d👧\u200d👦" + "🇺🇦" + "👍🏽"  # 7 + 2 + 2 code points
    message = unit * 100
    text = compose(message)
    kept = body_of(text).removesuffix("\u2026")
    assert message.startswith(kept)
    assert len(kept) % len(unit) in (0, 7, 9)
    assert weighted_length(text) <= MAX_WEIGHT


def test_decomposed_accents_are_normalised_and_kept_whole() -> None:
    """NFD input comes out NFC, so no accent is separated from its letter by the cut."""
    text = compose("Cafe\u0301 fermé, re\u0301seau indisponible. " * 20)
    assert unicodedata.is_normalized("NFC", text)
    assert "\u0301" not in text and "é" in text
    assert weighted_length(text) <= MAX_WEIGHT


def test_long_urls_in_a_message_count_23_and_are_never_cut() -> None:
    """Eight 180-character links fit where raw length would allow one; each kept link is whole."""
    urls = [f"https://example.com/incidents/{i}/" + "x" * 150 for i in range(20)]
    message = "Details: " + " ".join(urls)
    text = compose(message)
    kept = body_of(text).removesuffix("\u2026").split()
    assert kept[0] == "Details:"
    # Room for the message: 280 - 25 (link) - 37 (header) - 2 (blank line) - 2 (ellipsis) = 214, and
    # "Details:" + 8 x (space + 23) = 200; a ninth link would make it 224.
    assert kept[1:] == urls[:8]
    assert weighted_length(text) <= MAX_WEIGHT


def test_a_long_title_leaves_room_for_the_message() -> None:
    """A 200-character CJK title gives way: a short message stays whole, a long one keeps half the room."""
    title = "数据库" * 67
    short = "We are failing over to the standby region."
    header, _, rest = compose(short, title=title).partition("\n\n")
    assert header.startswith("Identified - Major outage: 数据库") and header.endswith("\u2026")
    assert rest == f"{short}\n\n{LINK}"
    text = compose("word " * 200, title=title)
    header, _, rest = text.partition("\n\n")
    assert header.endswith("\u2026") and weighted_length(header) <= (MAX_WEIGHT - 25) // 2
    assert rest.startswith("word word") and weighted_length(text) <= MAX_WEIGHT


SAMPLES = ["word", "数据", "Cafe\u0301", "👩🏽\u200d💻", "https://example.com/" + "p" * 40, "ελληνικά", "a-b,c"]


@pytest.mark.parametrize(("sample", "count"), list(itertools.product(SAMPLES, [1, 10, 47, 140, 700])))
def test_every_composition_fits(sample: str, count: int) -> None:
    """Whatever the script, size, link setting: at most 280, NFC, and the weight reported is the real one."""
    for link, always in [(LINK, False), (LINK, True), (None, False)]:
        post = compose_post(
            status="Monitoring",
            impact="Minor outage",
            title="Login failures",
            message=" ".join([sample] * count),
            link=link,
            always_link=always,
        )
        assert post.weight == weighted_length(post.text) <= MAX_WEIGHT
        assert unicodedata.is_normalized("NFC", post.text)
        assert post.text.startswith("Monitoring - Minor outage: Login failures")


def test_shorten_gives_nothing_when_not_even_the_ellipsis_fits() -> None:
    """A room of 1 cannot hold the 2-weight ellipsis; a room that fits the text leaves it unchanged."""
    assert shorten("hello world", 1) == ""
    assert shorten("hello world", 11) == "hello world"
    assert shorten("hello world", 10) == "hello\u2026"


def test_incident_link_follows_the_mirror_layout() -> None:
    """<public_url>/incidents/<id>.html, and no link without a public URL."""
    assert incident_link("https://status.example.com", "abcdefghjkmn") == LINK
    assert incident_link("", "abcdefghjkmn") is None
