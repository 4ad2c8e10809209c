"""The messages the subscribe flow mails, through the email channel's relays (its SendsNotes capability):
the confirmation link, or, to an address already subscribed, its manage link. Both say who asked and what
to do if it was not them, and neither tells the page (which answers the same either way) which it was."""

from __future__ import annotations

from collections.abc import Sequence

from broadcaster.domain.errors import InputError
from broadcaster.runtime import Runtime
from channels.base import Channel, ChannelContext, SendsNotes

CONFIRM_WINDOW_HOURS = 24


def open_channel(runtime: Runtime, name: str) -> Channel | None:
    """A channel of the service's own (built, not connected), when it is enabled; None otherwise."""
    if name not in runtime.active_channels():
        return None
    return runtime.registry.get(name).load().create(ChannelContext(runtime.settings, runtime.store))


def open_mailer(runtime: Runtime) -> SendsNotes | None:
    """The email channel, when it is enabled and can send single messages; None otherwise."""
    channel = open_channel(runtime, "email")
    return channel if isinstance(channel, SendsNotes) else None


def confirmation(*, site: str, link: str, components: Sequence[str]) -> tuple[str, str]:
    followed = ", ".join(components) if components else "every component"
    text = (
        f"Someone (we hope you) asked to receive status updates from {site} at this address, for: {followed}.\n\n"
        f"To confirm, open this link within {CONFIRM_WINDOW_HOURS} hours and press the button:\n{link}\n\n"
        "If it was not you, ignore this message: nothing is sent to this address unless it is confirmed.\n"
    )
    return f"Confirm your subscription to updates from {site}", text


def already_subscribed(*, site: str, manage_link: str) -> tuple[str, str]:
    text = (
        f"Someone (we hope you) asked to receive status updates from {site} at this address, which is already "
        f"subscribed.\n\nTo choose components or unsubscribe:\n{manage_link}\n\n"
        "If it was not you, ignore this message: nothing has changed.\n"
    )
    return f"Your subscription to updates from {site}", text


def no_mailer() -> InputError:
    return InputError("subscriptions by email are not offered here ([email] is not enabled)", {"email": "off"})
