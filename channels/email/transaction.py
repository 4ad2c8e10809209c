"""One recipient's SMTP transaction, and what it came to.

Each recipient gets its own transaction (its own To and List-Unsubscribe headers), and its own verdict:
- 2xx: accepted;
- 5xx to RCPT: a hard bounce, refused for good and added to the suppression list;
- 5xx to DATA: this message refused for this recipient (not suppressed: the address is not at fault);
- 4xx: deferred to the lane's next attempt; 421, a dropped connection or a timeout also close the
  connection, and the worker carries on over a new one."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import aiosmtplib

from channels.email.pool import reply_text


class Verdict(Enum):
    """What one recipient's transaction came to (see the module docstring)."""

    ACCEPTED = "accepted"
    BOUNCED = "bounced"
    REJECTED = "rejected"
    DEFERRED = "deferred"
    DROPPED = "dropped"
    SENDER_REFUSED = "sender refused"


@dataclass(frozen=True, slots=True)
class Result:
    """A verdict with the server's reply ("550 5.1.1 No such user"); `code` is 0 when there was none."""

    verdict: Verdict
    reason: str = ""
    code: int = 0


def _by_code(code: int, message: str, *, at_rcpt: bool) -> Result:
    reason = reply_text(code, message)
    if code == 421:  # the server is closing this connection
        return Result(Verdict.DROPPED, reason, code)
    if 500 <= code < 600:
        return Result(Verdict.BOUNCED if at_rcpt else Verdict.REJECTED, reason, code)
    return Result(Verdict.DEFERRED, reason, code)


async def send_one(smtp: aiosmtplib.SMTP, sender: str, address: str, message: bytes) -> Result:
    """One transaction for one recipient, classified; never raises for what the server answered."""
    try:
        await smtp.sendmail(sender, [address], message)
    except aiosmtplib.SMTPRecipientsRefused as exc:
        refused = exc.recipients[0]
        return _by_code(refused.code, refused.message, at_rcpt=True)
    except aiosmtplib.SMTPSenderRefused as exc:
        if exc.code == 421:
            return Result(Verdict.DROPPED, reply_text(exc.code, exc.message), exc.code)
        return Result(Verdict.SENDER_REFUSED, f"sender refused ({reply_text(exc.code, exc.message)})", exc.code)
    except aiosmtplib.SMTPResponseException as exc:
        return _by_code(exc.code, exc.message, at_rcpt=False)
    except (aiosmtplib.SMTPException, OSError) as exc:  # disconnected, timed out, reset
        return Result(Verdict.DROPPED, f"connection lost ({type(exc).__name__})")
    return Result(Verdict.ACCEPTED)
