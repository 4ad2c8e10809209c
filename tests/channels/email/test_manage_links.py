"""Every update email links each recipient to their own subscription page, in both bodies, signed for them."""

from __future__ import annotations

import re
from email import message_from_bytes, policy

from broadcaster.domain.signed_links import unseal
from broadcaster.domain.subscriptions import MANAGE_PURPOSE
from channels.email.body import EmailContent
from channels.email.message import ManageLinks, RenderedMessage, render_message
from tests.channels.email.jobs import story

KEY = b"m" * 32
MANAGE_URL = "https://status-service.example.com/subscribe/manage"


def render(manage: ManageLinks | None, *, name: str = "API errors", message: str = "") -> RenderedMessage:
    messages = (message,) if message else ()
    incident, history = story("investigating", name=name, impact="major", components=None, messages=messages)
    content = EmailContent(
        incident=incident,
        update=history[-1],
        earlier=(),
        incident_url="",
        unsubscribe_url="",
        sender_domain="example.com",
    )
    return render_message(
        content, from_addr="Status <status@example.com>", first_update_id=history[0].id, unsubscribe=None, manage=manage
    )


def bodies(data: bytes) -> tuple[str, str]:
    message = message_from_bytes(data, policy=policy.default)
    text, html = (part.get_content() for part in message.iter_parts())
    return text, html


def test_each_recipient_gets_a_link_signed_for_their_own_address() -> None:
    rendered = render(ManageLinks(MANAGE_URL, KEY))
    for address in ("ann@example.org", "Bob.Long-Name+status@subdomain.example.org"):
        data = rendered.for_recipient(address)
        longest = max(len(line) for line in data.split(b"\r\n"))
        assert longest <= 78, "the link is folded like the rest of the body (the SMTP policy's 78)"
        text, html = bodies(data)
        (link,) = re.findall(r"https://\S+", text)
        (href,) = re.findall(r'href="\s*(\S+?)\s*"[^>]*>Choose components', html)
        assert link == href and link.startswith(MANAGE_URL + "?token=")
        claims = unseal(KEY, MANAGE_PURPOSE, link.partition("?token=")[2], now=0)
        assert claims == {"email": address.lower()}
        assert "manage" not in text.replace("/subscribe/manage", "") and text.count(MANAGE_URL) == 1


def test_without_a_service_address_there_is_no_manage_link() -> None:
    text, html = bodies(render(None).for_recipient("ann@example.org"))
    assert "Choose components" not in text + html and "/subscribe/manage" not in text + html


def test_words_that_look_like_a_marker_in_the_update_are_left_alone() -> None:
    """Whatever the title and message say, the headers and bodies come out whole, with one link each."""
    odd = "broadcaster-manage-link manage0123456789abcdef"
    data = render(ManageLinks(MANAGE_URL, KEY), name=f"Outage of {odd}", message=f"See {odd}.").for_recipient(
        "ann@example.org"
    )
    message = message_from_bytes(data, policy=policy.default)
    assert not message.defects and message["Subject"].endswith(f"Outage of {odd} - Investigating")
    assert message["Message-ID"] and message["Date"]
    text, html = bodies(data)
    assert odd in text and text.count(MANAGE_URL) == 1 and html.count(MANAGE_URL) == 1
