"""A slash command as Slack and Mattermost post it (the same form fields on both), and what each platform
allows: its workspaces, channels and users ([auth] allow-lists), and where its response_url may point."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from broadcaster.domain.text import one_line
from config import Settings
from config.sections import split_host_port

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
    response_hosts: frozenset[tuple[str, int | None]]
    """(host, port) a response_url may name; port None: the scheme's own (443, or 80 for http)."""
    response_path: str
    """What a response_url's path starts with on this platform."""
    https_only: bool

    def team_refusal(self, command: SlashCommand) -> str | None:
        """Why the workspace (team) allow-list refuses this command, or None. An empty list allows any."""
        kind = "workspace" if self.key == "slack" else "team"
        return _refusal(self, kind, "team", self.team_ids, command.team_id)

    def refusal(self, command: SlashCommand) -> str | None:
        """Why the channel or user allow-list refuses this command, or None. An empty list allows any."""
        return _refusal(self, "channel", "channel", self.channel_ids, command.channel_id) or _refusal(
            self, "user", "user", self.user_ids, command.user_id
        )

    def response_url_ok(self, url: str) -> bool:
        """Whether a summary may be posted to `url`: only to this platform's own hosts and ports, on its
        response path, so a forged response_url cannot make the service reach anything else."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return False
        if parts.scheme not in (("https",) if self.https_only else ("http", "https")) or not parts.hostname:
            return False
        if parts.username is not None or parts.password is not None or not parts.path.startswith(self.response_path):
            return False
        default = 443 if parts.scheme == "https" else 80
        host, given = parts.hostname.lower(), port or default
        return any(
            host == allowed and given == (allowed_port or default) for allowed, allowed_port in self.response_hosts
        )

    def plain_text(self, text: str) -> str:
        """The command's text as the commander typed it."""
        if self.key != "slack":
            return text
        return html.unescape(_SLACK_ENTITY.sub(_slack_entity, text))


def _refusal(platform: Platform, kind: str, listing: str, allowed: frozenset[str], given: str) -> str | None:
    if not allowed or given in allowed:
        return None
    shown = one_line(given[:40]) or "unnamed"
    return (
        f"this {platform.name} {kind} ({shown}) may not run incident commands: "
        f"it is not in [auth] {platform.key}_{listing}_ids"
    )


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
    return label or target  # a link: as it was typed (Slack's label), else its address


def slack(settings: Settings) -> Platform:
    auth = settings.auth
    return Platform(
        name="Slack",
        key="slack",
        team_ids=frozenset(auth.slack_team_ids),
        channel_ids=frozenset(auth.slack_channel_ids),
        user_ids=frozenset(auth.slack_user_ids),
        response_hosts=frozenset({(SLACK_RESPONSE_HOST, None)}),
        response_path="/commands/",
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
        response_hosts=frozenset(split_host_port(entry) for entry in settings.chatops.mattermost_hosts),
        response_path="/hooks/commands/",
        https_only=False,
    )
