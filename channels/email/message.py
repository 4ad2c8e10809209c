"""One update's email as bytes, built once and personalised per recipient by splicing in two headers (and,
for subscribers who can manage their subscription, a link in each body).

Building a full EmailMessage per recipient costs several times the SMTP exchange itself, so the MIME
message is rendered once (headers, multipart/alternative text + HTML, quoted-printable) and split where the
per-recipient headers go: `To` and, when unsubscribe_url is set, `List-Unsubscribe`. Every other byte is
shared, and deterministic (Message-ID, Date and MIME boundary derive from the update), so a retry after a
lost reply sends the very same message and mail clients can drop the duplicate."""

from __future__ import annotations

import binascii
import secrets
from dataclasses import dataclass, replace
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Final
from urllib.parse import quote

from broadcaster.domain.signed_links import seal
from broadcaster.domain.subscriptions import MANAGE_PURPOSE
from broadcaster.domain.unsubscribe import unsubscribe_token
from channels.email.body import EmailContent, render_html, render_text

_POLICY: Final = policy.SMTP
_MARKER_NAME: Final = "X-Broadcaster-Recipient-Headers"
_MARKER: Final = f"{_MARKER_NAME}: here\r\n".encode()


def message_id(update_id: str, domain: str) -> str:
    """The Message-ID of an update's email, the same on every attempt: "<update.ID@domain>"."""
    return f"<update.{update_id}@{domain}>"


class Unsubscribe:
    """Per-recipient one-click unsubscribe links (RFC 8058): URL?email=ADDRESS, plus &token=TOKEN when a
    secret is configured, TOKEN being base64url(HMAC-SHA256(secret, lower-cased address)) without padding."""

    def __init__(self, url: str, secret: bytes | None) -> None:
        self.url = url
        self._joiner = "&" if "?" in url else "?"
        self._secret = secret

    def token(self, address: str) -> str:
        return "" if self._secret is None else unsubscribe_token(self._secret, address)

    def link(self, address: str) -> str:
        link = f"{self.url}{self._joiner}email={quote(address, safe='')}"
        return f"{link}&token={self.token(address)}" if self._secret is not None else link


class ManageLinks:
    """Per-recipient links to manage a subscription (components, unsubscribe): `url`?token=, a signed token
    naming the address (domain.signed_links), which only this service's key can make."""

    def __init__(self, url: str, secret: bytes) -> None:
        self.url = url
        self._secret = secret

    def link(self, address: str) -> str:
        token = seal(self._secret, MANAGE_PURPOSE, {"email": address.lower()}, until=None)
        return f"{self.url}?token={token}"

    def encoded(self, address: str) -> bytes:
        """The link as quoted-printable body text: "=" escaped, long lines folded with soft breaks."""
        return binascii.b2a_qp(self.link(address).encode("ascii")).replace(b"=\n", b"=\r\n")


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    """The shared bytes of one update's email, split where the per-recipient headers go."""

    message_id: str
    subject: str
    head: bytes
    tail: tuple[bytes, ...]
    """After the per-recipient headers: one piece, or three with each recipient's manage link between them
    (in the text body, then in the HTML one)."""
    unsubscribe: Unsubscribe | None
    manage: ManageLinks | None = None

    def for_recipient(self, address: str) -> bytes:
        """The complete message for `address` (a validated ASCII address: nothing to encode or escape)."""
        personal = f"To: {address}\r\n"
        if self.unsubscribe is not None:
            personal += f"List-Unsubscribe: <{self.unsubscribe.link(address)}>\r\n"
        tail = self.tail[0] if self.manage is None else self.manage.encoded(address).join(self.tail)
        return b"".join((self.head, personal.encode("ascii"), tail))


def render_message(
    content: EmailContent,
    *,
    from_addr: str,
    first_update_id: str,
    unsubscribe: Unsubscribe | None,
    manage: ManageLinks | None = None,
) -> RenderedMessage:
    """Build the shared part of the email for `content.update`. Replies thread under the incident's first
    update (`first_update_id`): In-Reply-To and References name its Message-ID."""
    domain = content.sender_domain
    update = content.update
    own_id = message_id(update.id, domain)
    # Each recipient's manage link is spliced in where this stands, in both bodies: random, so no content
    # can contain it; letters and digits on a line of their own, so quoted-printable leaves it whole.
    marker = f"manage{secrets.token_hex(16)}" if manage is not None else ""
    content = replace(content, manage_marker=marker)
    msg = EmailMessage(policy=_POLICY)
    msg["From"] = from_addr
    msg[_MARKER_NAME] = "here"
    msg["Subject"] = content.subject
    msg["Date"] = format_datetime(update.created_at)
    msg["Message-ID"] = own_id
    if first_update_id != update.id:
        msg["In-Reply-To"] = message_id(first_update_id, domain)
        msg["References"] = message_id(first_update_id, domain)
    msg["List-Id"] = f"Status updates <status.{domain}>"
    if unsubscribe is not None:
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    # RFC 3834: tells auto-responders (out-of-office replies) not to answer a broadcast.
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(render_text(content), subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.add_alternative(render_html(content), subtype="html", charset="utf-8", cte="quoted-printable")
    for part in msg.iter_parts():
        del part["MIME-Version"]  # belongs on the message only
    # "=_" cannot occur in quoted-printable text, so this boundary never collides with the content.
    msg.set_boundary(f"=_update.{update.id}")
    head, _, tail = msg.as_bytes(policy=_POLICY).partition(_MARKER)
    if manage is None:
        return RenderedMessage(own_id, content.subject, head, (tail,), unsubscribe)
    pieces = tuple(tail.split(marker.encode()))
    if len(pieces) != 3:  # once per body; a random marker cannot be in the content, but never splice blind
        raise RuntimeError(f"the manage-link marker appears {len(pieces) - 1} times in the message, not twice")
    return RenderedMessage(own_id, content.subject, head, pieces, unsubscribe, manage)
