"""Chatops: running the incident from Slack or Mattermost slash commands."""

from broadcaster.web.chatops.endpoints import CHATOPS, install
from broadcaster.web.chatops.followups import Reminders

__all__ = ["CHATOPS", "Reminders", "install"]
