"""Where a chat command's summary may go: only the platform's own hosts, ports and response paths; and
the [chatops] mattermost_hosts entries, checked when the configuration is read."""

from __future__ import annotations

from pathlib import Path

import pytest

from broadcaster.web.chatops import commands
from config import ConfigError, load_settings
from tests.conftest import WriteConfig


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://hooks.slack.com/commands/T1/2/abc", True),
        ("https://HOOKS.slack.com:443/commands/T1/2/abc", True),
        ("http://hooks.slack.com/commands/T1/2/abc", False),  # not over TLS
        ("https://hooks.slack.com:22/commands/T1/2/abc", False),  # another port of the host
        ("https://hooks.slack.com/services/T1/B2/abc", False),  # an incoming webhook, not a response URL
        ("https://user:pw@hooks.slack.com/commands/T1/2/abc", False),
        ("https://hooks.slack.com.evil.example/commands/T1/2/abc", False),
        ("https://evil.example/commands/T1/2/abc", False),
        ("https://hooks.slack.com:99999/commands/x", False),
        ("not a url", False),
        ("", False),
    ],
)
def test_a_slack_summary_goes_only_to_slacks_response_urls(write_config: WriteConfig, url: str, allowed: bool) -> None:
    platform = commands.slack(load_settings(write_config("")))
    assert platform.response_url_ok(url) is allowed


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://chat.example.com/hooks/commands/abc", True),
        ("https://chat.example.com/hooks/commands/abc", True),
        ("http://chat.example.com:80/hooks/commands/abc", True),
        ("http://chat.example.com:6379/hooks/commands/abc", False),  # a listed host, another service on it
        ("http://chat.example.com/api/v4/users", False),  # not a response path
        ("http://[::1]:8065/hooks/commands/abc", True),
        ("http://[::1]:8066/hooks/commands/abc", False),
        ("ftp://chat.example.com/hooks/commands/abc", False),
        ("http://other.example.com/hooks/commands/abc", False),
    ],
)
def test_a_mattermost_summary_goes_only_to_the_hosts_listed(write_config: WriteConfig, url: str, allowed: bool) -> None:
    settings = load_settings(write_config('[chatops]\nmattermost_hosts = ["Chat.Example.com", "[::1]:8065"]\n'))
    assert commands.mattermost(settings).response_url_ok(url) is allowed


@pytest.mark.parametrize("entry", ["https://chat.example.com", "chat.example.com/hooks", "user@chat", "chat:99999"])
def test_a_mattermost_host_that_is_not_a_host_is_a_configuration_error(
    write_config: WriteConfig, workdir: Path, entry: str
) -> None:
    with pytest.raises(ConfigError, match="mattermost_hosts"):
        load_settings(write_config(f'[chatops]\nmattermost_hosts = ["{entry}"]\n'))
