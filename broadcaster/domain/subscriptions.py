"""Who follows an incident: one rule for every kind of subscriber (a line of the subscribers file, an
address or a webhook that subscribed itself), so no channel can answer it differently."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from dataclasses import field
from typing import Final, Literal

from broadcaster.domain.records import record

SubscriberKind = Literal["email", "webhook"]


def follows(followed: Collection[str], affected: Collection[str]) -> bool:
    """True when a subscriber following `followed` (case-folded component names; empty: all of them)
    should hear of an incident affecting `affected` (case-folded). An incident that names no component
    is about the whole service, so it reaches everyone, whatever they follow."""
    if not followed or not affected:
        return True
    return any(name in followed for name in affected)


@record
class Subscriber:
    """Someone who asked for status updates themselves (or whom an operator added), held in the journal.
    Only confirmed subscribers are held: an email address is saved when its owner opens the confirmation
    link, never before. The subscribers file is a separate list that the operator manages."""

    kind: SubscriberKind
    address: str
    """An email address, lower-cased; or a webhook URL."""
    components: tuple[str, ...] = ()
    """The component names followed, as the subscriber chose them; empty: all."""
    since: float = 0.0
    """Epoch seconds when the subscription was confirmed (or last changed)."""
    source: str = "subscribe"
    """How it came: "subscribe" (the form), "operator" (the CLI), "import"."""
    secret: str = field(default="", repr=False)
    """A webhook's Standard Webhooks signing secret ("whsec_..."); empty for email."""

    @property
    def followed(self) -> frozenset[str]:
        """The components followed, case-folded, for `follows`."""
        return frozenset(name.casefold() for name in self.components)


def state_of(subscriber: Subscriber) -> str:
    """What a journal stores beside (kind, address), as JSON: one encoding for both backends."""
    state = {"components": list(subscriber.components), "since": subscriber.since, "source": subscriber.source}
    if subscriber.secret:
        state["secret"] = subscriber.secret
    return json.dumps(state, separators=(",", ":"))


def from_state(kind: SubscriberKind, address: str, state: str | bytes) -> Subscriber:
    data = json.loads(state)
    return Subscriber(
        kind=kind,
        address=address,
        components=tuple(data["components"]),
        since=data["since"],
        source=data["source"],
        secret=data.get("secret", ""),
    )


CONFIRM_PURPOSE: Final = "confirm-subscription"
"""What a confirmation link is for (domain.signed_links binds a token to its purpose)."""
MANAGE_PURPOSE: Final = "manage-subscription"
"""What the link in every update email is for: choose components, or unsubscribe."""
MANAGE_PATH: Final = "/subscribe/manage"
"""Where, under [service] public_url, the manage link points (the email channel writes it, the service
answers it)."""
REGISTER_PURPOSE: Final = "register-webhook"
"""What a pending webhook registration's token is for: it carries the URL, components and new secret until
the endpoint's owner enters the code its ping carried."""
WEBHOOK_MANAGE_PURPOSE: Final = "manage-webhook"
"""What a webhook subscriber's management link is for: components, a new secret, or unsubscribing."""


def endpoint_id(url: str) -> str:
    """How pages, links and the CLI name a webhook endpoint: a digest, as its URL may hold a credential."""
    return hashlib.sha256(url.encode()).hexdigest()[:24]


def endpoint_host(url: str) -> str:
    """What may be shown of an endpoint: its scheme and host, never the path or query."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0].rpartition('@')[2]}"
