"""The email channel: subscribers mailed over a pool of SMTP connections (aiosmtplib)."""

from channels.email.channel import EmailChannel

__all__ = ["EmailChannel"]
