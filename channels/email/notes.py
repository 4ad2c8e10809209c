"""One short message to one address outside any update: a subscription's confirmation link.

It goes through the channel's own pool (the primary relay, then the fallback relays), so a confirmation
reaches people exactly when updates would. The message id derives from the text, so a resend after a lost
reply is the same message to the mail client."""

from __future__ import annotations

import hashlib
from email import policy
from email.message import EmailMessage
from email.utils import formatdate
from typing import Final

from channels.base import PermanentError, TransientError
from channels.email.pool import ConnectionPool, RelayError
from channels.email.transaction import Verdict, send_one

_POLICY: Final = policy.SMTP


def compose_note(*, from_addr: str, to: str, subject: str, text: str, domain: str) -> bytes:
    msg = EmailMessage(policy=_POLICY)
    msg["From"] = from_addr
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(usegmt=True)
    digest = hashlib.sha256(f"{to}\0{subject}\0{text}".encode()).hexdigest()[:24]
    msg["Message-ID"] = f"<note.{digest}@{domain}>"
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies
    msg.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    return msg.as_bytes(policy=_POLICY)


async def send_note(pool: ConnectionPool, *, sender: str, to: str, message: bytes) -> None:
    """Raises TransientError (try again later) or PermanentError (this address or this sender is refused)."""
    try:
        connection = await pool.acquire()
    except RelayError as exc:
        error = PermanentError if exc.permanent else TransientError
        raise error(f"no relay would take the message: {exc}") from None
    try:
        result = await send_one(connection.smtp, sender, to, message)
    except BaseException:  # cancelled mid-transaction: the connection's state is unknown
        pool.discard(connection)
        raise
    reusable = result.verdict not in {Verdict.DROPPED, Verdict.SENDER_REFUSED}
    await pool.release(connection, reuse=reusable)
    if result.verdict is Verdict.ACCEPTED:
        return
    if result.verdict in {Verdict.BOUNCED, Verdict.REJECTED, Verdict.SENDER_REFUSED}:
        raise PermanentError(f"the relay refused the message: {result.reason}")
    raise TransientError(f"the relay did not take the message: {result.reason or 'connection lost'}")
