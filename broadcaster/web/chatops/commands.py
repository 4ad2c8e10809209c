"""A slash command as Slack and Mattermost post it (the same form fields on both), and what each platform
allows: its workspaces, channels and users ([auth] allow-lists), and where its response_url may point."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from config import Settings

SLACK_RESPONSE_HOST: Final = "hooks.slack.com"
"""Where Slack's response_url always points (https://hooks.slack.com/commands/...)."""

# Slack's escaped entities in a command's text: <@U123|ann>, <#C123|ops>, <!here>, <https://x|x>, <mailto:a|a>.
_SLACK_ENTITY: Final = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")


@dataclass(frozen=True, slots=True)
class SlashCommand:
    team_id: str
    channel_id: str
    user_id: str
    user_name: str
    text: str
    response_url: str
    trigger_id: str
    """Unique per invocation: the command's idempotency key."""

    @classmethod
    def from_form(cls, form: Mapping[str, str]) -> SlashCommand:
        return cls(
            team_id=form.get("team_id", ""),
            channel_id=form.get("channel_id", ""),
            user_id=form.get("user_id", ""),
            user_name=form.get("user_name", ""),
            text=form.get("text", ""),
            response_url=form.get("response_url", ""),
            trigger_id=form.get("trigger_id", ""),
        )


@dataclass(frozen=True, slots=True)
class Platform:
    name: str
    """As people know it: "Slack", "Mattermost"."""
    key: str
    """As the service names it: the path /chatops/{key}, the [auth] keys' prefix."""
    team_ids: frozenset[str]
    channel_ids: frozenset[str]
    user_ids: frozenset[str]
    response_hosts: frozenset[str]
    """Hosts ("host" or "host:port") a response_url may name."""
    https_only: bool

    def refusal(self, command: SlashCommand) -> str | None:
        """Why the allow-lists refuse this command, or None. An empty list allows any."""
        for kind, allowed, given in (
            ("workspace" if self.key == "slack" else "team", self.team_ids, command.team_id),
            ("channel", self.channel_ids, command.channel_id),
            ("user", self.user_ids, command.user_id),
        ):
            if allowed and given not in allowed:
                listing = f"{self.key}_{'team' if kind == 'workspace' else kind}_ids"
                return (
                    f"this {self.name} {kind} ({given or 'unnamed'}) may not run incident commands: "
                    f"it is not in [auth] {listing}"
                )
        return None

    def response_url_ok(self, url: str) -> bool:
        """Whether a summary may be posted to `url`: only to this platform's own hosts, so a forged
        response_url cannot turn the service into a way to reach other hosts."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return False
        if parts.scheme not in (("https",) if self.https_only else ("http", "https")) or not parts.hostname:
            return False
        if parts.username or parts.password:
            return False
        host = parts.hostname.lower()
        return host in self.response_hosts or (port is not None and f"{host}:{port}" in self.response_hosts)

    def plain_text(self, text: str) -> str:
        """The command's text as the commander typed it."""
        if self.key != "slack":
            return text
        return html.unescape(_SLACK_ENTITY.sub(_slack_entity, text))


def _slack_entity(match: re.Match[str]) -> str:
    """Slack's markup for a mention, a channel or a link, as the commander typed it (a "|" inside it must
    not end a title)."""
    target, label = match.group(1), match.group(2)
    if target.startswith("@"):
        return "@" + (label or target[1:])
    if target.startswith("#"):
        return "#" + (label or target[1:])
    if target.startswith("!"):  # <!here>, <!channel>, <!subteam^S123|@oncall>
        return label or "@" + target[1:].partition("^")[0]
    if target.startswith("mailto:"):
        return label or target.removeprefix("mailto:")
    return target  # a link: its address, whatever Slack shows for it


def slack(settings: Settings) -> Platform:
    auth = settings.auth
    return Platform(
        name="Slack",
        key="slack",
        team_ids=frozenset(auth.slack_team_ids),
        channel_ids=frozenset(auth.slack_channel_ids),
        user_ids=frozenset(auth.slack_user_ids),
        response_hosts=frozenset({SLACK_RESPONSE_HOST}),
        https_only=True,
    )


def mattermost(settings: Settings) -> Platform:
    auth = settings.auth
    return Platform(
        name="Mattermost",
        key="mattermost",
        team_ids=frozenset(auth.mattermost_team_ids),
        channel_ids=frozenset(auth.mattermost_channel_ids),
        user_ids=frozenset(auth.mattermost_user_ids),
        response_hosts=frozenset(host.lower() for host in settings.chatops.mattermost_hosts),
        https_only=False,
    )
