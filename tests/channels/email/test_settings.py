"""[email] settings: fallback relays, and configurations refused at start-up with the key named."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import ConfigError, load_settings
from tests.conftest import WriteConfig

BASE = '[email]\nenabled = true\nfrom_addr = "Status <status@example.com>"\nsubscribers_file = "s.txt"\n'


def error(write_config: WriteConfig, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(write_config(text))
    return str(caught.value)


def test_relays_are_the_primary_then_the_fallbacks_in_order(write_config: WriteConfig) -> None:
    """The flat keys are the primary; [[email.fallback_relays]] follow in file order with their own settings."""
    settings = load_settings(
        write_config(
            BASE + 'host = "smtp.one.example"\n'
            '[[email.fallback_relays]]\nhost = "smtp.two.example"\nport = 465\nsecurity = "tls"\n'
            'username = "u"\npassword = "p2-secret"\n'
            '[[email.fallback_relays]]\nhost = "10.0.0.5"\nport = 25\nsecurity = "none"\n'
        )
    )
    relays = settings.email.relays()
    assert [(r.label, r.security) for r in relays] == [
        ("smtp.one.example:587", "starttls"),
        ("smtp.two.example:465", "tls"),
        ("10.0.0.5:25", "none"),
    ]
    assert "p2-secret" in settings.secret_values()
    assert (settings.email.sender, settings.email.sender_domain) == ("status@example.com", "example.com")
    assert settings.email.suppression_path(Path("var")) == Path("var/email-suppressed.txt")


def test_credentials_are_never_configured_for_plain_smtp(write_config: WriteConfig) -> None:
    """security = "none" with a password is refused, on the primary and on a fallback."""
    text = error(write_config, BASE + 'security = "none"\nusername = "u"\npassword = "hunter2"\n')
    assert "credentials are never sent in clear" in text and "hunter2" not in text
    fallback = '[[email.fallback_relays]]\nhost = "h"\nsecurity = "none"\nusername = "u"\npassword = "hunter2"\n'
    assert "[email] fallback_relays[0]" in error(write_config, BASE + fallback)


def test_half_a_credential_is_refused(write_config: WriteConfig) -> None:
    """A username without its password would fail at AUTH in the middle of an incident: refuse it now."""
    assert "username and password go together" in error(write_config, BASE + 'username = "u"\n')


def test_addresses_and_urls_are_checked_at_start_up(write_config: WriteConfig) -> None:
    """A bad from_addr, a non-HTTPS unsubscribe_url and an unknown key all name their key."""
    text = error(write_config, '[email]\nfrom_addr = "status at example"\n')
    assert "[email] from_addr: must be an address" in text
    text = error(write_config, '[email]\nunsubscribe_url = "http://example.com/u"\n')
    assert "[email] unsubscribe_url: must start with https://" in text
    assert "unknown key (did you mean 'pool_size'?)" in error(write_config, "[email]\npoolsize = 4\n")
