"""Chatops: running the incident from Slack or Mattermost slash commands."""
