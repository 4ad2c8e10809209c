"""The webhook channel: signed Statuspage-shaped (or Slack, Discord, Teams) POSTs to many endpoints."""

from channels.webhook.channel import WebhookChannel

__all__ = ["WebhookChannel"]
