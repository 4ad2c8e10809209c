"""The message: headers, threading, one-click unsubscribe, both bodies, escaping and self-containment."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import cast

from channels.email.body import EmailContent
from channels.email.message import RenderedMessage, Unsubscribe, render_message
from tests.channels.email.jobs import story

INCIDENT_URL = "https://status.example.com/incidents/inc0000000ab.html"
UNSUBSCRIBE_URL = "https://status.example.com/unsubscribe"


def render(
    *statuses: str,
    unsubscribe: Unsubscribe | None = None,
    name: str = "API errors",
    impact: str = "major",
    components: dict[str, str] | None = None,
    messages: tuple[str, ...] = (),
) -> RenderedMessage:
    incident, history = story(*statuses, name=name, impact=impact, components=components, messages=messages)
    content = EmailContent(
        incident=incident,
        update=history[-1],
        earlier=tuple(reversed(history[:-1])),
        incident_url=INCIDENT_URL,
        unsubscribe_url=UNSUBSCRIBE_URL if unsubscribe else "",
        sender_domain="example.com",
    )
    return render_message(
        content, from_addr="Example Status <status@example.com>", first_update_id=history[0].id, unsubscribe=unsubscribe
    )


def parse(data: bytes) -> EmailMessage:
    return message_from_bytes(data, policy=policy.default)


def test_subject_names_impact_incident_and_status() -> None:
    """ "[Major outage] API errors - Identified", and "[Maintenance] DB upgrade - Scheduled" for maintenance."""
    assert render("investigating", "identified").subject == "[Major outage] API errors - Identified"
    maintenance = render("scheduled", name="DB upgrade", impact="maintenance", components={"DB": "under_maintenance"})
    assert maintenance.subject == "[Maintenance] DB upgrade - Scheduled"
    assert parse(maintenance.for_recipient("a@example.org"))["Subject"] == "[Maintenance] DB upgrade - Scheduled"


def test_headers_thread_the_incident_under_its_first_message() -> None:
    """Message-ID from the update id; In-Reply-To and References name the first update's; Date, List-Id set."""
    first = parse(render("investigating").for_recipient("a@example.org"))
    third = parse(render("investigating", "identified", "monitoring").for_recipient("a@example.org"))
    assert first["Message-ID"] == "<update.0ab000000001@example.com>"
    assert first["In-Reply-To"] is None and first["References"] is None
    assert third["Message-ID"] == "<update.0ab000000003@example.com>"
    assert third["In-Reply-To"] == third["References"] == first["Message-ID"]
    assert third["Date"] == "Wed, 01 May 2024 10:00:00 +0000"
    assert third["List-Id"] == "Status updates <status.example.com>"
    assert third["From"] == "Example Status <status@example.com>"
    assert third["Auto-Submitted"] == "auto-generated"


def test_each_recipient_gets_their_own_to_and_one_click_unsubscribe() -> None:
    """To and List-Unsubscribe differ per recipient; the token is the documented HMAC; RFC 8058 Post header."""
    rendered = render(unsubscribe=Unsubscribe(UNSUBSCRIBE_URL, b"unsubscribe-key"))
    message = parse(rendered.for_recipient("Ann.Smith+status@Example.org"))
    digest = hmac.new(b"unsubscribe-key", b"ann.smith+status@example.org", hashlib.sha256).digest()
    token = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert message["To"] == "Ann.Smith+status@Example.org"
    assert message["List-Unsubscribe"] == f"<{UNSUBSCRIBE_URL}?email=Ann.Smith%2Bstatus%40Example.org&token={token}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    other = parse(rendered.for_recipient("bob@example.org"))
    assert other["To"] == "bob@example.org" and "bob%40example.org" in other["List-Unsubscribe"]


def test_without_unsubscribe_url_there_is_no_list_unsubscribe() -> None:
    """No unsubscribe_url configured: neither List-Unsubscribe header appears."""
    message = parse(render().for_recipient("a@example.org"))
    assert message["List-Unsubscribe"] is None and message["List-Unsubscribe-Post"] is None


def test_the_body_is_text_and_html_with_every_user_text_escaped() -> None:
    """multipart/alternative; markup typed by the commander is shown as text in the HTML, never run."""
    hostile = '<script>alert("x")</script> & <img src=https://evil.example/t.gif>'
    message = parse(render("investigating", name="DB <b>down</b>", messages=(hostile,)).for_recipient("a@example.org"))
    assert message.get_content_type() == "multipart/alternative"
    text = cast(EmailMessage, message.get_body(("plain",))).get_content()
    markup = cast(EmailMessage, message.get_body(("html",))).get_content()
    assert hostile in text and "DB <b>down</b>" in text
    assert "<script" not in markup and "<img" not in markup and "<b>" not in markup
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;img" in markup
    assert "DB &lt;b&gt;down&lt;/b&gt;" in markup


def test_the_html_is_self_contained() -> None:
    """No images, scripts, stylesheets or fonts; the only links are the incident page and unsubscribe."""
    message = parse(
        render("investigating", "identified", unsubscribe=Unsubscribe(UNSUBSCRIBE_URL, None)).for_recipient(
            "a@example.org"
        )
    )
    markup = cast(EmailMessage, message.get_body(("html",))).get_content()
    assert set(re.findall(r'href="([^"]*)"', markup)) == {INCIDENT_URL, UNSUBSCRIBE_URL}
    assert not re.search(r"<(img|script|link|iframe|object)\b|src=|url\(|@import", markup)


def test_earlier_updates_are_listed_newest_first_and_bounded() -> None:
    """The text body carries the history, newest first, at most five earlier updates."""
    rendered = render(*["investigating"] * 8)
    text = cast(EmailMessage, parse(rendered.for_recipient("a@example.org")).get_body(("plain",))).get_content()
    assert text.index("Update number 8.") < text.index("Update number 7.") < text.index("Update number 3.")
    assert "Update number 2." not in text and "... and 2 more on the incident page." in text


def test_a_retry_renders_the_very_same_bytes() -> None:
    """Rendering is deterministic, so a resend after a lost reply carries the same Message-ID and body."""
    unsubscribe = Unsubscribe(UNSUBSCRIBE_URL, b"k")
    first = render("investigating", "identified", unsubscribe=unsubscribe).for_recipient("a@example.org")
    again = render("investigating", "identified", unsubscribe=unsubscribe).for_recipient("a@example.org")
    assert first == again


def test_non_ascii_text_survives_both_bodies_and_the_subject() -> None:
    """Encoded for 7-bit transport (RFC 2047 subject, quoted-printable bodies), decoded back intact."""
    rendered = render("investigating", name="Zahlungsausfall für Kunden", messages=("Wir prüfen — bitte warten.",))
    data = rendered.for_recipient("a@example.org")
    assert data.isascii()
    message = parse(data)
    assert message["Subject"] == "[Major outage] Zahlungsausfall für Kunden - Investigating"
    assert "Wir prüfen — bitte warten." in cast(EmailMessage, message.get_body(("plain",))).get_content()
    assert "Wir prüfen — bitte warten." in cast(EmailMessage, message.get_body(("html",))).get_content()
